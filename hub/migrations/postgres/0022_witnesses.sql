-- Departments as witnesses (issue 21). A department client may hold one C2SP tlog-cosignature
-- v1 (Ed25519) witness key, registered by an admin; replacing or removing it marks the old row
-- removed (rows are never deleted: what key a client held when is history). The cosignatures
-- witnesses handed in are kept per checkpoint size, one per (size, key), never updated.
CREATE TABLE witness_keys (
    client_id     TEXT NOT NULL REFERENCES clients (id),
    key_name      TEXT NOT NULL,
    -- The raw 32-byte Ed25519 public key.
    public_key    BYTEA NOT NULL,
    -- `<name>+<hex key hash>+<base64(0x04 ‖ public key)>`, as registered (canonical form).
    vkey          TEXT NOT NULL,
    registered_ms BIGINT NOT NULL,
    removed_ms    BIGINT
);
-- At most one current key per client.
CREATE UNIQUE INDEX witness_keys_current ON witness_keys (client_id) WHERE removed_ms IS NULL;

CREATE TABLE witness_cosignatures (
    -- The size of a stored checkpoint (`ledger_checkpoints`) whose text the line cosigns.
    size        BIGINT NOT NULL,
    key_name    TEXT NOT NULL,
    key_hash    BYTEA NOT NULL,
    -- The cosignature's own POSIX timestamp (seconds), as signed.
    timestamp   BIGINT NOT NULL,
    -- The signature line, without newline, as served after the hub's own line.
    line        TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (size, key_name, key_hash)
);
