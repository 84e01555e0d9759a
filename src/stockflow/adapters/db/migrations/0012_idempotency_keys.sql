-- Keys that make a request idempotent, chosen by its sender: an HTTP Idempotency-Key
-- ('api:<API key id>:<its value>') or a CSV import's id. The first request's fingerprint
-- (the SHA-256 of what it asked for) is kept, so the same key sent with another request is
-- refused instead of being answered with the first one's outcome.
CREATE TABLE idempotency_keys (
    key         text PRIMARY KEY,
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Imports recorded before this table named their file by its digest; an import is the
-- same request when its kind and file are.
INSERT INTO idempotency_keys (key, fingerprint, created_at)
SELECT id, encode(sha256(convert_to(kind || E'\n' || digest, 'UTF8')), 'hex'), created_at
FROM imports;
