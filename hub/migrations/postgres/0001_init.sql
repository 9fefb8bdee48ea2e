-- Gridhub schema, PostgreSQL flavour. Times are Unix epoch milliseconds (BIGINT).
-- Personal values live only in record_fields.sealed (AES-256-GCM) and as HMAC tokens in
-- blind_index; nothing else here holds personal plaintext.

CREATE TABLE grids (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('physical', 'logical')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE purposes (
    id          TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    department    TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE user_grids (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grid    TEXT NOT NULL REFERENCES grids (code),
    PRIMARY KEY (user_id, grid)
);

CREATE TABLE records (
    id              TEXT PRIMARY KEY,
    category        TEXT NOT NULL,
    grid            TEXT NOT NULL REFERENCES grids (code),
    version         BIGINT NOT NULL,
    purpose         TEXT NOT NULL REFERENCES purposes (id),
    legal_basis     TEXT,
    collector       TEXT NOT NULL,
    -- Fields the catalog marks as not encrypted (public), as a JSON object.
    plain_fields    TEXT NOT NULL,
    -- NULL once the record is erased (crypto-shredded).
    kek_version     BIGINT,
    wrapped_dek     BYTEA,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    retention_until BIGINT,
    erased_at       BIGINT
);
CREATE INDEX records_by_category_grid ON records (category, grid);

CREATE TABLE record_fields (
    record_id   TEXT NOT NULL REFERENCES records (id),
    field       TEXT NOT NULL,
    -- Part of the ciphertext's associated data: the KEK version current when it was sealed.
    kek_version BIGINT NOT NULL,
    sealed      BYTEA NOT NULL,
    PRIMARY KEY (record_id, field)
);

CREATE TABLE blind_index (
    category  TEXT NOT NULL,
    field     TEXT NOT NULL,
    token     BYTEA NOT NULL,
    record_id TEXT NOT NULL REFERENCES records (id),
    PRIMARY KEY (category, field, token, record_id)
);
CREATE INDEX blind_index_by_record ON blind_index (record_id);

CREATE TABLE kek_usage (
    category    TEXT NOT NULL,
    kek_version BIGINT NOT NULL,
    wraps       BIGINT NOT NULL,
    PRIMARY KEY (category, kek_version)
);
