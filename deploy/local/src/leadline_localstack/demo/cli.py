"""``leadline demo``: fill a running stack (``make up``) with a month of a small business, through the real
collector and crm-core API (run.py); ``make demo`` runs it."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from leadline_localstack import procs
from leadline_localstack.demo.http import DemoError
from leadline_localstack.demo.run import Report, Target, make


def _url(variable: str, default_port: int) -> str:
    return f"http://127.0.0.1:{os.environ.get(variable, str(default_port))}"


def _token(args: argparse.Namespace) -> str:
    path = Path(args.token_file) if args.token_file else procs.default_run_dir() / "admin.token"
    if not path.is_file():
        raise DemoError(f"no admin token in {path}: run make up first, or give --token-file")
    return path.read_text().strip()


def print_report(report: Report) -> None:
    """The summary a person reads after ``make demo``: what was sent, what the world is, what crm-core holds."""
    sent = ", ".join(report.sent) or "nothing new"
    skipped = f"; already there: {', '.join(report.skipped)}" if report.skipped else ""
    print(
        f"Seed {report.seed}'s world (scale {report.scale:g}, the month before {report.anchor}), {report.seconds:.0f}s:"
    )
    print(f"  sent {sent}{skipped}")
    print("  the world: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report.world.items()))
    c = report.counts
    stages = ", ".join(f"{n} {stage}" for stage, n in c.get("stages", {}).items())
    print(
        f"  crm-core holds: {c.get('known_persons')} known people ({stages}); {c.get('purchases')} purchases by"
        f" {c.get('purchase_reps')} reps, {c.get('activities')} activities, {c.get('feedback')} feedback,"
        f" {c.get('email_sends')} e-mail sends; {c.get('users')} users, {c.get('products')} products,"
        f" {c.get('campaigns')} campaigns, {c.get('affiliates')} affiliates with {c.get('ads')} ads,"
        f" {c.get('forms')} forms"
    )
    statuses = ", ".join(f"{n} {status}" for status, n in c.get("case_statuses", {}).items())
    print(
        f"  service desk: {c.get('cases')} cases ({statuses}), {c.get('contracts')} service contracts,"
        f" {c.get('kb_articles')} knowledge base articles"
    )
    deals = ", ".join(f"{n} {stage}" for stage, n in c.get("deal_stages", {}).items())
    print(
        f"  sales: {c.get('companies')} companies, deals ({deals}), {c.get('tasks')} tasks,"
        f" {c.get('owned_persons')} people with an owner"
    )
    if report.proxy_trusted is False:
        print("  every visitor has this machine's address: see LEADLINE_TRUSTED_PROXIES in README.md")


def demo(args: argparse.Namespace) -> int:
    try:
        target = Target(
            collector_url=args.collector_url or _url("LEADLINE_COLLECTOR_PORT", 8080),
            crm_url=args.crm_url or _url("LEADLINE_CRM_PORT", 8081),
            token=_token(args),
            concurrency=args.concurrency,
        )
        report = asyncio.run(make(target, args.seed, args.scale, quiet=args.quiet))
    except DemoError as exc:
        print(f"leadline demo: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    return 0


def _scale(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError("the scale must be above 0 and at most 10")
    return value


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="fill the running stack with a month of demo data (idempotent)",
        description="Send a realistic month of a small solar installer's business through the running collector"
        " and crm-core API: staff, catalog, campaigns, affiliates, forms; thousands of visitors, sign-ups, app"
        " calls, ad clicks, e-mails with their opens, clicks and scanners; reps' calls, visits, sales and"
        " feedback. The same seed makes the same world; running it again adds nothing.",
    )
    parser.add_argument("--seed", type=int, default=1, help="which world (default 1)")
    parser.add_argument(
        "--scale", type=_scale, default=1.0, help="size of the world; 1.0 is about 3,000 visitors (default 1)"
    )
    parser.add_argument("--collector-url", help="default http://127.0.0.1:$LEADLINE_COLLECTOR_PORT (8080)")
    parser.add_argument("--crm-url", help="default http://127.0.0.1:$LEADLINE_CRM_PORT (8081)")
    parser.add_argument("--token-file", help="file holding an admin API token (default .run/admin.token)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    parser.set_defaults(func=demo)
