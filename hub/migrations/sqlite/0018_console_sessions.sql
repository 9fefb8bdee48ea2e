-- Console sessions (issue 20, hub/src/console/session.rs). The browser holds a random token in
-- an HttpOnly cookie; the hub keeps only its SHA-256, so a copy of this table opens no session.
-- A session ends at logout, after `console_idle_secs` without a request, or
-- `console_session_secs` after login, whichever comes first; expired rows are deleted as they
-- are met and by the login that follows.
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    -- The CSRF token of every state-changing form of this session.
    csrf_token   TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_created ON console_sessions (created_ms);
