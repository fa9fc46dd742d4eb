"""Won versus target per rep (issue 15): an admin sets what each rep is to win in a month (API and the sales
dashboard's form); the API and the dashboard show it beside the value of the deals the rep won that month, in the
target's currency (deals in other currencies are listed on their own, never converted).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.schemas import MONEY, UUID_S

MONTH = re.compile(r"^[1-9]\d{3}-(0[1-9]|1[0-2])$")
BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["user_id", "month", "amount"],
    "properties": {
        "user_id": {**UUID_S, "description": "the rep"},
        "month": {"type": "string", "pattern": "^[1-9]\\d{3}-(0[1-9]|1[0-2])$", "description": "YYYY-MM"},
        "amount": MONEY,
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 (default EUR)"},
    },
}

UPSERT = """
INSERT INTO sales_targets AS t (user_id, month, amount, currency) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, month) DO UPDATE SET amount = EXCLUDED.amount, currency = EXCLUDED.currency, updated_at = now()
RETURNING user_id, month, amount, currency"""

# Each rep with a target or a won deal in the month ($1, its first day): the target and the won deals' count and
# value in each currency; attained is the won value in the target's currency as a percentage of the target.
WON_VS_TARGET = """
WITH t AS (SELECT user_id, amount, currency FROM sales_targets WHERE month = $1),
     w AS (SELECT owner_id AS user_id, currency, count(*) AS deals_won, sum(amount) AS won_value
             FROM deals
            WHERE status = 'won' AND owner_id IS NOT NULL
              AND closed_at >= $1::date::timestamptz AND closed_at < ($1::date + interval '1 month')::timestamptz
            GROUP BY 1, 2)
SELECT u.id AS user_id, u.name AS rep_name, coalesce(t.currency, w.currency) AS currency, t.amount AS target,
       coalesce(w.deals_won, 0) AS deals_won, coalesce(w.won_value, 0) AS won_value,
       CASE WHEN t.amount > 0 THEN round(100 * coalesce(w.won_value, 0) / t.amount, 1) END AS attained
  FROM t FULL JOIN w ON w.user_id = t.user_id AND w.currency = t.currency
  JOIN users u ON u.id = coalesce(t.user_id, w.user_id)
 ORDER BY u.name, currency"""


def month_of(raw: str | None) -> date:
    """The first day of the month ``YYYY-MM`` (default: this month); 422 otherwise."""
    if not raw:
        today = datetime.now(UTC).date()
        return today.replace(day=1)
    if not MONTH.match(raw):
        raise BadRequest("month: a month as YYYY-MM")
    return date(int(raw[:4]), int(raw[5:7]), 1)


async def set_target(pool: asyncpg.Pool, body: dict[str, Any], caller: Caller) -> asyncpg.Record:
    """Set (or replace) a rep's target for a month, audited; 422 for a user who is not a rep."""
    user = uuid.UUID(body["user_id"])
    month = month_of(body["month"])
    amount = Decimal(str(body["amount"])).quantize(Decimal("0.01"))
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)", user):
            raise BadRequest("user_id: no such user")
        old = await conn.fetchrow("SELECT amount, currency FROM sales_targets WHERE user_id = $1 AND month = $2",
                                  user, month)  # fmt: skip
        row: asyncpg.Record = await conn.fetchrow(UPSERT, user, month, amount, body.get("currency") or "EUR")
        changes: dict[str, Any] = audit.diff(dict(old) if old else {}, dict(row), ("amount", "currency"))
        if changes:
            changes["month"] = month.isoformat()[:7]
            await audit.record(conn, caller, "update" if old else "create", "sales/targets", user, changes)
    return row


async def won_vs_target(pool: asyncpg.Pool, month: date) -> list[asyncpg.Record]:
    """Each rep's target and deals won in ``month``."""
    rows: list[asyncpg.Record] = await pool.fetch(WON_VS_TARGET, month)
    return rows
