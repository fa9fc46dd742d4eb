"""Purchases of a won deal (issue 15): a purchase naming a deal (``deal_id``, through the purchases API of
people/records.py or the deal page's form) must be of a won deal and of the deal's person, and its rep is the
deal's owner unless the caller names another. people/records.py calls :func:`deal_defaults` before the insert, in
the purchase's transaction; everything else a purchase does (the person's count, the stage move, the audit entry)
stays the purchases resource's own.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from leadline_crm.http.errors import BadRequest, Conflict

DEAL = "SELECT status, person_id, owner_id FROM deals WHERE id = $1 FOR SHARE"
OF_DEAL = """
SELECT pu.id, pu.product_id, pr.name AS product, pu.quantity, pu.price_paid, pu.purchased_on, pu.sales_rep,
       u.name AS rep_name
  FROM purchases pu JOIN products pr ON pr.id = pu.product_id LEFT JOIN users u ON u.id = pu.sales_rep
 WHERE pu.deal_id = $1 ORDER BY pu.purchased_on, pu.created_at"""


async def deal_defaults(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    """Check a purchase's deal and give it the deal's owner as rep; nothing to do without a ``deal_id``."""
    if values.get("deal_id") is None:
        return
    deal = await conn.fetchrow(DEAL, uuid.UUID(str(values["deal_id"])))
    if deal is None:
        raise BadRequest("deal_id: no such deal")
    if deal["status"] != "won":
        raise Conflict("deal_id: only a won deal records purchases; move it to a won stage first")
    if deal["person_id"] is None:
        raise BadRequest("deal_id: the deal has no person; a purchase is someone's (give the deal a person)")
    if str(values.get("person_id")) != str(deal["person_id"]):
        raise BadRequest("person_id: not the deal's person")
    if values.get("sales_rep") is None and deal["owner_id"] is not None:
        values["sales_rep"] = deal["owner_id"]


async def of_deal(pool: asyncpg.Pool, deal: uuid.UUID) -> list[asyncpg.Record]:
    """The purchases recorded for a deal, oldest first."""
    rows: list[asyncpg.Record] = await pool.fetch(OF_DEAL, deal)
    return rows
