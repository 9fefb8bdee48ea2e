-- An entry's subjects as one row: its record ids in an array, found through a GIN index.
-- As rows of `ledger_subject_runs` (0010), a commit of ~10 disclosure entries inserted ~1 000
-- heap tuples and ~1 000 B-tree entries through the database's one writing backend, and the
-- ledger writer's commits were what limited the pull. A GIN index with `fastupdate` (the
-- default) appends new keys to its pending list and folds them into the tree in bulk. Measured
-- with pgbench on this server, 10 entries of 100 subjects per transaction: 14–19 ms as rows,
-- 6 ms as arrays. A lookup reads the pending list (at most `gin_pending_list_limit`, 4 MB) and
-- the tree.
CREATE TABLE ledger_subject_sets (
    idx        BIGINT PRIMARY KEY,
    -- Byte order, as the record keys (0011); ids are ASCII.
    record_ids TEXT[] COLLATE "C" NOT NULL
);
INSERT INTO ledger_subject_sets (idx, record_ids)
    SELECT idx, array_agg(record_id ORDER BY record_id) FROM ledger_subject_runs GROUP BY idx;
CREATE INDEX ledger_subject_sets_by_record ON ledger_subject_sets USING gin (record_ids)
    WITH (gin_pending_list_limit = 256);
DROP TABLE ledger_subject_runs;
