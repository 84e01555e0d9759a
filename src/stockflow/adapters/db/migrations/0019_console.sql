-- The console (issue 28). Its sessions: a person signs in with an API key and gets a session
-- cookie. Only the SHA-256 of the cookie's random token is kept, as for API keys; the
-- session lasts while used (seen_at) up to an absolute lifetime (created_at), and ends
-- with its key (revoking a key ends its sessions at their next request).
CREATE TABLE console_sessions (
    token_hash  bytea PRIMARY KEY,
    key_id      text NOT NULL REFERENCES api_keys (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_created ON console_sessions (created_at);

-- The console lists orders newest first; created_at never changes, so the coordinator's
-- updates of an order stay HOT.
CREATE INDEX orders_created ON orders (created_at);
