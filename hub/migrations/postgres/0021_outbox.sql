-- Webhooks and the NATS publisher (issue 21): one transactional outbox. A row is written in the
-- same transaction as the change that caused it, so a committed change always has its event and
-- a rolled-back one never does. The delivery worker marks rows delivered or dead; nothing else
-- changes them (`gridhub webhooks replay` sets matching rows back to pending). Payloads hold
-- ids, statuses, times and kinds only, never personal data.
CREATE TABLE outbox (
    -- The `webhook-id` (and the NATS `Nats-Msg-Id`): a UUID v7.
    id              TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    -- The whole JSON body sent: {"type", "timestamp", "data"}.
    payload         TEXT NOT NULL,
    -- A department id, `dpo`, or `nats` for the NATS sink.
    destination     TEXT NOT NULL,
    sink            TEXT NOT NULL CHECK (sink IN ('webhook', 'nats')),
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    -- The receiver's status or the transport failure: never a payload or a response body.
    last_error      TEXT,
    delivered_at    BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_destination ON outbox (destination, created_at);

-- Time-based events (a case due within a day or overdue, a grant expiring) are emitted once:
-- the sweep inserts the key of (subject, event kind) in the transaction that writes the events.
CREATE TABLE outbox_sweep_marks (
    mark_key   TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- One endpoint per destination. The Standard Webhooks secret is sealed by the vault (the
-- `case-texts` key scope, bound to `webhook:<destination>`), never stored in clear.
CREATE TABLE webhook_endpoints (
    destination   TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    kek_version   BIGINT NOT NULL,
    wrapped_dek   BYTEA NOT NULL,
    sealed_secret BYTEA NOT NULL,
    updated_at    BIGINT NOT NULL
);
