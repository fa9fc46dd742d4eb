"""``leadline collector --workers N``: one collector process per core, all on one port.

A collector process is bound by one CPU (one event loop); a host with more cores runs several. Each worker is
the same command run with ``--worker-index i``: it binds the port with SO_REUSEPORT (the kernel spreads new
connections over the listeners), and has its own Kafka producer and its own spool directory, so a restarted
worker replays what it spooled itself. Worker 0 keeps the spool directory a single process uses, so a spool left
by ``--workers 1`` is still replayed after the switch; worker ``i > 0`` spools under ``<spool>/worker-<i>``.

The parent only supervises: it forwards SIGTERM/SIGINT (each worker drains as a single process does), restarts a
worker that dies unexpectedly after a back-off, and exits non-zero when one keeps dying.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from leadline_collector.settings import CollectorSettings

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 30.0
"""A worker that ran this long before dying is restarted as if for the first time (its back-off starts over)."""
MAX_QUICK_DEATHS = 5
"""A worker that dies this many times in a row, each soon after its start, stops the whole collector."""
POLL_S = 0.1
STOP_TIMEOUT_S = 120.0
"""How long a worker may take to drain after SIGTERM before it is killed (its spool keeps what it held)."""
PR_SET_PDEATHSIG = 1


def worker_spool(root: str, index: int) -> str:
    """Worker ``index``'s spool directory: the single process's for worker 0 (so an upgrade replays it)."""
    return root if index == 0 else str(Path(root) / f"worker-{index}")


def worker_settings(settings: CollectorSettings, index: int) -> CollectorSettings:
    """``settings`` as worker ``index`` runs with them (its own spool)."""
    return dataclasses.replace(settings, spool_dir=worker_spool(settings.spool_dir, index))


def worker_command(index: int) -> list[str]:
    """The command line of worker ``index``: this same CLI, as one worker (the environment is inherited)."""
    return [sys.executable, "-m", "leadline_shared.cli", "collector", "--worker-index", str(index)]


def die_with_parent() -> None:
    """In the forked worker, before exec: ask Linux for SIGTERM when the supervisor dies, so a SIGKILLed
    supervisor leaves no orphan workers holding the port (a new collector would share it with them)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Worker:
    """One worker process and its restart history."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        """Start (or restart) the process."""
        self.proc = subprocess.Popen(worker_command(self.index), preexec_fn=die_with_parent)
        self.started_at, self.restart_at = time.monotonic(), None
        log.info("worker started", extra={"worker": self.index, "pid": self.proc.pid})


@dataclass
class Supervisor:
    """Runs ``count`` workers until a signal; see the module docstring."""

    count: int
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        """Start the workers, keep them running until SIGTERM/SIGINT, stop them; the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.workers = [Worker(i) for i in range(self.count)]
            for worker in self.workers:
                worker.start()
            failed = False
            while not self.stopping and not failed:
                time.sleep(POLL_S)
                failed = any(self._tend(worker) for worker in self.workers)
            return self._stop_all() if not failed else max(self._stop_all(), 1)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _tend(self, worker: Worker) -> bool:
        """Restart ``worker`` if it died and its back-off is over; True when it keeps dying."""
        now = time.monotonic()
        if worker.restart_at is not None:
            if now >= worker.restart_at and not self.stopping:
                worker.start()
            return False
        code = worker.proc.poll() if worker.proc is not None else None
        if code is None or self.stopping:
            return False
        worker.quick_deaths = 0 if now - worker.started_at >= HEALTHY_AFTER_S else worker.quick_deaths + 1
        if worker.quick_deaths >= MAX_QUICK_DEATHS:
            log.error("worker keeps dying; stopping", extra={"worker": worker.index, "exit_code": code})
            return True
        delay = min(BACKOFF_FIRST_S * 2 ** max(worker.quick_deaths - 1, 0), BACKOFF_MAX_S)
        log.error(
            "worker died; restarting", extra={"worker": worker.index, "exit_code": code, "delay_s": delay}
        )
        worker.restart_at = now + delay
        return False

    def _stop_all(self) -> int:
        """SIGTERM every live worker and wait for each to drain; 0 when all exited cleanly."""
        live = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        worst = 0
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in live:
            try:
                code = proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop in time; killing it", extra={"pid": proc.pid})
                proc.kill()
                code = proc.wait()
            worst = worst or (code != 0)
        log.info("workers stopped", extra={"clean": not worst})
        return int(worst)
