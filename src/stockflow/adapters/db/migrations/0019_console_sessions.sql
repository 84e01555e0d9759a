-- Console sessions (issue 28): a person signs in with an API key and gets a session
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
