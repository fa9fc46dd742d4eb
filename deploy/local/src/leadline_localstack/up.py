"""``leadline up`` / ``leadline down``: the whole local stack in one command, idempotent."""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from leadline_localstack import kafka as local_kafka
from leadline_localstack import postgres as local_pg
from leadline_localstack import procs, services


def _token_works(token_file: Path, crm_port: int) -> bool:
    """The saved admin token is accepted by crm-core (false after the database was wiped)."""
    if not token_file.is_file():
        return False
    req = urllib.request.Request(
        f"http://127.0.0.1:{crm_port}/api/v1/events?anon_id=probe",
        headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (a loopback http URL we built)
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _kept_key(run_dir: Path, name: str, make: str) -> str:
    """A local key made once and kept in .run/<name> (mode 600), so what it signed or sealed stays valid: the
    email-link key ring (link.keys), the webhook secrets' sealing key (webhook.keys)."""
    path = run_dir / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(f"{make}\n")
    return path.read_text().strip()


def up(run_dir: Path) -> int:
    """Start Kafka, PostgreSQL and the three services; create the admin token and the web app's first admin
    (its login printed and kept in .run/admin.login, mode 600); seed the demo site."""
    started = time.monotonic()
    bootstrap = local_kafka.start_kafka(run_dir)
    dsn = local_pg.start_postgres(run_dir)
    env = services.service_env(
        bootstrap,
        dsn,
        LEADLINE_LINK_KEYS=_kept_key(run_dir, "link.keys", f"local1:{secrets.token_urlsafe(32)}"),
        LEADLINE_WEBHOOK_KEYS=_kept_key(
            run_dir, "webhook.keys", base64.urlsafe_b64encode(os.urandom(32)).decode()
        ),
        LEADLINE_SPOOL_DIR=str(run_dir / "spool"),
    )
    ports = {spec.name: services.start_service(run_dir, spec, env) for spec in services.SERVICES}
    token_file = run_dir / "admin.token"
    if not _token_works(token_file, ports["crm-core"]):
        subprocess.run(
            services.leadline_command(
                "token", "--role", "admin", "--name", "make-up", "--out", str(token_file)
            ),
            env=env,
            check=True,
        )
    login = subprocess.run(
        services.leadline_command("first-admin", "--out", str(run_dir / "admin.login")),
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    collector = f"http://127.0.0.1:{ports['collector']}"
    subprocess.run(services.leadline_command("seed-demo", "--collector-url", collector), env=env, check=True)
    print(f"""
Leadline is up ({time.monotonic() - started:.1f}s).
  collector   {collector}        (demo page: {collector}/demo, pixel: {collector}/p.gif)
  crm-core    http://127.0.0.1:{ports["crm-core"]}        (API: /api/v1, token in {token_file})
  web app     http://127.0.0.1:{ports["crm-core"]}/app    {login}
              (also in {run_dir / "admin.login"})
  enricher    http://127.0.0.1:{ports["enricher"]}/metrics
  Kafka       {bootstrap}
  PostgreSQL  {dsn}
Try:  curl -s -c /tmp/ll.jar '{collector}/p.gif?url=https://example.com/' -o /dev/null
      curl -s -H "Authorization: Bearer $(cat {token_file})" \\
        "http://127.0.0.1:{ports["crm-core"]}/api/v1/events?anon_id=$(awk '/ll_vid/ {{print $7}}' /tmp/ll.jar)"
Logs: make logs    Stop: make down""")
    return 0


def down(run_dir: Path) -> int:
    """Stop the services (draining), then Kafka, then PostgreSQL; leaves no process behind."""
    for spec in reversed(services.SERVICES):
        if services.stop_service(run_dir, spec.name):
            print(f"stopped {spec.name}")
    local_kafka.stop_kafka(run_dir)
    local_pg.stop_postgres(run_dir)
    print("Leadline is down.")
    return 0


def _run_dir(args: argparse.Namespace) -> Path:
    return Path(args.run_dir) if args.run_dir else procs.default_run_dir()


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline up`` and ``leadline down``."""
    for name, func, text in (
        ("up", up, "start the whole local stack (Kafka, PostgreSQL, services)"),
        ("down", down, "stop everything `leadline up` started"),
    ):
        parser = subparsers.add_parser(name, help=text)
        parser.add_argument("--run-dir", help="state directory (default: <repo>/.run)")
        parser.set_defaults(func=lambda args, f=func: f(_run_dir(args)))


if __name__ == "__main__":
    sys.exit(up(procs.default_run_dir()))
