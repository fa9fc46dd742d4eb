"""Run the three Leadline services as detached processes for ``make up`` and the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from leadline_localstack import procs


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its ``leadline`` subcommand and the variable that sets its port."""

    name: str
    port_var: str
    default_port: int


SERVICES = (
    ServiceSpec("collector", "LEADLINE_COLLECTOR_PORT", 8080),
    ServiceSpec("enricher", "LEADLINE_ENRICHER_PORT", 8082),
    ServiceSpec("crm-core", "LEADLINE_CRM_PORT", 8081),
)


def leadline_command(*args: str) -> list[str]:
    """The ``leadline`` CLI run by this interpreter (so the venv's packages are used)."""
    return [sys.executable, "-m", "leadline_shared.cli", *args]


def pid_file(run_dir: Path, name: str) -> Path:
    """Where a service's pid is kept."""
    return run_dir / "services" / f"{name}.pid"


def log_path(run_dir: Path, name: str) -> Path:
    """Where a service's JSON log goes."""
    return run_dir / "logs" / f"{name}.log"


def running_pid(run_dir: Path, name: str) -> int | None:
    """The pid of the service if our pid file names a live process running it."""
    pid = procs.read_int(pid_file(run_dir, name))
    if pid is not None and procs.pid_matches(pid, name):
        return pid
    return None


def ready(port: int, timeout: float = 2.0) -> bool:
    """The service's /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_service(run_dir: Path, spec: ServiceSpec, env: dict[str, str], timeout: float = 60.0) -> int:
    """Start one service detached (unless running) and wait until it is ready; returns its port."""
    port = int(env.get(spec.port_var, spec.default_port))
    if running_pid(run_dir, spec.name) is None:
        log = log_path(run_dir, spec.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                leadline_command(spec.name),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        procs._CHILDREN[proc.pid] = proc
        procs.write_text_atomic(pid_file(run_dir, spec.name), f"{proc.pid}\n")
    if not procs.wait_until(lambda: ready(port), timeout, interval=0.2):
        tail = procs.log_tail(log_path(run_dir, spec.name))
        raise RuntimeError(f"{spec.name} not ready on port {port} after {timeout:.0f}s; log tail:\n{tail}")
    return port


def stop_service(run_dir: Path, name: str, timeout: float = 20.0) -> bool:
    """SIGTERM the service (it drains and flushes), SIGKILL after ``timeout``; True if one was running."""
    pid = running_pid(run_dir, name)
    pid_file(run_dir, name).unlink(missing_ok=True)
    if pid is None:
        return False
    procs.terminate(pid, timeout=timeout)
    return True


def service_env(kafka_bootstrap: str, pg_dsn: str, **extra: str) -> dict[str, str]:
    """The environment for the services: the caller's, plus where Kafka and PostgreSQL are."""
    env = dict(os.environ)
    env.update({"LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap, "LEADLINE_PG_DSN": pg_dsn})
    env.update(extra)
    return env
