"""Erasure (GDPR): a person's identifiers become tombstones, and ``leadline erase`` does it from a shell.

The identifiers are deleted and only a hash of each is kept, so that a later event carrying one of them is
treated as anonymous and never rebuilds the person. That includes the CRM's id of every erased person id
(``crm_contact_id``), so that crm-core naming the person again cannot bring it back under its old id. The erase change goes to identity.changes.v1 (through the
outbox, like merges) so that crm-core can delete what it holds about the person.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from leadline_enricher import queries
from leadline_enricher.app import MIGRATIONS, identifier_rules
from leadline_enricher.identifiers import CRM_CONTACT, IdentifierRules, digest, normalise
from leadline_enricher.identity import record_change
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka, pg
from leadline_shared.events import IdentityChange
from leadline_shared.ids import new_id


async def erase_person(conn: asyncpg.Connection, person_id: str) -> IdentityChange | None:
    """Erase a person (and every person merged into it); None when the graph never had it."""
    survivor = await conn.fetchval(queries.SURVIVOR, person_id)
    if survivor is None:
        return None
    persons = [str(r[0]) for r in await conn.fetch(queries.PERSON_AND_MERGED, survivor)]
    rows = await conn.fetch(queries.ERASE_IDENTIFIERS, persons)
    erased = {(r[0], r[1]) for r in rows} | {(CRM_CONTACT, p) for p in persons}
    await conn.execute(queries.TOMBSTONE, [t for t, _ in erased], [digest(i) for i in erased])
    await conn.execute(queries.MARK_ERASED, persons)
    await conn.execute(queries.SCRUB_CHANGES, persons)
    change = IdentityChange(
        change_id=new_id(),
        kind="erase",
        person_id=survivor,
        at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        merged=[p for p in persons if p != survivor],
    )
    await record_change(conn, change)
    return change


async def erase_identifier(
    conn: asyncpg.Connection, kind: str, raw_value: str, rules: IdentifierRules
) -> IdentityChange | None:
    """Erase the person holding an identifier; an identifier nobody holds is tombstoned all the same."""
    value = normalise(kind, raw_value, rules)
    if value is None:
        raise ValueError(f"not a valid {kind}")
    owner = await conn.fetchval(queries.PERSON_OF, kind, value)
    if owner is None and kind == CRM_CONTACT:  # the CRM's id of a person of the graph names that person
        owner = await conn.fetchval(queries.SURVIVOR, value)
    if owner is not None:
        return await erase_person(conn, str(owner))
    await conn.execute(queries.TOMBSTONE, [kind], [digest((kind, value))])
    return None


async def _run(settings: EnricherSettings, args: argparse.Namespace) -> IdentityChange | None:
    await pg.migrate(settings.dsn, settings.identity_schema, MIGRATIONS)
    conn = await asyncpg.connect(settings.dsn, server_settings={"search_path": settings.identity_schema})
    try:
        async with conn.transaction():
            if args.person:
                change = await erase_person(conn, args.person)
            else:
                kind, value = ("email", args.email) if args.email else ("phone", args.phone)
                change = await erase_identifier(conn, kind, value, identifier_rules(settings))
        if change is not None:
            topics = kafka.Topics.with_prefix(settings.topic_prefix)
            producer = kafka.producer(settings.kafka_bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(topics.identity_changes, change.to_json(), key=change.key())
            finally:
                await producer.stop()
            await conn.execute(queries.MARK_PUBLISHED, [change.change_id])
    finally:
        await conn.close()
    return change


def run(args: argparse.Namespace) -> int:
    """``leadline erase``: erase one person; prints the erased person id (never the identifier)."""
    settings = config.load(EnricherSettings)
    if args.person:
        try:
            args.person = str(uuid.UUID(args.person))
        except ValueError:
            print(f"leadline erase: {args.person!r} is not a person id", file=sys.stderr)
            return 2
    try:
        change = asyncio.run(_run(settings, args))
    except ValueError as exc:
        print(f"leadline erase: {exc}", file=sys.stderr)
        return 2
    if change is None and args.person:
        print(f"leadline erase: no person {args.person}", file=sys.stderr)
        return 1
    if change is None:
        print("no person held it; it is tombstoned, so future events carrying it stay anonymous")
        print(retention_note(kafka.Topics.with_prefix(settings.topic_prefix)))
        return 0
    print(f"erased person {change.person_id} ({len(change.merged)} merged persons with it)")
    print(retention_note(kafka.Topics.with_prefix(settings.topic_prefix)))
    return 0


def retention_note(topics: kafka.Topics) -> str:
    """What erasure cannot reach: events already on the capture topics stay until those topics' retention ends.

    The identity graph and the CRM hold nothing of the person afterwards, and identity.changes.v1 never carries
    identifier values; but Kafka cannot delete single messages from the raw, enriched and dead-letter topics.
    """
    days = kafka.retention_days(topics)
    kept = ", ".join(
        f"{name} ({days[name]:g} days)"
        for name in (topics.raw, topics.enriched, topics.dlq)
        if days.get(name) is not None
    )
    return f"events that carried its identifiers expire from Kafka with their topics' retention: {kept}"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline erase``."""
    parser = subparsers.add_parser("erase", help="erase a person from the identity graph (GDPR)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", help="erase the person holding this email")
    which.add_argument("--phone", help="erase the person holding this phone number")
    which.add_argument("--person", help="erase this person id")
    parser.set_defaults(func=run)
