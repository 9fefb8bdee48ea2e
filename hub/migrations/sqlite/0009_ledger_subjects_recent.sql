-- Subjects of recent ledger entries. The ledger writer inserts a disclosure's subject rows here
-- (a small B-tree that stays in cache) and moves them into `ledger_subjects` in large sorted
-- runs, in one transaction; lookups read both tables. A row is in exactly one of them at any
-- committed moment. (Inserting straight into the large table touched ~1 000 of its leaves per
-- commit and slowed the writer ~5x as the ledger grew.)
CREATE TABLE ledger_subjects_recent (
    record_id TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    PRIMARY KEY (record_id, idx)
) WITHOUT ROWID;
