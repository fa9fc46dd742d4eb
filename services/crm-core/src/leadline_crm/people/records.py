"""The records reps keep about a person, behind the generic CRUD routes: purchases, feedback and activities.

A purchase makes a customer and a rep's call, visit or meeting makes a prospect (architecture.md §5), so their
creation moves the person's stage in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from leadline_crm import lifecycle
from leadline_crm.http.auth import REPS, ROLES_ALL, SALES, Caller
from leadline_crm.http.crud import Column, Resource, Row
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.openapi import Param
from leadline_crm.http.params import person_filter
from leadline_crm.http.schemas import DATE, DATETIME, LONG_TEXT, MONEY, TEXT, UUID_S
from leadline_crm.sales import purchases
from leadline_crm.stages import load_scoring, reconsider


async def _move(
    conn: asyncpg.Connection, person_id: uuid.UUID, cause: str, caller: Caller, reason: str
) -> None:
    scoring, _ = await load_scoring(conn)
    await reconsider(conn, person_id, cause, scoring, datetime.now(UTC), reason, caller.label)


async def _purchase_defaults(conn: asyncpg.Connection, values: dict[str, Any], caller: Caller) -> None:
    """The price paid defaults to list price times quantity; the sales rep to the won deal's owner (a purchase of a
    deal, sales/purchases.py), else to the calling rep."""
    await purchases.deal_defaults(conn, values)
    if values.get("price_paid") is None and values.get("product_id") is not None:
        price = await conn.fetchval("SELECT list_price FROM products WHERE id = $1", values["product_id"])
        if price is None:
            raise BadRequest("product_id: no such product")
        values["price_paid"] = price * values.get("quantity", 1)
    if "sales_rep" not in values and caller.user_id is not None:
        values["sales_rep"] = caller.user_id


async def _rep_default(conn: asyncpg.Connection, values: dict[str, Any], caller: Caller) -> None:
    """An activity is by the calling rep unless another is named."""
    if "rep_id" not in values and caller.user_id is not None:
        values["rep_id"] = caller.user_id


async def _after_purchase(conn: asyncpg.Connection, row: Row, caller: Caller) -> None:
    await conn.execute("UPDATE persons SET purchases = purchases + 1 WHERE person_id = $1", row["person_id"])
    await _move(conn, row["person_id"], f"purchase:{row['id']}", caller, "purchase recorded")


async def after_activity(conn: asyncpg.Connection, row: Row, caller: Caller) -> None:
    if row["kind"] in lifecycle.REP_CONTACT_KINDS:
        await conn.execute("UPDATE persons SET rep_contacted = true WHERE person_id = $1", row["person_id"])
        await _move(conn, row["person_id"], f"activity:{row['id']}", caller, f"rep logged a {row['kind']}")


RESOURCES = (
    Resource(
        "purchases",
        "purchase",
        "purchases",
        "id",
        (
            Column("person_id", UUID_S, required=True, cast="uuid"),
            Column("product_id", UUID_S, required=True, cast="uuid"),
            Column(
                "quantity",
                {"type": "integer", "minimum": 1, "maximum": 1000000},
                required=True,
                cast="integer",
            ),
            Column("purchased_on", DATE, cast="date"),
            Column("sales_rep", UUID_S, cast="uuid", nullable=True),
            Column("price_paid", MONEY, cast="numeric"),
            Column("special_instructions", LONG_TEXT),
            Column(
                "deal_id", {**UUID_S, "description": "the won deal it came from"}, cast="uuid", nullable=True
            ),
        ),
        ROLES_ALL,
        SALES,
        filters=(person_filter(), Param("deal_id", "query", UUID_S, "only this deal's purchases")),
        ops=frozenset({"list", "create", "get", "update"}),
        prepare=_purchase_defaults,
        after_create=_after_purchase,
        immutable=frozenset({"person_id", "deal_id"}),
    ),
    Resource(
        "feedback",
        "feedback entry",
        "feedback",
        "id",
        (
            Column("person_id", UUID_S, required=True, cast="uuid"),
            Column("rating", {"type": "integer", "minimum": 1, "maximum": 5}, required=True, cast="integer"),
            Column("text", LONG_TEXT, nullable=True),
        ),
        ROLES_ALL,
        REPS,
        filters=(person_filter(),),
        ops=frozenset({"list", "create", "get"}),
    ),
    Resource(
        "activities",
        "activity",
        "activities",
        "id",
        (
            Column("person_id", UUID_S, required=True, cast="uuid"),
            Column(
                "kind",
                {"type": "string", "enum": ["site_visit", "phone_call", "meeting", "note", "email"]},
                required=True,
            ),
            Column("rep_id", UUID_S, cast="uuid", nullable=True),
            Column("at", DATETIME, cast="timestamptz"),
            Column("outcome", TEXT, nullable=True),
            Column("notes", LONG_TEXT, nullable=True),
        ),
        ROLES_ALL,
        REPS,
        filters=(person_filter(),),
        ops=frozenset({"list", "create", "get", "update"}),
        prepare=_rep_default,
        after_create=after_activity,
        immutable=frozenset({"person_id", "kind"}),
    ),
)
