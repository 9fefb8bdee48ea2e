-- Subject rows in sorted runs (SQLite). 0009 staged a disclosure's subject rows in a table keyed
-- by record id and merged them into `ledger_subjects`, also keyed by record id: every commit
-- and every merge touched leaves all over a B-tree that grows forever (a merge of 20 000 rows
-- rewrote ~11 000 pages once the ledger held 2 M subject rows), and the ledger writer slowed
-- as the ledger grew.
--
-- Now both writes are appends:
-- * `ledger_subjects_staged` is keyed by (idx, record_id), so a commit's rows go to the right
--   edge of a small B-tree;
-- * a merge copies all staged rows, sorted by record id, into `ledger_subject_runs` under a new
--   run number, the leading key, so the run is appended as packed pages at the right edge.
-- A lookup by record seeks once per run and scans the staged rows (see
-- `Store::ledger_entries_for_subject`). A row is in exactly one table at any committed moment.
CREATE TABLE ledger_subject_runs (
    run       INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    PRIMARY KEY (run, record_id, idx)
) WITHOUT ROWID;
INSERT INTO ledger_subject_runs (run, record_id, idx)
    SELECT 0, record_id, idx FROM ledger_subjects ORDER BY record_id, idx;
DROP TABLE ledger_subjects;

CREATE TABLE ledger_subjects_staged (
    idx       INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (idx, record_id)
) WITHOUT ROWID;
INSERT INTO ledger_subjects_staged (idx, record_id)
    SELECT idx, record_id FROM ledger_subjects_recent ORDER BY idx, record_id;
DROP TABLE ledger_subjects_recent;
