-- The webhook relay: endpoints, the output events they matched, and a durable delivery
-- queue with one row per (endpoint, event). The relay inserts with ON CONFLICT DO NOTHING,
-- so a re-read output never queues a second delivery; workers lease due rows with
-- FOR UPDATE SKIP LOCKED, so a crashed relay's leases simply run out and are sent again.
CREATE TABLE webhook_endpoints (
    id               text PRIMARY KEY,
    url              text NOT NULL,
    description      text NOT NULL DEFAULT '',
    event_patterns   text[] NOT NULL CHECK (cardinality(event_patterns) > 0),
    key_patterns     text[] NOT NULL CHECK (cardinality(key_patterns) > 0),
    -- secrets are sealed (AES-GCM, STOCKFLOW_SECRET_KEY, the endpoint id as associated data)
    secret           bytea NOT NULL,
    previous_secret  bytea,
    previous_until   timestamptz,  -- a rotated-out secret still signs until then
    state            text NOT NULL DEFAULT 'enabled' CHECK (state IN ('enabled', 'disabled')),
    disabled_reason  text,
    failing_since    timestamptz,  -- the first failure since the last success
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Output events as they were on their topic (the body is sent byte for byte).
CREATE TABLE webhook_events (
    event_id    text PRIMARY KEY,
    type        text NOT NULL,
    subject     text NOT NULL,
    time        timestamptz NOT NULL,
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL REFERENCES webhook_events (event_id),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'exhausted')),
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,
    last_status     integer,
    last_error      text,
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
