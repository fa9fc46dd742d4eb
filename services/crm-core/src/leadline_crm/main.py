"""``leadline crm-core``, ``leadline token``, ``leadline first-admin`` and ``leadline seed-demo``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import asyncpg

from leadline_crm import demo
from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.http import accounts, auth
from leadline_crm.ingest.consumer import tune_gc
from leadline_crm.settings import CrmSettings
from leadline_shared import config, kafka, logs, pg, service
from leadline_shared.migrate import Target


def run(args: argparse.Namespace) -> int:
    """Load settings from the environment and serve until SIGTERM."""
    settings = config.load(CrmSettings)
    logs.setup("crm-core", settings.log_level)
    logging.getLogger(__name__).info("starting", extra={"settings": config.describe(settings)})
    tune_gc()
    return service.run(
        create_app(settings), settings.host, settings.port, settings.drain_seconds, use_uvloop=settings.uvloop
    )


def migration_target() -> Target:
    """crm-core's schema and migrations, for ``leadline migrate`` (entry point ``leadline.migrations``)."""
    settings = config.load(CrmSettings)
    return Target(settings.dsn, settings.crm_schema, MIGRATIONS)


async def _create_token(settings: CrmSettings, name: str, role: str, user_email: str | None = None) -> str:
    await pg.migrate(settings.dsn, settings.crm_schema, MIGRATIONS)
    conn = await asyncpg.connect(settings.dsn, server_settings={"search_path": settings.crm_schema})
    try:
        user_id = None
        if user_email:
            user_id = await conn.fetchval(
                "SELECT id FROM users WHERE lower(email) = lower($1)", user_email.strip()
            )
            if user_id is None:
                raise SystemExit(
                    f"no user with email {user_email!r}; create it with POST /api/v1/users first"
                )
        return await auth.create_token(conn, name, role, user_id)
    finally:
        await conn.close()


def token(args: argparse.Namespace) -> int:
    """Create an API token; print it, or write it to a file readable by the owner only."""
    settings = config.load(CrmSettings)
    value = asyncio.run(_create_token(settings, args.name, args.role, args.user))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch(mode=0o600)
        out.write_text(value + "\n")
        print(f"{args.role} token written to {out}", file=sys.stderr)
    else:
        print(value)
    return 0


async def _first_admin(settings: CrmSettings, email: str) -> accounts.FirstAdmin:
    await pg.migrate(settings.dsn, settings.crm_schema, MIGRATIONS)
    conn = await asyncpg.connect(settings.dsn, server_settings={"search_path": settings.crm_schema})
    try:
        return await accounts.first_admin(conn, email)
    finally:
        await conn.close()


def first_admin(args: argparse.Namespace) -> int:
    """Make sure an admin can sign in to the web app, and say how.

    When no active admin has a password, ``--email`` gets a generated one, written with the email to ``--out``
    (mode 600). Once one has, nothing changes, and the saved login is shown again (idempotent: a second
    ``make up`` prints the same login).
    """
    made = asyncio.run(_first_admin(config.load(CrmSettings), args.email))
    out = Path(args.out) if args.out else None
    if made.password is not None:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.touch(mode=0o600)
            out.chmod(0o600)
            out.write_text(f"email: {made.email}\npassword: {made.password}\n")
        print(f"admin login: {made.email}  password: {made.password}")
    elif out is not None and out.is_file():
        saved = dict(line.split(": ", 1) for line in out.read_text().splitlines() if ": " in line)
        print(
            f"admin login: {saved.get('email', made.email)}  password: {saved.get('password', '?')}"
            f"  (saved in {out}; changed since if someone set a new one)"
        )
    else:
        print(f"admin login: {made.email} (password set earlier; ask an admin for a password link)")
    return 0


async def _seed(settings: CrmSettings, collector_url: str) -> None:
    """Store the demo entries in the CRM (so the API lists them and crm-core republishes them at start) and
    publish them to the collector's config topic right away."""
    entries = demo.demo_entries(collector_url)
    await pg.migrate(settings.dsn, settings.crm_schema, MIGRATIONS)
    conn = await asyncpg.connect(settings.dsn, server_settings={"search_path": settings.crm_schema})
    try:
        await demo.store(conn, entries)
    finally:
        await conn.close()
    topics = kafka.Topics.with_prefix(settings.topic_prefix)
    await kafka.ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions)
    await demo.publish(settings.kafka_bootstrap, topics, entries)


def seed_demo(args: argparse.Namespace) -> int:
    """Publish the demo site's form, write key and affiliate ad to the config topic."""
    asyncio.run(_seed(config.load(CrmSettings), args.collector_url))
    print("demo site configuration published (form 'demo', write key 'demo', ad aff1/ad1)", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline crm-core``, ``leadline token`` and ``leadline seed-demo``."""
    subparsers.add_parser("crm-core", help="run crm-core (ingestion, REST API, web app)").set_defaults(
        func=run
    )
    tok = subparsers.add_parser("token", help="create an API token")
    tok.add_argument("--role", choices=auth.ROLES, default="admin")
    tok.add_argument("--name", default="cli")
    tok.add_argument("--out", help="write the token to this file (mode 600) instead of printing it")
    tok.add_argument(
        "--user", metavar="EMAIL", help="the rep (user) the token belongs to; their actions name them"
    )
    tok.set_defaults(func=token)
    first = subparsers.add_parser(
        "first-admin", help="make sure an admin can sign in to the web app (a generated password, once)"
    )
    first.add_argument("--email", default=accounts.FIRST_ADMIN_EMAIL)
    first.add_argument("--out", help="write the login to this file (mode 600)")
    first.set_defaults(func=first_admin)
    seed = subparsers.add_parser("seed-demo", help="publish the demo site's configuration")
    seed.add_argument("--collector-url", default="http://127.0.0.1:8080")
    seed.set_defaults(func=seed_demo)
