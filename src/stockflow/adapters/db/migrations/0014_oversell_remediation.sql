-- Oversell remediation releases a key's pending, non-backordered lines most recently
-- applied first: each line keeps the key's version its placement made.
ALTER TABLE reservations ADD COLUMN placed_version bigint NOT NULL DEFAULT 0;

-- No version was kept before this migration. Pending lines are ranked by their last update
-- (their placement, unless a partial shipment came since), newest 0, older ones below:
-- every placement from now on gets a version of at least 1, so comes after them all.
UPDATE reservations r SET placed_version = ranked.placed_version
FROM (SELECT key, order_id, line_id, 1 - row_number() OVER (
          PARTITION BY key ORDER BY updated_at DESC, order_id DESC, line_id DESC)
          AS placed_version
      FROM reservations WHERE status = 'pending') ranked
WHERE (r.key, r.order_id, r.line_id) = (ranked.key, ranked.order_id, ranked.line_id);

-- What a processor with remediation on loads with a key: the orders with pending,
-- non-backordered lines there, without reading the key's whole reservation history.
CREATE INDEX reservations_pending_at_key ON reservations (key)
    WHERE status = 'pending' AND NOT backordered;

-- The reserved units remediation released along with a movement, in the movement's entry
-- (reserved_before - reserved_after includes them).
ALTER TABLE ledger ADD COLUMN remediated bigint CHECK (remediated > 0);
