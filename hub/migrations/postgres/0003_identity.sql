-- Identity: departments and their jurisdiction, department clients (mTLS), role permissions
-- (casbin policy lines) and the policy version every replica polls to reload its enforcer.

CREATE TABLE departments (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE department_jurisdiction (
    department_id TEXT NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    grid          TEXT NOT NULL REFERENCES grids (code),
    PRIMARY KEY (department_id, grid)
);

CREATE TABLE clients (
    id              TEXT PRIMARY KEY,
    department_id   TEXT NOT NULL REFERENCES departments (id),
    -- base64url(SHA-256(DER)) of the client certificate: RFC 8705 `x5t#S256`.
    cert_thumbprint TEXT NOT NULL UNIQUE,
    certificate_pem TEXT NOT NULL,
    -- `hub` (issued from a CSR) or `external` (registered certificate of a trusted CA).
    issuer          TEXT NOT NULL CHECK (issuer IN ('hub', 'external')),
    not_after       BIGINT NOT NULL,
    age_recipient   TEXT,
    status          TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);

CREATE TABLE client_roles (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    PRIMARY KEY (client_id, role)
);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- casbin policy lines (`p, role, grids, object, action`); assignments (`g`) are derived from
-- user_roles/user_grids and client_roles when the enforcer loads.
CREATE TABLE casbin_rule (
    id    BIGSERIAL PRIMARY KEY,
    ptype TEXT NOT NULL,
    v0    TEXT NOT NULL DEFAULT '',
    v1    TEXT NOT NULL DEFAULT '',
    v2    TEXT NOT NULL DEFAULT '',
    v3    TEXT NOT NULL DEFAULT '',
    v4    TEXT NOT NULL DEFAULT '',
    v5    TEXT NOT NULL DEFAULT '',
    UNIQUE (ptype, v0, v1, v2, v3, v4, v5)
);

CREATE TABLE policy_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO policy_state (id, version) VALUES (1, 1);
