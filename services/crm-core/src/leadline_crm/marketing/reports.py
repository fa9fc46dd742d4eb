"""Marketing reports (issue 13): ads, affiliates, e-mails, products, demographics, the funnel, the forecast and
cross-sell, as JSON or CSV.

Each report reads the rollups of migrations 0020-0065 (kept by ingestion and by triggers, never a scan of
touchpoints), the catalogue, the purchases and, for demographics, the persons who became leads. :func:`compute`
answers a report for a :class:`Query`; ``naive=True`` computes it from the raw tables instead (tests, benchmark).

Attribution (ads, affiliates, e-mails): each conversion (a person becoming a lead, a customer; each purchase, with
its revenue, at the end of its day) is credited to that person's ad (or e-mail link) clicks within the lookback
before it: ``first`` or ``last`` click all of it, ``linear`` equal shares, ``position`` 40 % to the first and the
last, the other 20 % shared by the clicks between (half each for two clicks). A conversion without a click in its
window is credited to no ad. The funnel credits stage moves to the person's arrivals the same way (see
:func:`funnel`). A person who refused analytics consent is credited nowhere and left out of demographics and
suggestions (migration 0065). Bots', link scanners' and image proxies' events count nowhere (they make no
clicks, visits or moves).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from leadline_crm.http.errors import BadRequest
from leadline_crm.marketing import forecast as ets
from leadline_crm.marketing import queries, recredit

MODELS = ("first", "last", "linear", "position")
REPORTS = ("ads", "affiliates", "emails", "products", "demographics", "funnel", "forecast", "cross-sell")
AD_GROUPS = ("ad", "campaign", "affiliate")
EMAIL_GROUPS = ("campaign", "send", "mailing")
FUNNEL_GROUPS = ("all", "source", "campaign")
PRODUCT_GROUPS = ("product", "period", "rep")
PERIODS = ("day", "week", "month")
DIMENSIONS = ("country", "region", "age_band", "gender", "industry", "company_size", "device")
DEFAULT_DAYS = 30
SEND_PAGE, MAX_SEND_PAGE = (
    100,
    10_000,
)  # the emails report by send: sends per page (6,000 in 30 days in the bench)


@dataclass(frozen=True)
class Query:
    """A report's parameters: the range of days (both included), the attribution model and lookback, grouping."""

    start: date
    end: date
    model: str = "position"
    lookback_days: int = 30
    by: str = ""
    period: str = "month"
    product_id: str | None = None
    sales_rep: str | None = None
    limit: int = SEND_PAGE  # the emails report by send: a page of sends, the first ``offset`` left out
    offset: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str], today: date | None = None) -> Query:
        """From query parameters ``from``, ``to`` (ISO dates), ``model``, ``lookback`` (days), ``by``,
        ``period``, ``product_id``, ``sales_rep``, ``limit`` and ``offset`` (a page of sends); 422 naming the bad
        one."""
        today = today or datetime.now(UTC).date()
        end = _date(params, "to", today)
        start = _date(params, "from", end - timedelta(days=DEFAULT_DAYS - 1))
        if start > end:
            raise BadRequest("from must not be after to")
        model = params.get("model", "position")
        if model not in MODELS:
            raise BadRequest(f"model must be one of {', '.join(MODELS)}")
        lookback = params.get("lookback", "30")
        if not (lookback.isascii() and lookback.isdigit()) or not 1 <= int(lookback) <= 365:
            raise BadRequest("lookback must be a number of days from 1 to 365")
        period = params.get("period", "month")
        if period not in PERIODS:
            raise BadRequest(f"period must be one of {', '.join(PERIODS)}")
        return cls(
            start,
            end,
            model,
            int(lookback),
            params.get("by", ""),
            period,
            _uuid_text(params, "product_id"),
            _uuid_text(params, "sales_rep"),
            _count_param(params, "limit", SEND_PAGE, 1, MAX_SEND_PAGE),
            _count_param(params, "offset", 0, 0, 10_000_000),
        )

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)

    def choose(self, allowed: tuple[str, ...]) -> str:
        """The ``by`` grouping among ``allowed`` (the first by default)."""
        if not self.by:
            return allowed[0]
        if self.by not in allowed:
            raise BadRequest(f"by must be one of {', '.join(allowed)}")
        return self.by


@asynccontextmanager
async def custom_plans(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Plan each report statement for its own parameters. asyncpg prepares statements, and from the sixth call on
    a connection PostgreSQL may switch to a generic plan, which cannot see how many rows a date range holds and
    picks nested loops (cross-sell: 3 ms, then 185 ms from the sixth call on).

    First, outside the report's transaction, the credits still queued are folded (migration 0071): the fold holds
    its lock until its transaction ends, and inside the report's it would hold it for the whole report, so
    reports read at once (the dashboard's) would take turns. :func:`_credit_sql` catches up again inside, which
    costs one look at an empty queue."""
    await recredit.catch_up(conn)
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield


def _date(params: Mapping[str, str], name: str, default: date) -> date:
    raw = params.get(name)
    if not raw:
        return default
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None
    if not 1970 <= day.year <= 2999:  # keeps every date the reports derive (weeks back, a day on) in range
        raise BadRequest(f"{name} must be a date from 1970 to 2999")
    return day


def _count_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high:,}")
    return int(text)


def _uuid_text(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise BadRequest(f"{name} must be a UUID") from None


def _num(value: Any, places: int = 4) -> float:
    """A figure for JSON and CSV alike: shares rounded to 4 places, money to 2."""
    if value is None:
        return 0.0
    return round(float(value), places)


def _rate(part: Any, whole: Any) -> float:
    return round(float(part) / float(whole), 4) if whole else 0.0


KEPT_LOOKBACKS = (7, 30, 90)  # kept in marketing_credits_daily (migration 0023 marketing_lookbacks())


async def _credit_sql(
    conn: asyncpg.Connection, q: Query, sql: str, daily: str, naive: bool
) -> tuple[str, Any]:
    """``daily``, over the daily credits, for a kept lookback (days), once the credits still queued are computed
    (migration 0071: ingestion queues them); else ``sql``, crediting per request over the click and stage rollups
    (or, ``naive``, over the raw tables) within the lookback (an interval)."""
    if naive:
        return queries.naive(sql), timedelta(days=q.lookback_days)
    if q.lookback_days in KEPT_LOOKBACKS:
        await recredit.catch_up(conn)
        return queries.over(daily), q.lookback_days
    return queries.over(sql), timedelta(days=q.lookback_days)


def _group(r: asyncpg.Record, by: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The key a row of an ads query adds to, and the group's names, for grouping ``by``."""
    if by == "ad":
        head = {
            "affiliate_id": r["affiliate_id"],
            "ad_id": r["ad_id"],
            "name": r["ad_name"] or r["ad_id"],
            "campaign": r["campaign"] or "",
        }
        return (r["affiliate_id"], r["ad_id"]), head
    if by == "campaign":
        return (r["campaign"] or "",), {"campaign": r["campaign"] or "(none)"}
    return (r["affiliate_id"],), {
        "affiliate_id": r["affiliate_id"],
        "name": r["affiliate_name"] or r["affiliate_id"],
    }


def _empty(head: dict[str, Any], impressions: bool) -> dict[str, Any]:
    counts = {
        "clicks": 0,
        "prospect_clicks": 0,
        "leads": Decimal(0),
        "customers": Decimal(0),
        "revenue": Decimal(0),
    }
    return {**head, **({"impressions": 0} if impressions else {}), **counts}


async def _ads(
    conn: asyncpg.Connection,
    q: Query,
    sql: str,
    by: str,
    naive: bool,
    impressions: list[asyncpg.Record] | None = None,
) -> list[dict[str, Any]]:
    """The credited ads query grouped ``by``; with ``impressions`` (rows of queries.IMPRESSIONS), each group
    also counts its impressions and its click-through rate (clicks per impression)."""
    text, lookback = await _credit_sql(conn, q, sql, queries.ADS_DAILY, naive)
    rows = await conn.fetch(text, q.since, q.until, lookback, q.model)
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    shown = impressions is not None
    for r in impressions or ():
        key, head = _group(r, by)
        groups.setdefault(key, _empty(head, shown))["impressions"] += r["impressions"]
    for r in rows:
        key, head = _group(r, by)
        row = groups.setdefault(key, _empty(head, shown))
        for name in ("clicks", "prospect_clicks", "leads", "customers", "revenue"):
            row[name] += r[name]
    out = []
    for row in groups.values():
        if shown:
            row["click_through_rate"] = _rate(row["clicks"], row["impressions"])
        row["leads"], row["customers"] = _num(row["leads"]), _num(row["customers"])
        row["revenue"] = _num(row["revenue"], 2)
        row["lead_rate"] = _rate(row["leads"], row["clicks"])
        row["conversion_rate"] = _rate(row["customers"], row["clicks"])
        out.append(row)
    return out


async def ads(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """Impressions, clicks, click-through rate (clicks per impression), leads, customers, conversion rate
    (customers per click) and revenue by ad, campaign or affiliate, most revenue first.

    Impressions come from their daily rollup (migration 0027) in the naive computation too: crm-core keeps no
    raw impression, only the count (the raw events stay on the raw topic)."""
    by = q.choose(AD_GROUPS)
    shown = await conn.fetch(queries.IMPRESSIONS, q.since, q.until)
    rows = await _ads(conn, q, queries.ADS, by, naive, list(shown))
    for row in rows:
        row.pop("prospect_clicks")
    return sorted(rows, key=lambda r: (-r["revenue"], -r["customers"], -r["clicks"], str(r.get("name", ""))))


async def affiliates(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """Affiliates ranked by clicks from prospects (persons who became prospects), with clicks, leads, customers
    and revenue credited to them."""
    rows = await _ads(conn, q, queries.AFFILIATES, "affiliate", naive)
    for row in rows:
        row.pop("lead_rate")
        row.pop("conversion_rate")
    return sorted(rows, key=lambda r: (-r["prospect_clicks"], -r["clicks"], r["affiliate_id"]))


async def emails(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """Per campaign, per send (an e-mail sent, with its subject and time) or per mailing (a campaign's sends with
    one subject on one day: a newsletter and its recipient count): sends made in the range, persons who
    really opened and who clicked in the range (image proxies, link scanners and bots left out), click-through
    (clickers per send) and click-to-open, and the leads, customers and revenue of the range credited to the
    clicks on its links by the attribution model, most revenue first. The credits of a kept lookback come from
    their daily sums (migration 0063); the rows come shaped from PostgreSQL (queries.EMAIL_BY_SEND). By send,
    one page of them (:func:`email_page`)."""
    return (await email_page(conn, q, naive))[0]


async def email_page(
    conn: asyncpg.Connection, q: Query, naive: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """:func:`emails`' rows and how many there are in all: by send, the ``q.limit`` sends after the first
    ``q.offset`` in the report's order (a month holds thousands; shaping and sending them all took most of the
    call), by campaign all of them."""
    by = q.choose(EMAIL_GROUPS)
    shape = {"send": queries.EMAIL_BY_SEND, "mailing": queries.EMAIL_BY_MAILING}.get(
        by, queries.EMAIL_BY_CAMPAIGN
    )
    sql, lookback = await _credit_sql(conn, q, queries.EMAILS + shape, queries.EMAILS_DAILY + shape, naive)
    if by != "send":  # a few rows: every one of them
        rows = [dict(r) for r in await conn.fetch(sql, q.since, q.until, lookback, q.model)]
        for row in rows:
            if "sent_on" in row:
                row["sent_on"] = row["sent_on"].isoformat() if row["sent_on"] else None
        return rows, len(rows)
    page = [dict(r) for r in await conn.fetch(sql, q.since, q.until, lookback, q.model, q.limit, q.offset)]
    if not page and q.offset:  # past the last page: the count from the first row
        first = await conn.fetchrow(sql, q.since, q.until, lookback, q.model, 1, 0)
        return [], first["total"] if first else 0
    total = page[0]["total"] if page else 0
    for row in page:
        del row["total"]
        row["sent_at"] = row["sent_at"].isoformat() if row["sent_at"] else None
    return page, total


async def funnel(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """New visitors, then persons who became leads, prospects and customers in the range, the rates from stage to
    stage, and the median days from one stage to the next; in all, or by source or campaign. A stage skipped (a
    lead who buys) counts as reached when the later one was, so each stage holds the next.

    Visitors count by their first visit's source or campaign. A stage move is credited by the attribution model
    to the sources or campaigns of the person's arrivals (migration 0064) in the lookback before it, or whole to
    the first visit's when there is none (kept per move for the kept lookbacks); a key's medians are over the
    moves it has credit for."""
    by = q.choose(FUNNEL_GROUPS)
    form = queries.naive if naive else queries.over
    visitors = {
        r["key"]: r["visitors"] for r in await conn.fetch(form(queries.FUNNEL_VISITORS), q.since, q.until, by)
    }
    if by == "all":
        stages = {r["key"]: r for r in await conn.fetch(form(queries.FUNNEL_STAGES), q.since, q.until, by)}
    else:
        sql, lookback = await _credit_sql(conn, q, queries.FUNNEL_CREDITED, queries.FUNNEL_KEPT, naive)
        stages = {r["key"]: r for r in await conn.fetch(sql, q.since, q.until, by, q.model, lookback)}
    out = []
    for key in sorted(set(visitors) | set(stages)):
        s = stages.get(key)
        count = {name: _count(s[name] if s else 0) for name in ("leads", "prospects", "customers")}
        seen = visitors.get(key, 0)
        out.append(
            {
                **({} if by == "all" else {by: key}),
                "visitors": seen,
                **count,
                "lead_rate": _rate(count["leads"], seen),
                "prospect_rate": _rate(count["prospects"], count["leads"]),
                "customer_rate": _rate(count["customers"], count["prospects"]),
                "median_days_to_lead": _num(s["days_to_lead"] if s else None, 2),
                "median_days_to_prospect": _num(s["days_to_prospect"] if s else None, 2),
                "median_days_to_customer": _num(s["days_to_customer"] if s else None, 2),
            }
        )
    return sorted(out, key=lambda r: (-r["visitors"], -r["leads"], str(r.get(by, ""))))


def _count(value: Any) -> int | float:
    """A count of persons, or their credited share (4 places) when attribution splits them."""
    if isinstance(value, Decimal):
        return _num(value)
    return int(value or 0)


async def products(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """Units sold, revenue and the unit price paid (average per unit, median, min, max) against the list price;
    by product, period or sales rep."""
    by = q.choose(PRODUCT_GROUPS)
    rows = await conn.fetch(queries.PRODUCTS, q.since, q.until, by, q.period, q.product_id, q.sales_rep)
    out = []
    for r in rows:
        row: dict[str, Any] = {by: r["key"]}
        if by == "product":
            row["name"] = r["name"]
        row |= {"units": r["units"], "revenue": _num(r["revenue"], 2)}
        row |= {name: _num(r[name], 2) for name in ("price_avg", "price_median", "price_min", "price_max")}
        if by == "product":
            row["list_price"] = _num(r["list_price"], 2)
            row["discount"] = (
                _rate(r["list_price"] - r["price_avg"], r["list_price"]) if r["list_price"] else 0.0
            )
        out.append(row)
    return out


async def demographics(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """Persons who became leads in the range, by one fact (country, region, age band, gender, industry, company
    size) or the device class of their first visit (desktop, mobile, tablet): how many are leads (or prospects)
    and how many customers now."""
    by = q.choose(DIMENSIONS)
    column = "s.device" if by == "device" else f"p.{by}"  # one of DIMENSIONS, never the caller's text
    sql = queries.DEMOGRAPHICS.replace("@COLUMN@", column)
    rows = await conn.fetch(queries.naive(sql) if naive else queries.over(sql), q.since, q.until)
    return [{by: r["key"], "leads": r["leads"], "customers": r["customers"]} for r in rows]


HISTORY_WEEKS = 104
HORIZON_WEEKS = 8
SEASON_WEEKS = 52


def _weeks(rows: list[asyncpg.Record], column: str, first: date, count: int) -> list[float]:
    values = {r["week"]: r[column] for r in rows}
    return [float(values.get(first + timedelta(weeks=i), 0.0)) for i in range(count)]


async def weekly_forecast(
    conn: asyncpg.Connection, q: Query, naive: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The last full weeks up to ``to`` (``HISTORY_WEEKS``, from the first week with anything) and the next
    ``HORIZON_WEEKS`` of new leads and revenue, each with an 80 % prediction interval; and the method with its
    back-test error (marketing/forecast.py). The history is read from the weekly counts (migration 0069): at most
    ``HISTORY_WEEKS`` rows, however many leads and purchases there are."""
    monday = q.end + timedelta(days=1) - timedelta(days=(q.end + timedelta(days=1)).weekday())
    first = monday - timedelta(weeks=HISTORY_WEEKS)
    since, until = datetime.combine(first, time(), UTC), datetime.combine(monday, time(), UTC)
    form = queries.naive if naive else queries.over
    weekly = await conn.fetch(form(queries.WEEKLY), since, until)
    leads = _weeks(weekly, "leads", first, HISTORY_WEEKS)
    revenue = _weeks(weekly, "revenue", first, HISTORY_WEEKS)
    start = next((i for i, (a, b) in enumerate(zip(leads, revenue, strict=True)) if a or b), HISTORY_WEEKS)
    leads, revenue, first = leads[start:], revenue[start:], first + timedelta(weeks=start)
    rows: list[dict[str, Any]] = [
        {"week": (first + timedelta(weeks=i)).isoformat(), "kind": "actual", "leads": round(a, 2),
         "leads_low": None, "leads_high": None, "revenue": round(b, 2), "revenue_low": None, "revenue_high": None}
        for i, (a, b) in enumerate(zip(leads, revenue, strict=True))
    ]  # fmt: skip
    meta: dict[str, Any] = {"interval": "80 %", "history_weeks": len(leads)}
    if len(leads) < 3:
        meta["method"] = "too little history (fewer than 3 weeks)"
        return rows, meta
    f_leads = ets.forecast(leads, HORIZON_WEEKS, SEASON_WEEKS)
    f_revenue = ets.forecast(revenue, HORIZON_WEEKS, SEASON_WEEKS)
    for h in range(HORIZON_WEEKS):
        rows.append(
            {
                "week": (monday + timedelta(weeks=h)).isoformat(),
                "kind": "forecast",
                "leads": round(f_leads.points[h], 2),
                "leads_low": round(f_leads.lower[h], 2),
                "leads_high": round(f_leads.upper[h], 2),
                "revenue": round(f_revenue.points[h], 2),
                "revenue_low": round(f_revenue.lower[h], 2),
                "revenue_high": round(f_revenue.upper[h], 2),
            }
        )
    meta["leads"] = {"method": f_leads.method, "backtest_weeks": 4, "mae": _maybe(f_leads.mae),
                     "mape": _maybe(f_leads.mape)}  # fmt: skip
    meta["revenue"] = {"method": f_revenue.method, "backtest_weeks": 4, "mae": _maybe(f_revenue.mae),
                       "mape": _maybe(f_revenue.mape)}  # fmt: skip
    return rows, meta


def _maybe(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


async def forecast(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """:func:`weekly_forecast`'s rows."""
    return (await weekly_forecast(conn, q, naive))[0]


CROSS_SELL_MIN = 2  # bought together by at least this many customers
CROSS_SELL_ROWS = 100


def _rule(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "support": round(r["support"], 4),
        "confidence": round(r["confidence"], 4),
        "lift": round(r["lift"], 4),
    }


def months(q: Query) -> tuple[date, date]:
    """The first and the last calendar month the range touches (cross-sell's baskets are monthly)."""
    return q.start.replace(day=1), q.end.replace(day=1)


async def cross_sell(conn: asyncpg.Connection, q: Query, naive: bool = False) -> list[dict[str, Any]]:
    """Products in the same baskets (a customer's purchases in one calendar month) in the months of the range:
    support (share of baskets with both), confidence (of the baskets with the first product, the share with the
    second too) and lift (confidence over the second's own share), strongest lift first. Read from the pair
    counts kept at purchase time (migration 0023)."""
    sql = queries.naive(queries.CROSS_SELL) if naive else queries.over(queries.CROSS_SELL)
    rows = await conn.fetch(sql, *months(q), CROSS_SELL_MIN, CROSS_SELL_ROWS)
    return [
        {"product": r["product"], "product_name": r["product_name"], "also_bought": r["also_bought"],
         "also_bought_name": r["also_bought_name"], "together": r["together"], **_rule(r)}
        for r in rows
    ]  # fmt: skip


async def suggestions(
    conn: asyncpg.Connection, person_id: uuid.UUID, q: Query, limit: int = 5
) -> list[dict[str, Any]]:
    """Next products for a customer: what buyers of their products also bought and they have not."""
    async with custom_plans(conn):
        rows = await conn.fetch(
            queries.over(queries.SUGGESTIONS), *months(q), CROSS_SELL_MIN, limit, person_id
        )
    return [
        {"product_id": str(r["product_id"]), "sku": r["sku"], "name": r["name"],
         "list_price": _num(r["list_price"], 2), "confidence": round(r["confidence"], 4),
         "lift": round(r["lift"], 4), "because": list(r["because"])}
        for r in rows
    ]  # fmt: skip


COMPUTE = {
    "forecast": forecast,
    "cross-sell": cross_sell,
    "ads": ads,
    "affiliates": affiliates,
    "emails": emails,
    "products": products,
    "demographics": demographics,
    "funnel": funnel,
}


async def compute(
    conn: asyncpg.Connection, report: str, q: Query, naive: bool = False
) -> list[dict[str, Any]]:
    """One report's rows."""
    async with custom_plans(conn):
        return await COMPUTE[report](conn, q, naive)


def _cell(value: Any) -> str:
    """A CSV cell as JSON shows the value; text a spreadsheet would run is prefixed with '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, columns in the rows' order (the same figures as the JSON)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if rows:
        writer.writerow(rows[0])
        for row in rows:
            writer.writerow([_cell(v) for v in row.values()])
    return buffer.getvalue()
