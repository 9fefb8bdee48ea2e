-- The audit ledger: an append-only Merkle log (RFC 9162). Nothing in the hub updates or deletes
-- these rows. `canonical` is the exact UTF-8 JSON that was hashed into `leaf_hash`; the other
-- entry columns are copies for filtering.

CREATE TABLE ledger_entries (
    idx       BIGINT PRIMARY KEY,
    time_ms   BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    purpose   TEXT,
    case_id   TEXT,
    decision  TEXT NOT NULL,
    canonical TEXT NOT NULL,
    leaf_hash BYTEA NOT NULL
);
CREATE INDEX ledger_entries_by_time ON ledger_entries (time_ms);
CREATE INDEX ledger_entries_by_actor ON ledger_entries (actor);

-- Which records each entry concerns (subject access, DPO views).
CREATE TABLE ledger_subjects (
    record_id TEXT NOT NULL,
    idx       BIGINT NOT NULL,
    PRIMARY KEY (record_id, idx)
);

-- Hashes of every perfect subtree (level 0 = leaves), so proofs read O(log n) rows.
CREATE TABLE ledger_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (C2SP signed notes), never for a size smaller than an earlier one.
CREATE TABLE ledger_checkpoints (
    size    BIGINT PRIMARY KEY,
    root    BYTEA NOT NULL,
    note    TEXT NOT NULL,
    time_ms BIGINT NOT NULL
);
