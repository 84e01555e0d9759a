-- Units shipped per order line, so a placement after early shipments reserves only the rest.
ALTER TABLE reservations ADD COLUMN shipped bigint NOT NULL DEFAULT 0 CHECK (shipped >= 0);
-- Lines written before: an active line has had quantity - remaining units shipped, a
-- fulfilled placed line all of them; a line recorded as fulfilled by a shipment that came
-- before its placement (never placed, so no expiry) becomes the placeholder it now is.
UPDATE reservations SET shipped = quantity - remaining WHERE status IN ('pending', 'confirmed');
UPDATE reservations SET shipped = quantity WHERE status = 'fulfilled' AND expires_at IS NOT NULL;
UPDATE reservations SET shipped = quantity, quantity = 0
 WHERE status = 'fulfilled' AND expires_at IS NULL;
