"""The local stack launcher starts, reuses and stops a real Kafka broker and a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline_localstack import (
    free_port,
    kafka_running,
    postgres_running,
    start_kafka,
    start_postgres,
    stop_kafka,
    stop_postgres,
)
from leadline_localstack.kafka import kafka_api_answers
from leadline_localstack.postgres import bin_dir, data_dir
from leadline_localstack.procs import pid_alive, read_int

pytestmark = pytest.mark.integration


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains *text*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in args and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh run dir; whatever a test started there is stopped and its data removed afterwards."""
    path = tmp_path / "run"
    path.mkdir()
    yield path
    stop_kafka(path)
    stop_postgres(path)
    data = data_dir(path)
    if data.parent.name.startswith("leadline-pg-"):  # the /tmp fallback outside tmp_path
        shutil.rmtree(data.parent, ignore_errors=True)


def _psql(dsn: str, sql: str) -> str:
    result = subprocess.run(
        [str(bin_dir() / "psql"), "-X", "-tAq", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


def test_kafka_starts_once_and_stops_without_leftovers(run_dir: Path) -> None:
    port, controller_port = _two_free_ports()

    bootstrap = start_kafka(run_dir, port, controller_port, heap_mb=256)

    assert bootstrap == f"127.0.0.1:{port}"
    pid = read_int(run_dir / "kafka" / "kafka.pid")
    assert pid is not None
    assert pid_alive(pid)
    assert kafka_running(run_dir)
    assert kafka_api_answers(port)
    assert _processes_mentioning(str(run_dir / "kafka" / "server.properties")) == [pid]

    assert start_kafka(run_dir, port, controller_port, heap_mb=256) == bootstrap
    assert read_int(run_dir / "kafka" / "kafka.pid") == pid
    assert _processes_mentioning(str(run_dir / "kafka" / "server.properties")) == [pid]

    stop_kafka(run_dir)

    assert not pid_alive(pid)
    assert not kafka_running(run_dir)
    assert not (run_dir / "kafka" / "kafka.pid").exists()
    assert _processes_mentioning(str(run_dir / "kafka" / "server.properties")) == []
    stop_kafka(run_dir)  # no-op when stopped


def test_kafka_reuses_a_broker_already_on_the_port(run_dir: Path, tmp_path: Path) -> None:
    port, controller_port = _two_free_ports()
    start_kafka(run_dir, port, controller_port, heap_mb=256)
    other = tmp_path / "other-run"

    assert start_kafka(other, port, controller_port) == f"127.0.0.1:{port}"

    assert not kafka_running(other)
    assert len(_processes_mentioning("kafka.Kafka " + str(run_dir))) == 1
    assert _processes_mentioning(str(other)) == []


def test_kafka_refuses_a_port_held_by_something_else(run_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]

        with pytest.raises(RuntimeError, match="does not speak Kafka"):
            start_kafka(run_dir, port, free_port())


def test_postgres_serves_keeps_data_across_restart_and_stops(run_dir: Path) -> None:
    port = free_port()

    dsn = start_postgres(run_dir, port, for_tests=True)

    assert dsn == f"postgresql://postgres@127.0.0.1:{port}/leadline"
    assert postgres_running(run_dir)
    assert _psql(dsn, "select 1") == "1"
    assert _psql(dsn, "show max_connections") == "200"
    assert _psql(dsn, "show fsync") == "off"
    pid = read_int(data_dir(run_dir) / "postmaster.pid")
    assert pid is not None
    assert start_postgres(run_dir, port, for_tests=True) == dsn
    assert read_int(data_dir(run_dir) / "postmaster.pid") == pid

    _psql(dsn, "create table kept (v text); insert into kept values ('still here')")
    stop_postgres(run_dir)

    assert not postgres_running(run_dir)
    assert not pid_alive(pid)
    assert _processes_mentioning(str(data_dir(run_dir))) == []

    assert start_postgres(run_dir, port) == dsn
    assert _psql(dsn, "select v from kept") == "still here"
    assert _psql(dsn, "show fsync") == "on"

    stop_postgres(run_dir)

    assert not postgres_running(run_dir)
    assert _processes_mentioning(str(data_dir(run_dir))) == []
    stop_postgres(run_dir)  # no-op when stopped


@pytest.mark.skipif(os.geteuid() != 0, reason="the /tmp fallback is for root with an unreachable run dir")
def test_postgres_data_goes_to_tmp_when_postgres_cannot_enter_the_run_dir(run_dir: Path) -> None:
    run_dir.chmod(0o700)

    start_postgres(run_dir, free_port(), for_tests=True)

    data = data_dir(run_dir)
    assert data.parent.name.startswith("leadline-pg-")
    assert (run_dir / "postgres" / "datadir").read_text().strip() == str(data)
    assert data.owner() == "postgres"


def test_postgres_moves_to_a_free_port_when_the_port_is_taken(run_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        dsn = start_postgres(run_dir, taken, for_tests=True)

        chosen = read_int(run_dir / "postgres" / "port")
        assert chosen is not None
        assert chosen != taken
        assert dsn == f"postgresql://postgres@127.0.0.1:{chosen}/leadline"
        assert _psql(dsn, "select 1") == "1"
        stop_postgres(run_dir)
        assert start_postgres(run_dir, taken, for_tests=True) == dsn


def test_cli_status_reports_both_components(run_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "leadline_localstack", "status", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert result.stdout.splitlines() == ["kafka: stopped", "postgres: stopped"]
