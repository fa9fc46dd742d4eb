"""The marketing domain's SQL: the rollups' per-batch upserts, the reports over the rollups, and the same rollups
computed from the raw tables (``RAW_*``), which the tests compare with the rollups and the benchmark times as the
naive way.

A report's SQL names its sources as ``{clicks}``, ``{visitors}``, ``{stages}`` and ``{daily}``: :func:`over`
fills them with the rollup tables, :func:`naive` with the raw computations, so the two cannot drift apart.
"""

from __future__ import annotations

# --- ingestion (marketing/rollups.py) ---

# The batch's rows come as one JSON array of arrays ($1, rollups.json_rows): asyncpg encodes an array parameter
# element by element in Python, which cost ingestion more than PostgreSQL's work on the rows (5,000 arrivals:
# 11 ms of client CPU and 38 ms in all as five arrays, 1.5 ms and 10 ms as JSON).
INSERT_CLICKS = """
INSERT INTO marketing_clicks (event_id, person_id, occurred_at, affiliate_id, ad_id)
SELECT r->>0, (r->>1)::uuid, (r->>2)::timestamptz, r->>3, r->>4 FROM jsonb_array_elements($1::text::jsonb) AS j(r)
ON CONFLICT (event_id) DO NOTHING
"""

# Ad impressions (migration 0027): the ids not counted before come back; their counts are then added.
INSERT_IMPRESSIONS_SEEN = """
INSERT INTO marketing_impressions_seen (event_id, day) SELECT * FROM unnest($1::text[], $2::date[])
ON CONFLICT (event_id) DO NOTHING RETURNING event_id"""
ADD_IMPRESSIONS = """
INSERT INTO marketing_impressions_daily AS d (day, affiliate_id, ad_id, impressions)
SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::bigint[])
ON CONFLICT (day, affiliate_id, ad_id) DO UPDATE SET impressions = d.impressions + EXCLUDED.impressions"""
# Ids past the raw topics' retention can come back no more: a batch drops up to twice as many as it adds.
PRUNE_IMPRESSIONS_SEEN = """
DELETE FROM marketing_impressions_seen
 WHERE event_id IN (SELECT event_id FROM marketing_impressions_seen WHERE day < $1::date LIMIT $2::int)"""
# The range's impressions per ad ($1, $2: the range [from, to) as timestamps), with the names the ads report shows.
IMPRESSIONS = """
SELECT i.affiliate_id, i.ad_id, sum(i.impressions)::bigint AS impressions,
       a.name AS ad_name, f.name AS affiliate_name, g.name AS campaign
  FROM marketing_impressions_daily AS i
  LEFT JOIN ads AS a ON a.affiliate_id = i.affiliate_id AND a.ad_id = i.ad_id
  LEFT JOIN affiliates AS f ON f.affiliate_id = i.affiliate_id
  LEFT JOIN campaigns AS g ON g.id = a.campaign_id
 WHERE i.day >= ($1 AT TIME ZONE 'UTC')::date AND i.day < ($2 AT TIME ZONE 'UTC')::date
 GROUP BY i.affiliate_id, i.ad_id, a.name, f.name, g.name"""

INSERT_EMAIL_EVENTS = """
INSERT INTO marketing_email_events (event_id, person_id, occurred_at, type, campaign_id, send_id)
SELECT r->>0, (r->>1)::uuid, (r->>2)::timestamptz, r->>3, r->>4, r->>5
  FROM jsonb_array_elements($1::text::jsonb) AS j(r)
ON CONFLICT (event_id) DO NOTHING
"""

REFOLD = "SELECT marketing_refold($1::boolean)"  # migration 0071
QUEUED = "SELECT count(*) FROM marketing_recredit_queue"

INSERT_ARRIVALS = """
INSERT INTO marketing_arrivals (event_id, person_id, occurred_at, source, campaign)
SELECT r->>0, (r->>1)::uuid, (r->>2)::timestamptz, r->>3, r->>4 FROM jsonb_array_elements($1::text::jsonb) AS j(r)
ON CONFLICT (event_id) DO NOTHING
"""

UPSERT_VISITORS = """
INSERT INTO marketing_visitors AS v (person_id, visited_at, event_id, source, campaign, device)
SELECT (r->>0)::uuid, (r->>1)::timestamptz, r->>2, r->>3, r->>4, r->>5
  FROM jsonb_array_elements($1::text::jsonb) AS j(r)
ON CONFLICT (person_id) DO UPDATE
   SET visited_at = EXCLUDED.visited_at, event_id = EXCLUDED.event_id, source = EXCLUDED.source,
       campaign = EXCLUDED.campaign, device = EXCLUDED.device
 WHERE (EXCLUDED.visited_at, EXCLUDED.event_id) < (v.visited_at, v.event_id)
"""

# --- the rollups from the raw tables (the same definitions as the migration's backfill) ---

RAW_CLICKS = """
SELECT event_id, person_id, occurred_at, event::jsonb #>> '{affiliate,affiliate_id}' AS affiliate_id,
       event::jsonb #>> '{affiliate,ad_id}' AS ad_id
  FROM touchpoints
 WHERE type = 'ad_click' AND NOT automated
   AND jsonb_typeof(event::jsonb #> '{affiliate,affiliate_id}') = 'string'
   AND jsonb_typeof(event::jsonb #> '{affiliate,ad_id}') = 'string'
"""

RAW_VISITORS = """
SELECT DISTINCT ON (person_id) person_id, occurred_at AS visited_at, event_id,
       coalesce(nullif(event::jsonb #>> '{campaign,source}', ''), nullif(event::jsonb ->> 'referrer_class', ''),
                source) AS source,
       coalesce(event::jsonb #>> '{campaign,name}', '') AS campaign, marketing_device(event::jsonb -> 'ua') AS device
  FROM touchpoints WHERE NOT automated
 ORDER BY person_id, occurred_at, event_id
"""

RAW_EMAIL_EVENTS = """
SELECT event_id, person_id, occurred_at, type, coalesce(event::jsonb #>> '{link,campaign_id}', '') AS campaign_id,
       event::jsonb #>> '{link,send_id}' AS send_id
  FROM touchpoints
 WHERE type IN ('email_open', 'link_click') AND NOT automated
   AND jsonb_typeof(event::jsonb #> '{link,send_id}') = 'string'
"""

# Arrivals (migration 0064): touches from somewhere, a UTM source or a referrer class but internal and direct.
RAW_ARRIVALS = """
SELECT event_id, person_id, occurred_at,
       coalesce(nullif(event::jsonb #>> '{campaign,source}', ''), event::jsonb ->> 'referrer_class') AS source,
       coalesce(event::jsonb #>> '{campaign,name}', '') AS campaign
  FROM touchpoints
 WHERE NOT automated
   AND (coalesce(event::jsonb #>> '{campaign,source}', '') <> ''
        OR coalesce(event::jsonb ->> 'referrer_class', '') NOT IN ('', 'internal', 'direct'))
"""

RAW_STAGES = f"""
SELECT m.*, v.visited_at, v.source, v.campaign, v.device
  FROM (SELECT person_id,
               min(at) FILTER (WHERE to_stage IN ('lead', 'prospect', 'customer')) AS lead_at,
               min(at) FILTER (WHERE to_stage IN ('prospect', 'customer')) AS prospect_at,
               min(at) FILTER (WHERE to_stage = 'customer') AS customer_at
          FROM stage_transitions WHERE to_stage IN ('lead', 'prospect', 'customer') GROUP BY person_id) AS m
  LEFT JOIN ({RAW_VISITORS}) AS v ON v.person_id = m.person_id
"""  # noqa: S608 (fixed text)

RAW_DAILY = f"""
SELECT (visited_at AT TIME ZONE 'UTC')::date AS day, source, campaign, count(*) AS visitors
  FROM ({RAW_VISITORS}) AS v GROUP BY 1, 2, 3
"""  # noqa: S608 (fixed text)

RAW_CLICKS_DAILY = f"""
SELECT (k.occurred_at AT TIME ZONE 'UTC')::date AS day, k.affiliate_id, k.ad_id, count(*) AS clicks,
       count(*) FILTER (WHERE s.prospect_at IS NOT NULL) AS prospect_clicks
  FROM ({RAW_CLICKS}) AS k LEFT JOIN ({RAW_STAGES}) AS s ON s.person_id = k.person_id
 GROUP BY 1, 2, 3
"""  # noqa: S608 (fixed text)

# Cross-sell's baskets: a customer's products in one calendar month (migration 0023).
RAW_BASKETS = """
SELECT DISTINCT person_id, date_trunc('month', purchased_on)::date AS month, product_id FROM purchases
"""

RAW_PAIRS = f"""
SELECT x.month, x.product_id AS a, y.product_id AS b, count(*) AS together
  FROM ({RAW_BASKETS}) AS x JOIN ({RAW_BASKETS}) AS y ON y.person_id = x.person_id AND y.month = x.month
 GROUP BY 1, 2, 3
"""  # noqa: S608 (fixed text)

RAW_BUYERS = f"""
SELECT month, count(DISTINCT person_id) AS buyers FROM ({RAW_BASKETS}) AS x GROUP BY 1
"""  # noqa: S608 (fixed text)

# The forecast's history per ISO week (migration 0069): new leads, purchase rows and revenue.
RAW_WEEKLY = f"""
SELECT week, sum(leads)::bigint AS leads, sum(purchases)::bigint AS purchases, sum(revenue) AS revenue
  FROM (SELECT date_trunc('week', lead_at AT TIME ZONE 'UTC')::date AS week, 1 AS leads, 0 AS purchases,
               0 AS revenue
          FROM ({RAW_STAGES}) AS s WHERE lead_at IS NOT NULL
        UNION ALL
        SELECT date_trunc('week', purchased_on::timestamp)::date, 0, 1, quantity * price_paid FROM purchases) AS x
 GROUP BY week
"""  # noqa: S608 (fixed text)

ROLLUPS = {
    "clicks": "marketing_clicks",
    "visitors": "marketing_visitors",
    "stages": "marketing_stages",
    "daily": "marketing_visitors_daily",
    "clicks_daily": "marketing_clicks_daily",
    "baskets": "marketing_baskets",
    "pairs": "marketing_pairs",
    "buyers": "marketing_buyers",
    "email_events": "marketing_email_events",
    "arrivals": "marketing_arrivals",
    "weekly": "marketing_weekly",
}
RAW = {
    "clicks": RAW_CLICKS,
    "visitors": RAW_VISITORS,
    "stages": RAW_STAGES,
    "daily": RAW_DAILY,
    "clicks_daily": RAW_CLICKS_DAILY,
    "baskets": RAW_BASKETS,
    "pairs": RAW_PAIRS,
    "buyers": RAW_BUYERS,
    "email_events": RAW_EMAIL_EVENTS,
    "arrivals": RAW_ARRIVALS,
    "weekly": RAW_WEEKLY,
}


UUID_TEXT = (
    "'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'"  # casts to a uuid
)


def over(sql: str) -> str:
    """A report's SQL reading the rollups."""
    return sql.format(**ROLLUPS, uuid_text=UUID_TEXT)


def naive(sql: str) -> str:
    """The same report computed from the raw tables."""
    return sql.format(**{name: f"({text})" for name, text in RAW.items()}, uuid_text=UUID_TEXT)


# --- reports. $1, $2: the range [from, to) as timestamps; $3 the lookback; $4 the attribution model ---

# Persons who refused analytics consent (people/consent.py; never stated is no refusal): their conversions are credited
# to nothing, and demographics and suggestions leave them out (migration 0065; index persons_analytics_refused).
REFUSED = "(SELECT person_id FROM persons WHERE (consent -> 'analytics' ->> 'granted') = 'false')"
ANALYSABLE = "(p.consent -> 'analytics' ->> 'granted') IS DISTINCT FROM 'false'"  # of a person p

# The weight of the k-th of n touches before a conversion by the model ($4): first, last, linear, position (40/20/40).
WEIGHT = """CASE $4::text
               WHEN 'first' THEN (k = 1)::int::numeric
               WHEN 'last' THEN (k = n)::int::numeric
               WHEN 'linear' THEN 1.0 / n
               ELSE CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN k = 1 OR k = n THEN 0.4 ELSE 0.2 / (n - 2) END
           END"""

# Each conversion's touches (k: the touch's place, n: how many) in the lookback before it, by @CONVERSION@ (the
# columns naming a conversion); @LOOKBACK@ is the lookback's parameter (an interval).
TOUCHES = """touches AS (
    SELECT @COLUMNS@, row_number() OVER w AS k, count(*) OVER (PARTITION BY @CONVERSION@) AS n
      FROM conversions AS c
      JOIN @TOUCHES@ AS t ON t.person_id = c.person_id AND t.occurred_at <= c.at
       AND t.occurred_at > c.at - @LOOKBACK@::interval
       -- implied by the two above, and lets the join read only the range's touches (their index on the time)
       AND t.occurred_at > $1 - @LOOKBACK@::interval AND t.occurred_at <= $2
    WINDOW w AS (PARTITION BY @CONVERSION@ ORDER BY t.occurred_at, t.event_id)
)"""


def touches(table: str, columns: str, conversion: str, lookback: str) -> str:
    """:data:`TOUCHES` over ``table`` (a rollup's placeholder or a subquery), keeping ``columns``."""
    filled = TOUCHES.replace("@COLUMNS@", columns).replace("@CONVERSION@", conversion)
    return filled.replace("@TOUCHES@", table).replace("@LOOKBACK@", lookback)


# Conversions (a person becoming a lead, a customer; each purchase with its revenue) credited to the person's ad
# clicks within the lookback before it, by the model: first, last, linear, position (40/20/40).
CREDITS = (
    """
conversions AS (
    SELECT * FROM (
        SELECT 1 AS kind, person_id AS ref, person_id, lead_at AS at, 1 AS lead, 0 AS customer, 0::numeric AS revenue
          FROM {stages} AS s WHERE lead_at >= $1 AND lead_at < $2
        UNION ALL
        SELECT 2, person_id, person_id, customer_at, 0, 1, 0 FROM {stages} AS s WHERE customer_at >= $1 AND customer_at < $2
        UNION ALL
        SELECT 3, id, person_id, (purchased_on + 1)::timestamp AT TIME ZONE 'UTC', 0, 0, quantity * price_paid
          FROM purchases
         WHERE purchased_on >= ($1 AT TIME ZONE 'UTC')::date AND purchased_on < ($2 AT TIME ZONE 'UTC')::date
    ) AS c WHERE person_id NOT IN @REFUSED@
), @TOUCHES@, credits AS (
    SELECT affiliate_id, ad_id, lead, customer, revenue,
           @WEIGHT@ AS weight
      FROM touches
)""".replace("@WEIGHT@", WEIGHT)
    .replace("@REFUSED@", REFUSED)
    .replace(
        "@TOUCHES@",
        touches("{clicks}", "c.lead, c.customer, c.revenue, t.affiliate_id, t.ad_id", "c.kind, c.ref", "$3"),
    )
)

# Per ad (affiliate, ad): clicks and clicks from prospects in the range, and the credited conversions.
_PROSPECT_CLICKS = """
           count(*) FILTER (WHERE s.prospect_at IS NOT NULL) AS prospect_clicks
      FROM {clicks} AS k LEFT JOIN {stages} AS s ON s.person_id = k.person_id"""
_NO_PROSPECT_CLICKS = """
           0::bigint AS prospect_clicks
      FROM {clicks} AS k"""

_ADS = (
    "WITH"  # noqa: S608 (fixed text)
    + CREDITS
    + """, clicked AS (
    SELECT k.affiliate_id, k.ad_id, count(*) AS clicks,@PROSPECT@
     WHERE k.occurred_at >= $1 AND k.occurred_at < $2
     GROUP BY 1, 2
), credited AS (
    SELECT affiliate_id, ad_id, sum(weight * lead) AS leads, sum(weight * customer) AS customers,
           sum(weight * revenue) AS revenue
      FROM credits GROUP BY 1, 2
)
SELECT coalesce(c.affiliate_id, r.affiliate_id) AS affiliate_id, coalesce(c.ad_id, r.ad_id) AS ad_id,
       a.name AS ad_name, f.name AS affiliate_name, g.name AS campaign,
       coalesce(c.clicks, 0) AS clicks, coalesce(c.prospect_clicks, 0) AS prospect_clicks,
       coalesce(r.leads, 0) AS leads, coalesce(r.customers, 0) AS customers, coalesce(r.revenue, 0) AS revenue
  FROM clicked AS c
  FULL JOIN credited AS r ON r.affiliate_id = c.affiliate_id AND r.ad_id = c.ad_id
  LEFT JOIN ads AS a ON a.affiliate_id = coalesce(c.affiliate_id, r.affiliate_id) AND a.ad_id = coalesce(c.ad_id, r.ad_id)
  LEFT JOIN affiliates AS f ON f.affiliate_id = coalesce(c.affiliate_id, r.affiliate_id)
  LEFT JOIN campaigns AS g ON g.id = a.campaign_id
"""
)
# Affiliates count clicks from prospects (the stage rollup joined to the range's clicks); ads need not.
AFFILIATES = _ADS.replace("@PROSPECT@", _PROSPECT_CLICKS)
ADS = _ADS.replace("@PROSPECT@", _NO_PROSPECT_CLICKS)

# The same report from the daily rollups of migration 0023, for a kept lookback ($3, days; the credits per
# conversion, ad and model were computed as conversions and clicks came): reads days x ads rows.
ADS_DAILY = """
WITH clicked AS (
    SELECT affiliate_id, ad_id, sum(clicks)::bigint AS clicks, sum(prospect_clicks)::bigint AS prospect_clicks
      FROM marketing_clicks_daily
     WHERE day >= ($1 AT TIME ZONE 'UTC')::date AND day < ($2 AT TIME ZONE 'UTC')::date
     GROUP BY 1, 2
), credited AS (
    SELECT affiliate_id, ad_id, sum(leads) AS leads, sum(customers) AS customers, sum(revenue) AS revenue
      FROM marketing_credits_daily
     WHERE lookback = $3::int AND model = $4::text
       AND day >= ($1 AT TIME ZONE 'UTC')::date AND day < ($2 AT TIME ZONE 'UTC')::date
     GROUP BY 1, 2
)""" + _ADS[_ADS.index("\nSELECT coalesce(c.affiliate_id") :]  # noqa: S608 (fixed text)

# E-mails: per send (an email_sends row), sends made in the range, real opens and clicks in the range (distinct
# persons), and the conversions in the range credited to the persons' clicks on the sends' links by the model.
# The credits come from the daily sums of migration 0063 for a kept lookback (EMAILS_DAILY), else are computed per
# request (EMAILS). Rates, rounding and order are done here, so the rows come out as the report shows them: one
# per e-mail sent, by send (6,000 in 30 days in the benchmark), which Python only turns into dicts.
_EMAIL_CLICKS = """(SELECT event_id, person_id, occurred_at, campaign_id AS affiliate_id, send_id AS ad_id
   FROM {email_events} AS e WHERE e.type = 'link_click')"""
_EMAIL_CREDITED = """, credited AS (
    SELECT ad_id AS send_id, min(affiliate_id) AS campaign_id, sum(weight * lead) AS leads,
           sum(weight * customer) AS customers, sum(weight * revenue) AS revenue
      FROM credits GROUP BY 1
)"""
_EMAIL_CREDITED_DAILY = """ credited AS (
    SELECT send_id, min(campaign_id) AS campaign_id, sum(leads) AS leads, sum(customers) AS customers,
           sum(revenue) AS revenue
      FROM marketing_email_credits_daily
     WHERE lookback = $3::int AND model = $4::text
       AND day >= ($1 AT TIME ZONE 'UTC')::date AND day < ($2 AT TIME ZONE 'UTC')::date
     GROUP BY 1
)"""
_EMAIL_SENDS = """, sent AS (
    SELECT id::text AS send_id, campaign_id, subject, sent_at FROM email_sends WHERE sent_at >= $1 AND sent_at < $2
), engaged AS (
    SELECT send_id, min(campaign_id) AS campaign_id,
           count(DISTINCT person_id) FILTER (WHERE type = 'email_open') AS opens,
           count(DISTINCT person_id) FILTER (WHERE type = 'link_click') AS clicks
      FROM {email_events} AS e WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1
), others AS (  -- sends engaged with or credited in the range but made before it: looked up one by one
    SELECT send_id, min(campaign_id) AS campaign_id FROM (
        SELECT send_id, campaign_id FROM engaged UNION ALL SELECT send_id, campaign_id FROM credited) AS o
     WHERE send_id NOT IN (SELECT send_id FROM sent) GROUP BY 1
), keyed AS (
    SELECT send_id, campaign_id, subject, sent_at, 1 AS sends FROM sent
    UNION ALL
    SELECT o.send_id, coalesce(s.campaign_id, CASE WHEN o.campaign_id ~ {uuid_text} THEN o.campaign_id::uuid END),
           s.subject, s.sent_at, 0
      FROM others AS o
      LEFT JOIN email_sends AS s ON s.id = CASE WHEN o.send_id ~ {uuid_text} THEN o.send_id::uuid END
), per_send AS (
    SELECT k.send_id, coalesce(k.subject, '') AS subject, k.sent_at, coalesce(nullif(g.name, ''), '(none)') AS campaign,
           k.sends, coalesce(e.opens, 0) AS opens, coalesce(e.clicks, 0) AS clicks,
           coalesce(r.leads, 0) AS leads, coalesce(r.customers, 0) AS customers, coalesce(r.revenue, 0) AS revenue
      FROM keyed AS k
      LEFT JOIN engaged AS e ON e.send_id = k.send_id
      LEFT JOIN credited AS r ON r.send_id = k.send_id
      LEFT JOIN campaigns AS g ON g.id = k.campaign_id
)
"""
EMAILS = "WITH" + CREDITS.replace("{clicks}", _EMAIL_CLICKS) + _EMAIL_CREDITED + _EMAIL_SENDS
EMAILS_DAILY = "WITH" + _EMAIL_CREDITED_DAILY + _EMAIL_SENDS
# The figures of a row of @FROM@ (per_send, or its sums per campaign), rounded as reports._num and _rate round,
# ordered by the rounded figures (float8: sorting the numerics took 50 ms for 6,000 sends on a loaded machine).
_EMAIL_FIGURES = """sends, opens, clicks, round(leads, 4)::float8 AS leads,
       round(customers, 4)::float8 AS customers, round(revenue, 2)::float8 AS revenue,
       CASE WHEN sends > 0 THEN round(opens::numeric / sends, 4)::float8 ELSE 0 END AS open_rate,
       CASE WHEN sends > 0 THEN round(clicks::numeric / sends, 4)::float8 ELSE 0 END AS click_through,
       CASE WHEN opens > 0 THEN round(clicks::numeric / opens, 4)::float8 ELSE 0 END AS click_to_open
  FROM @FROM@) AS shaped
 ORDER BY revenue DESC, leads DESC, clicks DESC, @KEY@ COLLATE "C"
"""
# by send: one page ($5 rows after the first $6) and the count of all (a month holds thousands of sends)
EMAIL_BY_SEND = (
    "SELECT *, count(*) OVER () AS total FROM (SELECT send_id, subject, sent_at, campaign, "  # noqa: S608
    + _EMAIL_FIGURES.replace("@FROM@", "per_send").replace("@KEY@", "send_id")
    + " LIMIT $5::int OFFSET $6::int\n"
)
# per mailing: the sends of one campaign with one subject on one day (a newsletter sent to its list), added up in
# PostgreSQL; "sends" is then its recipient count. A send engaged with in the range but made before it, and no
# longer stored, has no subject or day: its figures go to the campaign's row without them.
EMAIL_BY_MAILING = "SELECT * FROM (SELECT campaign, subject, sent_on, " + _EMAIL_FIGURES.replace(  # noqa: S608
    "@FROM@",
    """(SELECT campaign, subject, (sent_at AT TIME ZONE 'UTC')::date AS sent_on, sum(sends)::bigint AS sends,
               sum(opens)::bigint AS opens, sum(clicks)::bigint AS clicks, sum(leads) AS leads,
               sum(customers) AS customers, sum(revenue) AS revenue
          FROM per_send GROUP BY 1, 2, 3) AS m""",
).replace("@KEY@", "campaign || ' ' || subject || ' ' || coalesce(sent_on::text, '')")
# per campaign, added up in PostgreSQL: a few rows to send instead of one per e-mail
EMAIL_BY_CAMPAIGN = "SELECT * FROM (SELECT campaign, " + _EMAIL_FIGURES.replace(  # noqa: S608
    "@FROM@",
    """(SELECT campaign, sum(sends)::bigint AS sends, sum(opens)::bigint AS opens, sum(clicks)::bigint AS clicks,
               sum(leads) AS leads, sum(customers) AS customers, sum(revenue) AS revenue
          FROM per_send GROUP BY campaign) AS c""",
).replace("@KEY@", "campaign")

# Funnel: new visitors per day from the daily counts; the persons who became leads, prospects, customers in the
# range with the visit they came from, kept on their stage row (migration 0022; $3: by source, campaign or nothing).
# The medians order by date_part('epoch', …), a float8, not extract(epoch …), a numeric since PostgreSQL 14 that
# percentile_cont casts to float8 row by row: over the benchmark's 50,000 moves of 180 days, 108 -> 28 ms.
FUNNEL_VISITORS = """
SELECT CASE $3::text WHEN 'source' THEN source WHEN 'campaign' THEN campaign ELSE '' END AS key,
       sum(visitors)::bigint AS visitors
  FROM {daily} AS d WHERE day >= ($1 AT TIME ZONE 'UTC')::date AND day < ($2 AT TIME ZONE 'UTC')::date
 GROUP BY 1
"""

FUNNEL_STAGES = """
WITH moved AS (
    SELECT s.*,
           CASE $3::text WHEN 'source' THEN coalesce(s.source, '') WHEN 'campaign' THEN coalesce(s.campaign, '')
                ELSE '' END AS key
      FROM {stages} AS s
     WHERE (s.lead_at >= $1 AND s.lead_at < $2) OR (s.prospect_at >= $1 AND s.prospect_at < $2)
        OR (s.customer_at >= $1 AND s.customer_at < $2)
)
SELECT key,
       count(*) FILTER (WHERE lead_at >= $1 AND lead_at < $2) AS leads,
       count(*) FILTER (WHERE prospect_at >= $1 AND prospect_at < $2) AS prospects,
       count(*) FILTER (WHERE customer_at >= $1 AND customer_at < $2) AS customers,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', lead_at - visited_at))
           FILTER (WHERE lead_at >= $1 AND lead_at < $2) / 86400 AS days_to_lead,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', prospect_at - lead_at))
           FILTER (WHERE prospect_at >= $1 AND prospect_at < $2) / 86400 AS days_to_prospect,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', customer_at - coalesce(prospect_at, lead_at)))
           FILTER (WHERE customer_at >= $1 AND customer_at < $2) / 86400 AS days_to_customer
  FROM moved GROUP BY key
"""

# A funnel's figures per key from per_key (a row per stage move and key: its credit, days since the stage before).
_FUNNEL_KEYS = """
SELECT key,
       sum(weight) FILTER (WHERE stage = 1) AS leads,
       sum(weight) FILTER (WHERE stage = 2) AS prospects,
       sum(weight) FILTER (WHERE stage = 3) AS customers,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY days) FILTER (WHERE stage = 1 AND weight > 0) AS days_to_lead,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY days) FILTER (WHERE stage = 2 AND weight > 0) AS days_to_prospect,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY days) FILTER (WHERE stage = 3 AND weight > 0) AS days_to_customer
  FROM per_key GROUP BY key
"""

# The funnel by source or campaign ($3), credited by the model ($4) to the person's arrivals (migration 0064) in the
# lookback ($5, an interval) before each stage move in the range: a conversion without an arrival in its window
# goes to its first visit's source or campaign whole. Each (conversion, key) counts once in the medians, if its
# credit is above 0. The same weights as CREDITS.
FUNNEL_CREDITED = (
    (
        "WITH"  # noqa: S608 (fixed text)
        + """ conversions AS (
    SELECT s.person_id, v.stage, v.at, v.since, coalesce(s.source, '') AS source, coalesce(s.campaign, '') AS campaign
      FROM {stages} AS s
     CROSS JOIN LATERAL (VALUES (1, s.lead_at, s.visited_at), (2, s.prospect_at, s.lead_at),
                                (3, s.customer_at, coalesce(s.prospect_at, s.lead_at))) AS v(stage, at, since)
     WHERE ((s.lead_at >= $1 AND s.lead_at < $2) OR (s.prospect_at >= $1 AND s.prospect_at < $2)
            OR (s.customer_at >= $1 AND s.customer_at < $2))
       AND v.at >= $1 AND v.at < $2 AND s.person_id NOT IN @REFUSED@
), @TOUCHES@, credits AS (
    SELECT person_id, stage, CASE $3::text WHEN 'source' THEN source ELSE campaign END AS key,
           @WEIGHT@ AS weight
      FROM touches
    UNION ALL
    SELECT person_id, stage, CASE $3::text WHEN 'source' THEN source ELSE campaign END, 1.0
      FROM conversions AS c
     WHERE NOT EXISTS (SELECT 1 FROM touches AS t WHERE t.person_id = c.person_id AND t.stage = c.stage)
), per_key AS (
    SELECT r.key, r.stage, sum(r.weight) AS weight, extract(epoch FROM c.at - c.since) / 86400 AS days
      FROM credits AS r JOIN conversions AS c ON c.person_id = r.person_id AND c.stage = r.stage
     GROUP BY r.key, r.stage, r.person_id, c.at, c.since
)"""
        + _FUNNEL_KEYS
    )
    .replace("@WEIGHT@", WEIGHT)
    .replace("@REFUSED@", REFUSED)
    .replace(
        "@TOUCHES@",
        touches("{arrivals}", "c.person_id, c.stage, t.source, t.campaign", "c.person_id, c.stage", "$5"),
    )
)
# The same from the stage moves' credits kept per lookback (migration 0064; $5 the lookback in days): a row per
# move and key already.
FUNNEL_KEPT = (
    "WITH"  # noqa: S608 (fixed text)
    + """ per_key AS (
    SELECT key, stage, days,
           CASE $4::text WHEN 'first' THEN w_first WHEN 'last' THEN w_last WHEN 'linear' THEN w_linear
                ELSE w_position END AS weight
      FROM marketing_stage_credits WHERE lookback = $5::int AND dim = $3::text AND at >= $1 AND at < $2
)"""
    + _FUNNEL_KEYS
)

# Products: units, revenue and the unit price paid against the list price; $3 groups by product, period or rep,
# $4 the period's unit (day, week, month). price_paid is the price of one unit (revenue = quantity x price).
PRODUCTS = """
SELECT CASE $3::text WHEN 'period' THEN to_char(date_trunc($4::text, p.purchased_on), 'YYYY-MM-DD')
                     WHEN 'rep' THEN coalesce(u.name, '(none)') ELSE pr.sku END AS key,
       CASE $3::text WHEN 'product' THEN min(pr.name) ELSE '' END AS name,
       sum(p.quantity)::bigint AS units, sum(p.quantity * p.price_paid) AS revenue,
       round(sum(p.quantity * p.price_paid) / sum(p.quantity), 2) AS price_avg,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.price_paid)::numeric(14, 2) AS price_median,
       min(p.price_paid) AS price_min, max(p.price_paid) AS price_max,
       CASE $3::text WHEN 'product' THEN min(pr.list_price) END AS list_price
  FROM purchases AS p JOIN products AS pr ON pr.id = p.product_id LEFT JOIN users AS u ON u.id = p.sales_rep
 WHERE p.purchased_on >= ($1 AT TIME ZONE 'UTC')::date AND p.purchased_on < ($2 AT TIME ZONE 'UTC')::date
   AND ($5::uuid IS NULL OR p.product_id = $5) AND ($6::uuid IS NULL OR p.sales_rep = $6)
 GROUP BY 1 ORDER BY revenue DESC, key
"""

# Demographics of the persons who became leads in the range (their stage now: leads, prospects, customers; not
# those who refused analytics), by one of the person's facts or their first visit's device (@COLUMN@: a fixed expression chosen in code).
DEMOGRAPHICS = """
SELECT coalesce(nullif(@COLUMN@, ''), '(unknown)') AS key,
       count(*) FILTER (WHERE p.stage IN ('lead', 'prospect')) AS leads,
       count(*) FILTER (WHERE p.stage = 'customer') AS customers
  FROM {stages} AS s JOIN persons AS p ON p.person_id = s.person_id
 WHERE s.lead_at >= $1 AND s.lead_at < $2 AND p.stage IN ('lead', 'prospect', 'customer') AND @ANALYSABLE@
 GROUP BY 1 ORDER BY customers DESC, leads DESC, key
""".replace("@ANALYSABLE@", ANALYSABLE)

# --- forecast: weekly history ($1, $2: the first Monday and the Monday after the last week) ---

WEEKLY = """
SELECT week, leads::float8 AS leads, revenue::float8 AS revenue
  FROM {weekly} AS w WHERE week >= ($1 AT TIME ZONE 'UTC')::date AND week < ($2 AT TIME ZONE 'UTC')::date
"""

# --- cross-sell: products in the same customers' monthly baskets ($1, $2 the first and the last month; $3 at
# least this many baskets together), from the pair counts kept at purchase time (migration 0023) ---

RULES = """
buyers AS (
    SELECT sum(buyers)::float8 AS n FROM {buyers} AS x WHERE month >= $1::date AND month <= $2::date
), singles AS (
    SELECT a AS product_id, sum(together)::float8 AS c FROM {pairs} AS x
     WHERE a = b AND month >= $1::date AND month <= $2::date GROUP BY 1
), pairs AS (
    SELECT a, b, sum(together)::bigint AS together FROM {pairs} AS x
     WHERE a <> b AND month >= $1::date AND month <= $2::date GROUP BY 1, 2 HAVING sum(together) >= $3
), rules AS (
    SELECT p.a, p.b, p.together, p.together / buyers.n AS support, p.together / sa.c AS confidence,
           (p.together / sa.c) / (sb.c / buyers.n) AS lift
      FROM pairs AS p CROSS JOIN buyers
      JOIN singles AS sa ON sa.product_id = p.a JOIN singles AS sb ON sb.product_id = p.b
)"""

CROSS_SELL = (
    "WITH"
    + RULES
    + """
SELECT pa.sku AS product, pa.name AS product_name, pb.sku AS also_bought, pb.name AS also_bought_name,
       r.together, r.support, r.confidence, r.lift
  FROM rules AS r JOIN products AS pa ON pa.id = r.a JOIN products AS pb ON pb.id = r.b
 ORDER BY r.lift DESC, r.confidence DESC, pa.sku, pb.sku LIMIT $4
"""
)

# Next products for one person ($5): rules from what they bought to what they have not, best confidence first.
SUGGESTIONS = (
    "WITH"  # noqa: S608 (fixed text)
    + RULES
    + """, mine AS (  -- nothing for a person who refused analytics: suggestions profile them
    SELECT DISTINCT product_id FROM purchases WHERE person_id = $5 AND $5 NOT IN @REFUSED@)
SELECT pb.id AS product_id, pb.sku, pb.name, pb.list_price, max(r.confidence) AS confidence, max(r.lift) AS lift,
       array_agg(pa.sku ORDER BY r.confidence DESC) AS because
  FROM rules AS r JOIN mine ON mine.product_id = r.a
  JOIN products AS pa ON pa.id = r.a JOIN products AS pb ON pb.id = r.b
 WHERE r.b NOT IN (SELECT product_id FROM mine) AND pb.active
 GROUP BY pb.id, pb.sku, pb.name, pb.list_price
 ORDER BY max(r.confidence) DESC, max(r.lift) DESC, pb.sku LIMIT $4
"""
).replace("@REFUSED@", REFUSED)
