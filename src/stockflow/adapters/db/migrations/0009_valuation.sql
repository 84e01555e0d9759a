-- Cost and valuation: each key's perpetual weighted-average unit cost and the currency it
-- is valued in (both NULL until a receipt carries a cost), and in the ledger the value of
-- each movement (on-hand units moved times their cost) and the key's average after it.
-- Scale 6 throughout; unconstrained numeric, so no product of bigint units can overflow.
ALTER TABLE stock ADD COLUMN unit_cost numeric CHECK (unit_cost >= 0),
    ADD COLUMN currency text CHECK (currency ~ '^[A-Z]{3}$'),
    ADD CONSTRAINT stock_cost_has_currency CHECK ((unit_cost IS NULL) = (currency IS NULL));
ALTER TABLE ledger ADD COLUMN value numeric, ADD COLUMN unit_cost numeric;

-- Reports select ledger rows by business time. The ledger is appended in roughly that
-- order, so a block-range index serves the windows at a fraction of a B-tree's upkeep on
-- the hot path (one summary per 128 pages, not an entry per row).
CREATE INDEX ledger_business_time ON ledger USING brin ((coalesce(event_time, recorded_at)));
