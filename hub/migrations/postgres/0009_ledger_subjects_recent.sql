-- Subjects of recent ledger entries, as on SQLite, where the ledger writer stages subject rows
-- here and merges them into `ledger_subjects` in sorted runs. On PostgreSQL the writer inserts
-- straight into `ledger_subjects` (staging measured slower here); the table exists so both
-- schemas match and lookups read the same two tables.
CREATE TABLE ledger_subjects_recent (
    record_id TEXT NOT NULL,
    idx       BIGINT NOT NULL,
    PRIMARY KEY (record_id, idx)
);
