-- A won deal records its purchases (issue 15): a purchase may name the deal it came from; its rep is then the
-- deal's owner unless another is named.
-- depends: 0044.sales_targets

ALTER TABLE purchases ADD COLUMN deal_id uuid REFERENCES deals (id) ON DELETE SET NULL;
CREATE INDEX purchases_deal ON purchases (deal_id) WHERE deal_id IS NOT NULL;
