"""The catalog: products, campaigns, affiliates, ads, forms, write keys and email sends, as plain records behind
the generic CRUD routes (http/crud.py), and signed email links (links.py).

Forms, ads and write keys are what the collector needs: each says how its row becomes a ``crm.config.v1``
entry, and every write puts that entry (a tombstone on delete) into the outbox in the same transaction.
:func:`config_entries` gives all of them, for the app to republish at start-up.
"""

from __future__ import annotations

import asyncpg

from leadline_crm import outbox
from leadline_crm.catalog import links
from leadline_crm.http.auth import ADMIN, MARKETING, ROLES_ALL
from leadline_crm.http.crud import Column, Resource, Row
from leadline_crm.http.crud import operations as crud_operations
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import person_filter
from leadline_crm.http.schemas import (
    ABS_URL,
    DATE,
    DATETIME,
    LONG_TEXT,
    MONEY,
    NAME,
    SLUG,
    STRINGS,
    TEXT,
    URL,
    UUID_S,
)
from leadline_shared import siteconfig


def campaign_dates(row: Row) -> None:
    """A campaign cannot end before it starts. Checked on the written row, so a PATCH of one date is held
    against the other date as stored; the transaction rolls back on the 422."""
    starts, ends = row["starts_on"], row["ends_on"]
    if starts is not None and ends is not None and ends < starts:
        raise BadRequest(f"ends_on: {ends.isoformat()} is before starts_on {starts.isoformat()}")


#: The hidden field of a support form that carries the public support page's reference (service/support.py).
SUPPORT_REF = "support_ref"


def form_entry(row: Row) -> siteconfig.Entry:
    """What the collector knows of a form; a support form also keeps its page's hidden reference field."""
    extra = (SUPPORT_REF,) if row.get("support") and SUPPORT_REF not in row["fields"] else ()
    return siteconfig.FormConfig(
        key=row["key"],
        fields=(*row["fields"], *extra),
        thank_you_url=row["thank_you_url"],
        allowed_origins=tuple(row["allowed_origins"]),
        required=tuple(row["required"]),
    )


async def ads_go_too(conn: asyncpg.Connection, affiliate_id: str) -> None:
    """An affiliate's ads are deleted with it (the foreign key cascades): the collector forgets them too, or their
    tracking URLs would keep redirecting."""
    rows = await conn.fetch("SELECT * FROM ads WHERE affiliate_id = $1", affiliate_id)
    await outbox.write(conn, [outbox.config_tombstone(ad_entry(r).entry_key()) for r in rows])


def ad_entry(row: Row) -> siteconfig.Entry:
    return siteconfig.AdConfig(
        affiliate_id=row["affiliate_id"], ad_id=row["ad_id"], landing_url=row["landing_url"], name=row["name"]
    )


def source_entry(row: Row) -> siteconfig.Entry:
    return siteconfig.SourceConfig(
        write_key=row["write_key"], name=row["name"], settings=dict(row["settings"])
    )


RESOURCES = (
    Resource(
        "products",
        "product",
        "products",
        "id",
        (
            Column("sku", SLUG, required=True),
            Column("name", NAME, required=True),
            Column("list_price", MONEY, required=True, cast="numeric"),
            Column("currency", {"type": "string", "pattern": "^[A-Z]{3}$"}),
            Column("info", LONG_TEXT),
            Column("active", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
    ),
    Resource(
        "campaigns",
        "campaign",
        "campaigns",
        "id",
        (
            Column("name", NAME, required=True),
            Column(
                "channel",
                {"type": "string", "enum": ["email", "affiliate", "paid", "social", "event", "other"]},
            ),
            Column("landing_url", URL, nullable=True),
            Column("starts_on", DATE, cast="date", nullable=True),
            Column("ends_on", DATE, cast="date", nullable=True),
        ),
        ROLES_ALL,
        MARKETING,
        check=campaign_dates,
    ),
    Resource(
        "affiliates",
        "affiliate",
        "affiliates",
        "affiliate_id",
        (
            Column("affiliate_id", SLUG, required=True),
            Column("name", NAME, required=True),
            Column("landing_url", URL, nullable=True),
            Column("contact_email", {"type": "string", "format": "email", "maxLength": 320}, nullable=True),
        ),
        ROLES_ALL,
        MARKETING,
        generated_key=False,
        immutable=frozenset({"affiliate_id"}),
        before_delete=ads_go_too,
    ),
    Resource(
        "ads",
        "ad",
        "ads",
        "id",
        (
            Column("affiliate_id", SLUG, required=True),
            Column("ad_id", SLUG, required=True),
            Column("name", TEXT),
            Column("landing_url", ABS_URL, required=True),
            Column("campaign_id", UUID_S, cast="uuid", nullable=True),
            Column("creative", {"type": "object", "maxProperties": 50}, cast="jsonb"),
        ),
        ROLES_ALL,
        MARKETING,
        filters=(Param("affiliate_id", "query", SLUG, "only this affiliate's ads"),),
        config=ad_entry,
    ),
    Resource(
        "forms",
        "form",
        "forms",
        "key",
        (
            Column("key", SLUG, required=True),
            Column("name", TEXT),
            Column("fields", {**STRINGS, "minItems": 1}, required=True, cast="jsonb"),
            Column("required", STRINGS, cast="jsonb"),
            Column("allowed_origins", {**STRINGS, "items": ABS_URL}, cast="jsonb"),
            Column("thank_you_url", URL, required=True),
            Column("support", {"type": "boolean"}, cast="boolean"),  # submissions open cases (issue 14)
            Column("case_type", {"type": "string", "enum": ["question", "complaint", "fault", "return"]}),
        ),
        ROLES_ALL,
        MARKETING,
        generated_key=False,
        config=form_entry,
        immutable=frozenset({"key"}),
    ),
    Resource(
        "sources",
        "write key",
        "sources",
        "write_key",
        (
            Column("write_key", SLUG, required=True),
            Column("name", TEXT),
            Column("settings", {"type": "object", "maxProperties": 50}, cast="jsonb"),
        ),
        ROLES_ALL,
        MARKETING,
        generated_key=False,
        config=source_entry,
        immutable=frozenset({"write_key"}),
    ),
    Resource(
        "email_sends",
        "email send",
        "email_sends",
        "id",
        (
            Column("campaign_id", UUID_S, cast="uuid", nullable=True),
            Column("person_id", UUID_S, cast="uuid", nullable=True),
            Column("subject", TEXT),
            Column("sent_at", DATETIME, cast="timestamptz"),
        ),
        ROLES_ALL,
        MARKETING,
        filters=(person_filter(), Param("campaign_id", "query", UUID_S, "only this campaign's sends")),
    ),
)


def operations() -> list[Operation]:
    """The catalog's REST operations: its records, then the link minting."""
    return [op for res in RESOURCES for op in crud_operations(res)] + links.operations()


async def config_entries(conn: asyncpg.Connection) -> list[siteconfig.Entry]:
    """Every entry the collector should have, from the tables (republished at start-up)."""
    entries: list[siteconfig.Entry] = []
    for res in RESOURCES:
        if res.config is not None:
            rows = await conn.fetch(f"SELECT * FROM {res.table}")  # noqa: S608
            entries += [res.config(r) for r in rows]
    return entries
