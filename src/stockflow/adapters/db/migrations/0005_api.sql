-- The HTTP API: its keys (only a hash of each token is kept), and the lookup of an
-- order's lines across keys.

CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash bytea NOT NULL,
    scopes     text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[]),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX reservations_order ON reservations (order_id);
