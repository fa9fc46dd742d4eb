-- A product's articles beside the case about it (issue 14: product information for agents): the case page lists
-- the knowledge base articles of the case's product, newest first; without this index that is a scan of every
-- article (100,000 in the bench).
-- depends: 0066.service_report_days
CREATE INDEX kb_articles_product ON kb_articles (product_id, updated_at DESC) WHERE product_id IS NOT NULL;
