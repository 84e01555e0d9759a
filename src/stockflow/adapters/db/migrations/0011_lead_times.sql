-- Reorder lead times (issue 12): the days from ordering to receiving, for a warehouse
-- (scope 'WH-1') or one key (scope 'SKU-1@WH-1', which wins over its warehouse's).
CREATE TABLE lead_times (
    scope      text PRIMARY KEY,
    days       integer NOT NULL CHECK (days BETWEEN 1 AND 365),
    updated_at timestamptz NOT NULL DEFAULT now()
);
