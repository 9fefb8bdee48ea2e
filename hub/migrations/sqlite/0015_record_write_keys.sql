-- Idempotency keys of record writes (`POST /v1/records`, `/v1/records/batch`): a retry with the
-- same key and body gets the first answer and writes nothing. Kept apart from the pulls'
-- `idempotency_keys`, whose keys are another namespace and which have no claim lease.
--
-- A row is a claim while `ledger_index` is NULL and an answer once it is set. The answer is set
-- in the same transaction that inserts the records, and only by the attempt that holds the claim
-- (`attempt`), so a key has at most one set of records. A claim whose request died (its process
-- was killed: another `boot_id`; or it was cancelled and could not release: `claimed_at` older
-- than the request timeout) may be taken over by a retry (`storage/idempotency.rs`).
CREATE TABLE record_write_keys (
    -- `user:<id>` or `client:<id>`: keys are scoped per principal.
    principal    TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    -- SHA-256 of the route and the request body in canonical form.
    fingerprint  BLOB NOT NULL,
    -- The request holding the claim (a random id per attempt), the process it runs in, and when
    -- it claimed (Unix ms).
    attempt      TEXT NOT NULL,
    boot_id      TEXT NOT NULL,
    claimed_at   INTEGER NOT NULL,
    -- The answer: the ledger entry of the write and the records' ids, as a JSON array in request
    -- order. Both NULL while the claim is pending, both set once the records are stored.
    ledger_index INTEGER,
    record_ids   TEXT,
    -- When the key was (last) claimed; forgotten 24 h later, as pulls' keys are.
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (principal, idem_key),
    CHECK ((ledger_index IS NULL) = (record_ids IS NULL))
);
CREATE INDEX record_write_keys_by_age ON record_write_keys (created_at);
