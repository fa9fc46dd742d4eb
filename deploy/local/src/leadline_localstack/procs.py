"""Small process helpers shared by the Kafka and PostgreSQL launchers: paths, pid files, ports, locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

LOCALHOST = "127.0.0.1"

# Popen objects of the daemons this process started, kept so that they are never garbage collected while
# running (no "still running" warning) and so that stop_* can reap them instead of leaving zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def repo_root() -> Path:
    """The repository root: the nearest parent of this file (or of the working directory) holding deploy/local."""
    here = Path(__file__).resolve()
    cwd = Path.cwd().resolve()
    for candidate in (*here.parents, cwd, *cwd.parents):
        if (candidate / "deploy" / "local" / "pom.xml").is_file():
            return candidate
    raise RuntimeError(
        f"cannot find the Leadline repository root (deploy/local/pom.xml) above {here} or {cwd}"
    )


def default_run_dir() -> Path:
    """`<repo>/.run`, where `make up` keeps pid files, logs and data."""
    return repo_root() / ".run"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on *path* (created if missing) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_int(path: Path) -> int | None:
    """The integer on the first line of *path*, or None if the file is missing or malformed."""
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None


def write_text_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reap(pid: int) -> None:
    """Collect the exit status of *pid* if it is a finished child of this process (no zombie left behind)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
    """True if *pid* names a live (not zombie) process."""
    if pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # no procfs: trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"]


def cmdline(pid: int) -> list[str]:
    """The command line of *pid* (empty if unknown or no procfs)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def pid_matches(pid: int, marker: str) -> bool:
    """True if *pid* is alive and its command line mentions *marker* (guards against recycled pids)."""
    if not pid_alive(pid):
        return False
    args = cmdline(pid)
    if not args and not Path("/proc").is_dir():
        return True
    return any(marker in arg for arg in args)


def spawn_detached(args: Sequence[str], log_path: Path, *, cwd: Path | None = None) -> int:
    """Start *args* in its own session with stdin closed and stdout+stderr appended to *log_path*."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def terminate(pid: int, *, timeout: float = 30.0) -> None:
    """SIGTERM *pid* (its whole process group when it leads one), wait up to *timeout*, then SIGKILL."""

    def send(sig: signal.Signals) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    if not pid_alive(pid):
        return
    send(signal.SIGTERM)
    if wait_until(lambda: not pid_alive(pid), timeout):
        return
    send(signal.SIGKILL)
    if not wait_until(lambda: not pid_alive(pid), 10.0):
        raise RuntimeError(f"process {pid} survived SIGKILL")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll *predicate* until it is true (returns True) or *timeout* seconds pass (returns False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_in_use(port: int, host: str = LOCALHOST) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def port_bindable(port: int, host: str = LOCALHOST) -> bool:
    """True if host:port can be bound right now (nothing listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port the kernel reports free on *host* (free now; a race with other processes remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 40) -> str:
    """The last *lines* lines of *path* (or a note that it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def run_checked(
    args: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> str:
    """Run *args* to completion; return its output or raise RuntimeError with the output tail.

    Output goes through a temporary file rather than a pipe: a daemon the command forks (pg_ctl start) would
    otherwise inherit the pipe and keep the read end waiting forever.
    """
    with tempfile.TemporaryFile() as out:
        result = subprocess.run(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=new_session,
            check=False,
        )
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if result.returncode != 0:
        tail = "\n".join(text.splitlines()[-30:])
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {' '.join(args)}\n{tail}")
    return text
