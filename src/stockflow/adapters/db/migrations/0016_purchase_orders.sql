-- Purchase orders (contract v1.1): units ordered from suppliers and not yet received. Each
-- key's on_order, its movements in the ledger, and each purchase order's facts at a key
-- (its lines as placed, received and cancelled, what receipts naming no line brought, and
-- whether the whole order was cancelled), from which on_order is derived.
ALTER TABLE stock ADD COLUMN on_order bigint NOT NULL DEFAULT 0 CHECK (on_order >= 0);
ALTER TABLE ledger ADD COLUMN on_order_before bigint NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN on_order_after bigint NOT NULL DEFAULT 0;

CREATE TABLE purchase_orders (
    key         text NOT NULL,
    po_id       text NOT NULL,
    lines       jsonb NOT NULL,  -- line_id ("" for none) -> {ordered, received, cancelled, expected_at}
    unnamed     bigint NOT NULL DEFAULT 0,
    cancelled   boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, po_id)
);
