-- Ad impressions (issue 13): the affiliates' impression pixel (/a/{affiliate}/{ad}/i.gif) sends ad_impression
-- events with no identifier; they make no person and no touchpoint (a view of our ad on another site is not a
-- visitor of ours), only a count per day, affiliate and ad, which the ads report divides clicks by (CTR). The
-- ad's campaign comes from the ads table when the report is read, as for clicks: an ad belongs to one campaign.
-- * marketing_impressions_daily: the counts, added to by ingestion once per batch (marketing/rollups.py
--   count_impressions). Bots' and image proxies' impressions are left out (lifecycle.automated).
-- * marketing_impressions_seen: the event ids already counted, so that a replayed batch adds nothing twice.
--   Only an id and a day: nothing personal. Rows older than the raw topic's retention may be deleted
--   (a replay cannot bring them back); the counts stay.
-- depends: 0026.marketing_rollups_zero_rows

CREATE TABLE marketing_impressions_daily (
    day           date NOT NULL,
    affiliate_id  text NOT NULL,
    ad_id         text NOT NULL,
    impressions   bigint NOT NULL,
    PRIMARY KEY (day, affiliate_id, ad_id)
);

CREATE TABLE marketing_impressions_seen (
    event_id  text PRIMARY KEY,
    day       date NOT NULL
);
CREATE INDEX marketing_impressions_seen_day ON marketing_impressions_seen (day);
