-- Subject rows keyed by run first: (run, record_id, idx), run = idx / 1024 when the writer
-- inserts them. Keyed by record id, each commit's ~1 000 subject rows landed on ~1 000 leaves
-- of an index that grows forever and soon outgrows shared buffers (reads, evictions, a full-
-- page image in the WAL for each leaf after every checkpoint); the disclosure pull ran at 476
-- pages/s with them and 714 without. Now a commit's rows land in the current run's few hundred
-- leaves, which stay in memory. A lookup by record seeks once per run (see
-- `Store::ledger_entries_for_subject`). The same table on SQLite holds runs made by merges of
-- staged rows instead (SQLite writes a whole page to its WAL per page touched per commit).
CREATE TABLE ledger_subject_runs (
    run       BIGINT NOT NULL,
    -- Byte order: the key is compared ~20 times per inserted row, and the database's
    -- collation (C.UTF-8 on the dev server) goes through strcoll; ids are ASCII.
    record_id TEXT COLLATE "C" NOT NULL,
    idx       BIGINT NOT NULL,
    PRIMARY KEY (run, record_id, idx)
);
INSERT INTO ledger_subject_runs (run, record_id, idx)
    SELECT idx / 1024, record_id, idx FROM ledger_subjects;
DROP TABLE ledger_subjects;
-- Never written on PostgreSQL (see 0009).
DROP TABLE ledger_subjects_recent;
