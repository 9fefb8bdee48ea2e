-- Anomaly reviews (issue 20, the console's anomalies page and `POST /v1/audit/anomalies/{id}/
-- acknowledge|resolve`). Anomalies are computed from the ledger, never stored; a review names
-- one by its stable id (`oversight::anomalies`: its kind, who it is about and the ledger index
-- of its first entry). One row per step, never updated or deleted: the history is the table.
-- At most one `acknowledged` and one `resolved` step per anomaly (the primary key), so a second
-- resolve is refused. `ledger_index` is the entry that recorded the step (written first).
CREATE TABLE anomaly_reviews (
    anomaly_id   TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('acknowledged', 'resolved')),
    kind         TEXT NOT NULL,
    actor_key    TEXT NOT NULL,
    first_entry  BIGINT NOT NULL,
    by_subject   TEXT NOT NULL,
    at_ms        BIGINT NOT NULL,
    note         TEXT,
    ledger_index BIGINT NOT NULL,
    PRIMARY KEY (anomaly_id, state)
);
