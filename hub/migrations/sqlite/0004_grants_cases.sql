-- Grants (授权), cases (事件) and their assignments, and the decision version every replica
-- polls to bring its in-memory decision index up to date. Case texts (summary, replies,
-- resolution) may name people, so they are sealed like record fields (`case_texts`), under a
-- per-case key wrapped by the `case-texts` KEK.

CREATE TABLE grants (
    id           TEXT PRIMARY KEY,
    grantee      TEXT NOT NULL REFERENCES departments (id),
    purpose      TEXT NOT NULL REFERENCES purposes (id),
    category     TEXT NOT NULL,
    -- JSON object: field name -> clear | pseudonym | masked | generalized.
    fields       TEXT NOT NULL,
    -- JSON array of grid codes.
    scope        TEXT NOT NULL,
    row_filter   TEXT,
    case_bound   INTEGER NOT NULL,
    valid_from   INTEGER NOT NULL,
    valid_until  INTEGER NOT NULL,
    daily_quota  INTEGER,
    legal_basis  TEXT,
    status       TEXT NOT NULL CHECK (status IN
                     ('requested', 'approved', 'rejected', 'suspended', 'revoked', 'expired')),
    -- `user:<id>` or `client:<id>`.
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    answer_due   INTEGER NOT NULL,
    decided_by   TEXT,
    decided_at   INTEGER,
    reason       TEXT,
    -- Compact JWS issued at approval.
    artefact     TEXT,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX grants_by_grantee ON grants (grantee, status);

CREATE TABLE grant_events (
    grant_id TEXT NOT NULL REFERENCES grants (id),
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    status   TEXT NOT NULL,
    reason   TEXT,
    PRIMARY KEY (grant_id, seq)
);

CREATE TABLE cases (
    id           TEXT PRIMARY KEY,
    grid         TEXT NOT NULL REFERENCES grids (code),
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('reported', 'assigned', 'replied', 'closed')),
    reported_by  TEXT NOT NULL,
    reported_at  INTEGER NOT NULL,
    deadline     INTEGER,
    satisfaction INTEGER CHECK (satisfaction BETWEEN 1 AND 5),
    closed_at    INTEGER,
    kek_version  INTEGER NOT NULL,
    wrapped_dek  BLOB NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE case_subjects (
    case_id   TEXT NOT NULL REFERENCES cases (id),
    record_id TEXT NOT NULL REFERENCES records (id),
    PRIMARY KEY (case_id, record_id)
);
CREATE INDEX case_subjects_by_record ON case_subjects (record_id);

-- One row per (case, department) dispatch; `current` rows are the open responsibilities.
CREATE TABLE case_assignments (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    department  TEXT NOT NULL REFERENCES departments (id),
    round       INTEGER NOT NULL,
    assigned_at INTEGER NOT NULL,
    deadline    INTEGER NOT NULL,
    replied_at  INTEGER,
    current     INTEGER NOT NULL,
    PRIMARY KEY (case_id, round, department)
);
CREATE INDEX case_assignments_current ON case_assignments (department, current);

CREATE TABLE case_events (
    case_id TEXT NOT NULL REFERENCES cases (id),
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    -- JSON without personal data: departments, deadline, satisfaction, the sealed text's name.
    detail  TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE case_texts (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    -- `summary`, `reply.<seq>` or `resolution`; bound into the ciphertext as associated data.
    name        TEXT NOT NULL,
    kek_version INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    PRIMARY KEY (case_id, name)
);

CREATE TABLE decision_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO decision_state (id, version) VALUES (1, 1);
