-- Current stock per key, the append-only ledger, reservations, movement references,
-- open low-stock alerts, and what exactly-once needs (processed ids, offsets, outbox).

CREATE TABLE stock (
    key           text PRIMARY KEY,
    sku           text NOT NULL,
    warehouse     text NOT NULL,
    on_hand       bigint NOT NULL,
    reserved      bigint NOT NULL CHECK (reserved >= 0),
    available     bigint GENERATED ALWAYS AS (on_hand - reserved) STORED,
    in_transit    bigint NOT NULL CHECK (in_transit >= 0),
    damaged       bigint NOT NULL CHECK (damaged >= 0),
    version       bigint NOT NULL CHECK (version > 0),
    reorder_point bigint NOT NULL CHECK (reorder_point >= 0),
    safety_stock  bigint NOT NULL CHECK (safety_stock >= 0),
    severity      text NOT NULL CHECK (severity IN ('ok', 'low', 'out_of_stock')),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (key = sku || '@' || warehouse)
);

-- One row per applied event: before/after quantities and the cause. (key, version) is
-- the identity: two writers can never both record a key's version n.
CREATE TABLE ledger (
    key                text NOT NULL,
    version            bigint NOT NULL,
    event_id           text NOT NULL,
    event_type         text NOT NULL,
    reference          text,
    note               text,
    on_hand_before     bigint NOT NULL,
    on_hand_after      bigint NOT NULL,
    reserved_before    bigint NOT NULL,
    reserved_after     bigint NOT NULL,
    in_transit_before  bigint NOT NULL,
    in_transit_after   bigint NOT NULL,
    damaged_before     bigint NOT NULL,
    damaged_after      bigint NOT NULL,
    on_hand_delta      bigint GENERATED ALWAYS AS (on_hand_after - on_hand_before) STORED,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);

CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the stock ledger is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();

CREATE TABLE reservations (
    key         text NOT NULL,
    order_id    text NOT NULL,
    line_id     text NOT NULL,
    quantity    bigint NOT NULL CHECK (quantity >= 0),
    remaining   bigint NOT NULL CHECK (remaining >= 0),
    status      text NOT NULL CHECK (status IN
                ('pending', 'confirmed', 'rejected', 'released', 'expired', 'fulfilled')),
    expires_at  timestamptz,
    backordered boolean NOT NULL DEFAULT false,
    line_count  integer,
    partition   integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, order_id, line_id),
    CHECK (status IN ('pending', 'confirmed') OR remaining = 0)
);
CREATE INDEX reservations_due ON reservations (partition, expires_at) WHERE status = 'pending';

-- Physical movement references applied per key (shipment, receipt, transfer phase, ...).
CREATE TABLE movement_refs (
    key      text NOT NULL,
    ref      text NOT NULL,
    quantity bigint NOT NULL,
    PRIMARY KEY (key, ref)
);

CREATE TABLE low_stock_alerts (
    key            text PRIMARY KEY REFERENCES stock (key),
    severity       text NOT NULL CHECK (severity IN ('low', 'out_of_stock')),
    available      bigint NOT NULL,
    reorder_point  bigint NOT NULL,
    cause_event_id text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Ids of applied (or no-op) events: a repeated id is a counted duplicate.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    key          text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('applied', 'noop')),
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Consumed positions, committed in the same transaction as the effects they produced.
CREATE TABLE consumer_offsets (
    group_id    text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (group_id, topic, partition)
);

-- Outputs of a committed batch not yet confirmed as delivered, one framed blob per
-- (batch, partition). Rows are deleted once the producer has flushed them. The blobs are
-- megabytes of JSON per batch: lz4 compresses them several times faster than the default
-- pglz, which dominated the batch transaction (measured with bench/run.py).
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    group_id   text NOT NULL,
    partition  integer NOT NULL,
    messages   integer NOT NULL,
    payload    bytea COMPRESSION lz4 NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending ON outbox (group_id, partition, id);
