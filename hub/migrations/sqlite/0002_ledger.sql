-- The audit ledger: an append-only Merkle log (RFC 9162). Nothing in the hub updates or deletes
-- these rows. `canonical` is the exact UTF-8 JSON that was hashed into `leaf_hash`; the other
-- entry columns are copies for filtering.

CREATE TABLE ledger_entries (
    idx       INTEGER PRIMARY KEY,
    time_ms   INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    purpose   TEXT,
    case_id   TEXT,
    decision  TEXT NOT NULL,
    canonical TEXT NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE INDEX ledger_entries_by_time ON ledger_entries (time_ms);
CREATE INDEX ledger_entries_by_actor ON ledger_entries (actor);

-- Which records each entry concerns (subject access, DPO views). WITHOUT ROWID: the key is the
-- row, one B-tree instead of two, fewer pages written per commit.
CREATE TABLE ledger_subjects (
    record_id TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    PRIMARY KEY (record_id, idx)
) WITHOUT ROWID;

-- Hashes of every perfect subtree (level 0 = leaves), so proofs read O(log n) rows.
CREATE TABLE ledger_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Signed checkpoints (C2SP signed notes), never for a size smaller than an earlier one.
CREATE TABLE ledger_checkpoints (
    size    INTEGER PRIMARY KEY,
    root    BLOB NOT NULL,
    note    TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
