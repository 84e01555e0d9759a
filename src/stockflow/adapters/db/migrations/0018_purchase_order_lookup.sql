-- GET /v1/purchase-orders/{po_id} finds a purchase order at every key it is recorded at;
-- the primary key leads with the key, so a lookup by po_id alone needs its own index.
CREATE INDEX purchase_orders_po_id ON purchase_orders (po_id);
