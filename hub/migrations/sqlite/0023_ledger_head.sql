-- The ledger's coordination row (issue 22): every append transaction takes it first (on
-- PostgreSQL `FOR UPDATE`; a SQLite write transaction holds the database's write lock anyway),
-- numbers its entries from `size`, and moves it on in the same transaction. Any number of hub
-- processes can append to one ledger this way and it stays totally ordered and gap-free, with no
-- advisory lock and no database sequence (Tessera's design). `checkpoint_size` is the size of
-- the newest signed checkpoint: it only grows, by compare-and-swap, so two processes can never
-- publish checkpoints that go backwards (Sunlight's).
CREATE TABLE ledger_head (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    size            BIGINT NOT NULL,
    last_time_ms    BIGINT NOT NULL,
    checkpoint_size BIGINT NOT NULL
);
INSERT INTO ledger_head (id, size, last_time_ms, checkpoint_size)
SELECT 1,
       COALESCE((SELECT MAX(idx) + 1 FROM ledger_entries), 0),
       COALESCE((SELECT MAX(time_ms) FROM ledger_entries), 0),
       COALESCE((SELECT MAX(size) FROM ledger_checkpoints), -1);

-- Named rows a write transaction takes `FOR UPDATE` to run one at a time with others of its
-- kind (PostgreSQL; SQLite has one writer): 'record-keys' serialises the upserts that may create
-- records for new keys. A row lock instead of a transaction-scoped advisory lock, which
-- distributed engines (CockroachDB) do not offer (docs/SCALING.md).
CREATE TABLE write_locks (
    name TEXT PRIMARY KEY
);
INSERT INTO write_locks (name) VALUES ('record-keys');

-- Retention (issue 22): the records whose retention date has passed, found without a scan.
CREATE INDEX records_by_retention ON records (retention_until)
    WHERE retention_until IS NOT NULL AND erased_at IS NULL;

-- Background jobs that one process at a time may run (the retention sweep), claimed by
-- compare-and-swap with a lease: `holder` runs it until `until_ms`, then anyone may claim it.
CREATE TABLE job_leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
INSERT INTO job_leases (name, holder, until_ms) VALUES ('retention', '', 0);
