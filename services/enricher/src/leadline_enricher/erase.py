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
from typing import Any

import asyncpg

from leadline_enricher import queries
from leadline_enricher.app import MIGRATIONS, identifier_rules
from leadline_enricher.identifiers import CRM_CONTACT, IdentifierRules, digest, normalise
from leadline_enricher.identity import erase_person
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka, pg
from leadline_shared.events import IdentityChange


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
        print(kafka.retention_note(kafka.Topics.with_prefix(settings.topic_prefix)))
        return 0
    print(f"erased person {change.person_id} ({len(change.merged)} merged persons with it)")
    print(kafka.retention_note(kafka.Topics.with_prefix(settings.topic_prefix)))
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline erase``."""
    parser = subparsers.add_parser("erase", help="erase a person from the identity graph (GDPR)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", help="erase the person holding this email")
    which.add_argument("--phone", help="erase the person holding this phone number")
    which.add_argument("--person", help="erase this person id")
    parser.set_defaults(func=run)
