-- The order coordinator's state: one row per order (its decider's state as JSON, with the
-- columns the sweeper and readers filter on), its parts as rows (what allocation counts as
-- in flight until the processor holds them), and every status it emitted (the history).
CREATE TABLE orders (
    order_id   text PRIMARY KEY,
    phase      text NOT NULL,
    partition  int NOT NULL,            -- of inventory.order-requests: the sweeper's shard
    expires_at timestamptz,             -- when order.expired is due, while it may be
    state      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_due ON orders (partition, expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE order_parts (
    order_id  text NOT NULL,
    part_id   text NOT NULL,            -- the reservation line id, LINE~k
    sku       text NOT NULL,
    warehouse text NOT NULL,
    quantity  bigint NOT NULL CHECK (quantity > 0),
    status    text NOT NULL,
    PRIMARY KEY (order_id, part_id)
);
-- allocation's snapshot: the parts placed and not yet judged, by the key they are at
CREATE INDEX order_parts_placed ON order_parts ((sku || '@' || warehouse))
    WHERE status = 'placed';

CREATE TABLE order_statuses (
    seq       bigserial,                -- the order they were emitted in (one batch: one at)
    event_id  text PRIMARY KEY,         -- the status event's deterministic id
    order_id  text NOT NULL,
    type      text NOT NULL,
    data      jsonb NOT NULL,
    cause     text NOT NULL,            -- the input event that made it
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_statuses_order ON order_statuses (order_id, seq);
