-- Purchases from websites (issue 13): Segment's e-commerce `Order Completed` becomes one purchase per product line
-- (products matched by SKU), idempotent by the site's order id: a line already stored for that order and product is
-- not stored again, whichever message carried it (a retry, a second tab, a replay).
-- depends: 0020.marketing_rollups
ALTER TABLE purchases ADD COLUMN order_id text;
CREATE UNIQUE INDEX purchases_order_line ON purchases (order_id, product_id) WHERE order_id IS NOT NULL;
