-- Idempotency keys of disclosures: a retried pull with the same key is answered from the same
-- ledger entry (one disclosure, not two). No response body is stored: a replay re-reads the
-- records and must plan exactly what the entry recorded.
CREATE TABLE idempotency_keys (
    client_id    TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    -- SHA-256 of the request (action, category, purpose, case, grid, cursor, limit, lookup
    -- token, delivery).
    fingerprint  BYTEA NOT NULL,
    -- The ledger entry of the disclosure; NULL while the first request is in progress.
    ledger_index BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (client_id, idem_key)
);
