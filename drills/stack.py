"""The drills' own local stack, and the faults done to it.

Everything is started by ``leadline_localstack``'s functions (the ones ``make up`` uses), with a run directory
and ports of its own (:class:`Ports`), so the developer's stack on the default ports and the tests' stacks are
never touched. A fresh run starts from empty data: the previous drill run's Kafka log and PostgreSQL cluster are
removed first (only those under the drill's run directory, and only when nothing of it is running).

The spool's disk full: we run as root here, so the collector's spool is put on a small tmpfs mounted for the
drill (:meth:`DrillStack.small_spool`). Without root (or where mounting is refused) the drill falls back to
the collector's own size cap (``LEADLINE_SPOOL_MAX_MB``), which takes the same path in the code (the append is
refused and the collector answers 503 to forms); the report says which one was used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from leadline_localstack import kafka as local_kafka
from leadline_localstack import postgres as local_pg
from leadline_localstack import procs, services

SMALL_SPOOL_MB = 8
MARKER = ".leadline-drill"  # in a run dir the drills made: only such a directory is ever emptied
# Log messages that mean a task of a service ended while the process lives on (the drill reports them).
ALARMING = (
    "background task died",
    "Task exception was never retrieved",
    "Future exception was never retrieved",
)


@dataclass(frozen=True)
class Ports:
    """The drill stack's ports: all differ from ``make up``'s (9092/9093, 5432, 8080-8082)."""

    kafka: int = 19092
    controller: int = 19093
    postgres: int = 15432
    collector: int = 18080
    crm: int = 18081
    enricher: int = 18082


class DrillStack:
    """Kafka, PostgreSQL and the three services of one drill run."""

    def __init__(self, run_dir: Path, ports: Ports, *, kafka_heap_mb: int = 512) -> None:
        self.run_dir = run_dir.resolve()
        self.ports = ports
        self.kafka_heap_mb = kafka_heap_mb
        self.bootstrap = f"{procs.LOCALHOST}:{ports.kafka}"
        self.dsn = ""
        self.spool_dir = self.run_dir / "spool"
        self._extra: dict[str, dict[str, str]] = {}
        self._link_keys = f"drill1:{secrets.token_urlsafe(32)}"
        self._small_mount = self.run_dir / "spool-small"

    # --- whole stack -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Stop what a previous run left and remove its data, so that this run starts empty."""
        if self.run_dir == procs.default_run_dir().resolve():
            raise RuntimeError(f"{self.run_dir} is `make up`'s run dir; the drills need one of their own")
        if self.run_dir.is_dir() and any(self.run_dir.iterdir()) and not (self.run_dir / MARKER).is_file():
            raise RuntimeError(
                f"{self.run_dir} is not empty and was not made by a drill; choose another --run-dir"
            )
        self.stop()
        small = self.run_dir / "spool-small"
        if os.path.ismount(small):
            subprocess.run(["umount", str(small)], check=False, capture_output=True)
        pg_data = local_pg.data_dir(self.run_dir)
        if self.run_dir.is_dir():
            shutil.rmtree(self.run_dir)
        if pg_data.is_dir() and pg_data.name == "data" and "leadline-pg-" in str(pg_data.parent):
            shutil.rmtree(pg_data.parent)  # the fallback home in /tmp made for this run dir

    def start(self) -> None:
        """Start Kafka, PostgreSQL, the three services, and publish the demo form (the load posts to it)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / MARKER).touch()
        self.bootstrap = local_kafka.start_kafka(
            self.run_dir, self.ports.kafka, self.ports.controller, heap_mb=self.kafka_heap_mb
        )
        self.dsn = local_pg.start_postgres(self.run_dir, self.ports.postgres)
        for spec in services.SERVICES:
            self.start_service(spec.name)
        subprocess.run(
            services.leadline_command("seed-demo", "--collector-url", self.collector_url),
            env=self.env("crm-core"),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        """Stop the services (draining), Kafka and PostgreSQL of this run dir; no process left behind."""
        for spec in reversed(services.SERVICES):
            services.stop_service(self.run_dir, spec.name)
        local_kafka.stop_kafka(self.run_dir)
        local_pg.stop_postgres(self.run_dir)

    def not_ready(self) -> list[str]:
        """The parts that do not answer right now (empty: healthy)."""
        down = [] if local_kafka.kafka_api_answers(self.ports.kafka) else ["kafka"]
        down += [] if local_pg.postgres_running(self.run_dir) else ["postgres"]
        return down + [s.name for s in services.SERVICES if not services.ready(self.port(s.name))]

    def heal(self) -> list[str]:
        """Start whatever does not answer (a drill's repair that failed); returns what still does not."""
        down = self.not_ready()
        if "kafka" in down:
            self.start_kafka()
        if "postgres" in down:
            self.start_postgres()
        for spec in services.SERVICES:
            if spec.name in down:  # alive but not ready is restarted too, as a failing liveness probe would
                self.stop_service(spec.name)
                with contextlib.suppress(RuntimeError):
                    self.start_service(spec.name)
        return self.not_ready()

    @property
    def collector_url(self) -> str:
        return f"http://{procs.LOCALHOST}:{self.ports.collector}"

    def port(self, name: str) -> int:
        """The port of a service."""
        return {
            "collector": self.ports.collector,
            "crm-core": self.ports.crm,
            "enricher": self.ports.enricher,
        }[name]

    # --- services --------------------------------------------------------------------------------------
    def env(self, name: str) -> dict[str, str]:
        """The environment a service is started with (the drill's ports, spool and form limits)."""
        settings = {
            "LEADLINE_COLLECTOR_PORT": str(self.ports.collector),
            "LEADLINE_CRM_PORT": str(self.ports.crm),
            "LEADLINE_ENRICHER_PORT": str(self.ports.enricher),
            "LEADLINE_SPOOL_DIR": str(self.spool_dir),
            "LEADLINE_LINK_KEYS": self._link_keys,
            "LEADLINE_FORM_RATE_PER_IP": "1000000",
            "LEADLINE_FORM_RATE_PER_FORM": "1000000",
        }
        settings.update(self._extra.get(name, {}))
        return services.service_env(self.bootstrap, self.dsn, **settings)

    def start_service(self, name: str) -> None:
        """Start a service (unless running) and wait until it answers /readyz."""
        spec = next(s for s in services.SERVICES if s.name == name)
        services.start_service(self.run_dir, spec, self.env(name))

    def stop_service(self, name: str) -> None:
        """SIGTERM a service (it drains) and wait for it to exit."""
        services.stop_service(self.run_dir, name)

    def kill(self, name: str) -> None:
        """SIGKILL a service's whole process group, as the kernel's OOM killer or a node loss would."""
        pid = services.running_pid(self.run_dir, name)
        if pid is None:
            raise RuntimeError(f"{name} is not running; nothing to kill")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if not procs.wait_until(lambda: not procs.pid_alive(pid), 10.0):
            raise RuntimeError(f"{name} (pid {pid}) survived SIGKILL")

    def log_marks(self) -> dict[str, int]:
        """How long each service's log is now (where :meth:`log_findings` starts reading)."""
        marks = {}
        for spec in services.SERVICES:
            path = services.log_path(self.run_dir, spec.name)
            marks[spec.name] = path.stat().st_size if path.is_file() else 0
        return marks

    def log_findings(self, marks: dict[str, int]) -> Counter[tuple[str, str]]:
        """Lines logged since ``marks`` that mean a part of a service stopped working: (service, message)."""
        found: Counter[tuple[str, str]] = Counter()
        for name, start in marks.items():
            path = services.log_path(self.run_dir, name)
            if not path.is_file():
                continue
            with path.open("rb") as log:
                log.seek(start)
                for line in log:
                    msg = _message(line)
                    if msg is not None and msg.startswith(ALARMING):
                        found[(name, msg)] += 1
        return found

    # --- Kafka and PostgreSQL --------------------------------------------------------------------------
    def stop_kafka(self) -> None:
        local_kafka.stop_kafka(self.run_dir)

    def start_kafka(self) -> None:
        local_kafka.start_kafka(
            self.run_dir, self.ports.kafka, self.ports.controller, heap_mb=self.kafka_heap_mb
        )

    def stop_postgres(self) -> None:
        local_pg.stop_postgres(self.run_dir)

    def start_postgres(self) -> None:
        local_pg.start_postgres(self.run_dir, self.ports.postgres)

    # --- the spool's disk ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def small_spool(self, megabytes: int = SMALL_SPOOL_MB) -> Iterator[str]:
        """Run the collector with its spool on a ``megabytes`` filesystem; yields how that was done.

        The collector is restarted (SIGTERM, it drains first) on the small spool, and again on its usual one
        afterwards; the mount is removed at the end.
        """
        mount = self._small_mount
        mount.mkdir(parents=True, exist_ok=True)
        mounted = _mount_tmpfs(mount, megabytes)
        if mounted:
            self._extra["collector"] = {"LEADLINE_SPOOL_DIR": str(mount)}
            how = f"spool on a {megabytes} MiB tmpfs mounted for the drill (the disk itself fills: ENOSPC)"
        else:
            self._extra["collector"] = {"LEADLINE_SPOOL_MAX_MB": str(megabytes)}
            how = f"no tmpfs could be mounted (not root?): the collector's own cap, LEADLINE_SPOOL_MAX_MB={megabytes}"
        self.stop_service("collector")
        try:
            self.start_service("collector")
            yield how
        finally:
            self.stop_service("collector")
            self._extra.pop("collector", None)
            if mounted:
                subprocess.run(["umount", str(mount)], check=False, capture_output=True)
            self.start_service("collector")

    def grow_spool(self, megabytes: int = 256) -> str:
        """The operator's remedy for a full spool: give it room (a bigger volume) and restart the collector.

        Grows the tmpfs in place (``mount -o remount,size=``), or lifts the collector's own cap when that was
        the limit; the collector is stopped first and started again on the same spool, which it replays.
        """
        self.stop_service("collector")
        if os.path.ismount(self._small_mount):
            subprocess.run(
                ["mount", "-o", f"remount,size={megabytes}m", str(self._small_mount)],
                check=True,
                capture_output=True,
            )
            how = f"the tmpfs grown to {megabytes} MiB"
        else:
            self._extra.setdefault("collector", {})["LEADLINE_SPOOL_MAX_MB"] = str(megabytes)
            how = f"LEADLINE_SPOOL_MAX_MB raised to {megabytes}"
        self.start_service("collector")
        return how


def _message(line: bytes) -> str | None:
    """The first line of a JSON log line's ``msg`` (None for anything else)."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    msg = doc.get("msg") if isinstance(doc, dict) else None
    return msg.splitlines()[0] if isinstance(msg, str) and msg else None


def _mount_tmpfs(path: Path, megabytes: int) -> bool:
    """Mount a tmpfs of ``megabytes`` at ``path``; False when not allowed (not root, no mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(path)],
        check=False,
        capture_output=True,
    )
    return done.returncode == 0
