-- The sales pages with 100,000 deals (issue 15, benchmarks/sales_bench.py): a rep's own board counts their deals
-- per stage from an index alone; the deal table's default order (newest first) and its title search read indexes
-- instead of sorting or scanning every deal.
-- depends: 0040.sales
CREATE INDEX deals_pipeline_owner ON deals (pipeline_id, owner_id, stage_id) INCLUDE (amount, currency);
CREATE INDEX deals_created ON deals (created_at, id);
CREATE INDEX deals_title ON deals USING gin (title public.gin_trgm_ops);
