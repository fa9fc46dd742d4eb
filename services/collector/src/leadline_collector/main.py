"""``leadline collector`` (run the collector) and ``leadline links sign`` (mint a tracked email link)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from leadline_collector.app import create_app
from leadline_collector.fastpath import FastRunner
from leadline_collector.httperrors import HTTP_METRICS
from leadline_collector.settings import CollectorSettings
from leadline_collector.workers import Supervisor, worker_settings
from leadline_shared import config, logs, service
from leadline_shared.signing import KeyRing


def run(args: argparse.Namespace) -> int:
    """Load settings from the environment and serve until SIGTERM: one process, or ``--workers N`` of them."""
    settings = config.load(CollectorSettings)
    workers = args.workers if args.workers is not None else settings.workers
    if args.worker_index is None and workers > 1:
        logs.setup("collector", settings.log_level)
        logging.getLogger(__name__).info("supervising workers", extra={"workers": workers})
        return Supervisor(workers).run()
    index = args.worker_index or 0
    if args.worker_index is not None:
        settings = worker_settings(settings, index)
    logs.setup("collector", settings.log_level)
    logging.getLogger(__name__).info(
        "starting", extra={"settings": config.describe(settings), "worker": index}
    )
    app = create_app(settings)
    app[HTTP_METRICS].worker.labels(str(index), str(os.getpid())).set(1)
    service.tune_gc()  # each hit allocates a request, a response and an event; none of them in cycles
    return service.run(
        app,
        settings.host,
        settings.port,
        settings.drain_seconds,
        use_uvloop=settings.uvloop,
        runner_class=FastRunner,
        reuse_port=args.worker_index is not None,  # one process: exactly as before --workers existed
    )


def worker_count(value: str) -> int:
    """``--workers``: a positive count, refused by argparse otherwise."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a number of processes ≥ 1")
    return int(value)


KEY_FILE = Path(".run") / "link.keys"  # where `make up` keeps the local key ring (leadline_localstack.up)


def key_file_roots() -> tuple[Path, ...]:
    """Where to look for a `make up` checkout: the working directory, then this package's own (editable)
    source tree, so the command works from anywhere in the repository."""
    return Path.cwd(), Path(__file__).resolve().parent


def find_key_file(roots: Iterable[Path]) -> Path | None:
    """The first ``.run/link.keys`` in any of ``roots`` or their parents."""
    for root in roots:
        for folder in (root, *root.parents):
            if (folder / KEY_FILE).is_file():
                return folder / KEY_FILE
    return None


def signing_keys() -> KeyRing | None:
    """LEADLINE_LINK_KEYS when set; else the key ring `make up` wrote, which the local collector verifies
    with (signing with anything else makes links it answers with a 404). None, with the reason printed, when
    there is neither or it is not a key ring."""
    if "LEADLINE_LINK_KEYS" in os.environ:
        spec, source = config.load(CollectorSettings).link_keys, "LEADLINE_LINK_KEYS"
    else:
        found = find_key_file(key_file_roots())
        if found is None:
            print(
                "leadline links sign: no signing keys: set LEADLINE_LINK_KEYS (kid:secret,…, as the collector"
                f" has it), or run this in a checkout where `make up` wrote {KEY_FILE}",
                file=sys.stderr,
            )
            return None
        print(f"leadline links sign: LEADLINE_LINK_KEYS is not set; signing with {found}", file=sys.stderr)
        spec, source = found.read_text(), str(found)
    try:
        keys = KeyRing.parse(spec.strip())
    except ValueError as exc:
        print(f"leadline links sign: {source}: {exc}", file=sys.stderr)
        return None
    if not keys:
        print(f"leadline links sign: {source} is empty; set the key ring first", file=sys.stderr)
    return keys or None


def sign_link(args: argparse.Namespace) -> int:
    """Print a signed tracked link (or open pixel) for one recipient of one send."""
    keys = signing_keys()
    if keys is None:
        return 2
    payload = {"campaign_id": args.campaign, "send_id": args.send, "recipient_token": args.recipient}
    if args.sent_at:
        payload["sent_at"] = args.sent_at  # lets the enricher spot scanners that click within seconds
    if args.open:
        token = keys.sign(payload, ttl_seconds=args.ttl_days * 86400)
        print(f"{args.base_url.rstrip('/')}/o/{token}.gif")
        return 0
    target = urlsplit(args.target or "")
    if target.scheme not in ("http", "https") or not target.netloc:
        print("leadline links sign: --target must be an http(s) URL", file=sys.stderr)
        return 2
    token = keys.sign({**payload, "target": args.target}, ttl_seconds=args.ttl_days * 86400)
    print(f"{args.base_url.rstrip('/')}/c/{token}")
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline collector`` and ``leadline links sign``."""
    parser = subparsers.add_parser("collector", help="run the collector (pixels, links, forms, Segment API)")
    parser.add_argument(
        "--workers",
        type=worker_count,
        help="processes serving the port, about one per core (default: LEADLINE_COLLECTOR_WORKERS, 1)",
    )
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    parser.set_defaults(func=run)
    links = subparsers.add_parser("links", help="tracked email links")
    actions = links.add_subparsers(dest="action", required=True)
    sign = actions.add_parser("sign", help="print a signed click link (or, with --open, an open pixel URL)")
    sign.add_argument("--target", help="where the click lands (http or https URL)")
    sign.add_argument("--campaign", required=True, help="campaign id")
    sign.add_argument("--send", default="", help="email send id")
    sign.add_argument("--recipient", required=True, help="the recipient's token (not their email address)")
    sign.add_argument("--ttl-days", type=int, default=365, help="days the link stays valid (default 365)")
    sign.add_argument("--base-url", default="http://127.0.0.1:8080", help="the collector's public URL")
    sign.add_argument("--open", action="store_true", help="print the open-pixel URL instead of a click link")
    sign.add_argument("--sent-at", help="when the email is sent (ISO 8601), for link-scanner detection")
    sign.set_defaults(func=sign_link)
