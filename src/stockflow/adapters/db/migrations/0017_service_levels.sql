-- Reorder service-level targets (issue 27): the share of replenishment cycles a key's
-- suggestions are to keep free of stock-outs, for a warehouse (scope 'WH-1') or one key
-- (scope 'SKU-1@WH-1', which wins over its warehouse's); `stockflow forecast
-- --service-level` is the default for the rest.
CREATE TABLE service_levels (
    scope      text PRIMARY KEY,
    level      double precision NOT NULL CHECK (level >= 0.5 AND level < 1),
    updated_at timestamptz NOT NULL DEFAULT now()
);
