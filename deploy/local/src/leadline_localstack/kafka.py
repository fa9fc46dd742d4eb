"""A real single-node Apache Kafka 4.3.1 broker (KRaft, broker+controller in one JVM) without Docker.

The jars come from Maven Central through ``deploy/local/pom.xml`` into ``deploy/local/kafka/libs`` (git-ignored);
configuration, data, log and pid file live under ``<run_dir>/kafka``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import struct
import time
from pathlib import Path

from leadline_localstack.procs import (
    LOCALHOST,
    file_lock,
    log_tail,
    pid_alive,
    pid_matches,
    port_bindable,
    port_in_use,
    read_int,
    repo_root,
    run_checked,
    spawn_detached,
    terminate,
    wait_until,
    write_text_atomic,
)

KAFKA_MAIN = "kafka.Kafka"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
REUSE_WAIT_S = 5.0
_MARKER = ".leadline-complete"
_API_VERSIONS_KEY = 18
_UNSUPPORTED_VERSION = 35


def _local_dir() -> Path:
    return repo_root() / "deploy" / "local"


def _kafka_dir(run_dir: Path) -> Path:
    return run_dir / "kafka"


def _pid_file(run_dir: Path) -> Path:
    return _kafka_dir(run_dir) / "kafka.pid"


def _bootstrap_file(run_dir: Path) -> Path:
    return _kafka_dir(run_dir) / "bootstrap"


def log_file(run_dir: Path) -> Path:
    """The broker's stdout/stderr (log4j console output)."""
    return _kafka_dir(run_dir) / "kafka.log"


def _find_tool(name: str, env_home: str) -> str:
    home = os.environ.get(env_home)
    if home and (Path(home) / "bin" / name).is_file():
        return str(Path(home) / "bin" / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"`{name}` not found on PATH (nor under ${env_home}/bin); install a JDK 17+ and Maven"
        )
    return found


def ensure_kafka_jars() -> Path:
    """Download the broker's class path with Maven unless a complete copy is there; return the libs dir.

    Completeness is a marker file holding the hash of pom.xml, written only after Maven succeeded, so an
    interrupted download or an edited pom triggers a fresh copy.
    """
    local = _local_dir()
    pom = local / "pom.xml"
    libs = local / "kafka" / "libs"
    libs.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = libs / _MARKER
    with file_lock(libs / ".lock"):
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest:
            return libs
        for jar in libs.glob("*.jar"):
            jar.unlink()
        mvn = _find_tool("mvn", "MAVEN_HOME")
        run_checked(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
            what="downloading the Kafka jars with Maven",
            cwd=local,
        )
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"Maven finished but {libs} holds no kafka_2.13 jar")
        write_text_atomic(marker, digest + "\n")
    return libs


def kafka_api_answers(port: int, host: str = LOCALHOST, timeout: float = 2.0) -> bool:
    """True if host:port answers a Kafka ApiVersions (v0) request: a real broker, ready for clients."""
    correlation_id = 0x1EAD
    client_id = b"leadline-localstack"
    header = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(header)) + header)
            size = struct.unpack(">i", _recv_exact(sock, 4))[0]
            if not 6 <= size <= 1 << 20:
                return False
            body = _recv_exact(sock, size)
    except (OSError, EOFError, struct.error):
        return False
    got_id, error_code = struct.unpack(">ih", body[:6])
    return bool(got_id == correlation_id and error_code in (0, _UNSUPPORTED_VERSION))


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise EOFError("connection closed")
        chunks.extend(chunk)
    return bytes(chunks)


def kafka_running(run_dir: Path) -> bool:
    """True if the broker started for *run_dir* (its pid file) is alive."""
    pid = read_int(_pid_file(run_dir))
    return pid is not None and pid_matches(pid, KAFKA_MAIN)


def _server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOCALHOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOCALHOST}:{port},CONTROLLER://{LOCALHOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOCALHOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "5",
    }
    lines = ["# Written by leadline_localstack.kafka on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _format_storage(java: str, classpath: str, props: Path, data_dir: Path, kdir: Path) -> None:
    if (data_dir / "meta.properties").is_file():
        return
    id_file = kdir / "cluster.id"
    cluster_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else ""
    if not cluster_id:
        out = run_checked(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            what="kafka StorageTool random-uuid",
        )
        cluster_id = out.strip().splitlines()[-1].strip()
        write_text_atomic(id_file, cluster_id + "\n")
    run_checked(
        [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
        what="kafka StorageTool format",
    )


def start_kafka(run_dir: Path, port: int = 9092, controller_port: int = 9093, *, heap_mb: int = 1024) -> str:
    """Start the broker detached unless it (or another Kafka on *port*) is up; return its bootstrap address."""
    run_dir = run_dir.resolve()
    kdir = _kafka_dir(run_dir)
    kdir.mkdir(parents=True, exist_ok=True)
    with file_lock(kdir / ".lock"):
        pid = read_int(_pid_file(run_dir))
        if pid is not None and pid_matches(pid, KAFKA_MAIN):
            bootstrap = _saved_bootstrap(run_dir) or f"{LOCALHOST}:{port}"
            _wait_ready(pid, int(bootstrap.rsplit(":", 1)[1]), run_dir)
            return bootstrap
        _pid_file(run_dir).unlink(missing_ok=True)
        bootstrap = f"{LOCALHOST}:{port}"
        if not port_bindable(port):
            # A stack somebody else started (maybe still starting: its port accepts before it answers): reuse it.
            if wait_until(lambda: kafka_api_answers(port), REUSE_WAIT_S, interval=0.5):
                return bootstrap
            if port_in_use(port):
                raise RuntimeError(
                    f"port {port} on {LOCALHOST} is taken by something that does not speak Kafka"
                )
        for needed in (port, controller_port):
            if not _bindable_soon(needed):
                raise RuntimeError(
                    f"port {needed} on {LOCALHOST} cannot be bound (in use); choose another port"
                )

        libs = ensure_kafka_jars()
        java = _find_tool("java", "JAVA_HOME")
        classpath = f"{libs}/*"
        data_dir = kdir / "data"
        props = kdir / "server.properties"
        write_text_atomic(props, _server_properties(data_dir, port, controller_port))
        _format_storage(java, classpath, props, data_dir, kdir)

        log4j = _local_dir() / "log4j2.properties"
        args = [
            java,
            f"-Xms{heap_mb}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={kdir}",
            "-cp",
            classpath,
            KAFKA_MAIN,
            str(props),
        ]
        log = log_file(run_dir)
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"\n=== leadline_localstack: starting Kafka on {bootstrap} at {time.ctime()} ===\n")
        pid = spawn_detached(args, log, cwd=kdir)
        write_text_atomic(_pid_file(run_dir), f"{pid}\n")
        write_text_atomic(_bootstrap_file(run_dir), bootstrap + "\n")
        try:
            _wait_ready(pid, port, run_dir)
        except BaseException:
            terminate(pid, timeout=10.0)
            _pid_file(run_dir).unlink(missing_ok=True)
            raise
        return bootstrap


def _bindable_soon(port: int) -> bool:
    """Wait briefly for a port nothing listens on but that a connection still holds as its local port."""
    return wait_until(lambda: port_bindable(port), 5.0)


def _saved_bootstrap(run_dir: Path) -> str | None:
    try:
        text = _bootstrap_file(run_dir).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def _wait_ready(pid: int, port: int, run_dir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not kafka_api_answers(port):
        if not pid_alive(pid):
            raise RuntimeError(
                f"Kafka (pid {pid}) exited during start-up; tail of {log_file(run_dir)}:\n{log_tail(log_file(run_dir))}"
            )
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"Kafka (pid {pid}) did not answer on {LOCALHOST}:{port} within {START_TIMEOUT_S:.0f} s; "
                f"tail of {log_file(run_dir)}:\n{log_tail(log_file(run_dir))}"
            )
        time.sleep(0.2)


def stop_kafka(run_dir: Path) -> None:
    """SIGTERM our broker, wait up to 30 s, then SIGKILL; remove the pid file. No-op if it is not running."""
    run_dir = run_dir.resolve()
    kdir = _kafka_dir(run_dir)
    if not kdir.is_dir():
        return
    with file_lock(kdir / ".lock"):
        pid = read_int(_pid_file(run_dir))
        if pid is not None and pid_matches(pid, KAFKA_MAIN):
            terminate(pid, timeout=STOP_TIMEOUT_S)
        _pid_file(run_dir).unlink(missing_ok=True)


def kafka_status(run_dir: Path) -> str:
    """One human-readable line about the broker of *run_dir*."""
    run_dir = run_dir.resolve()
    pid = read_int(_pid_file(run_dir))
    if pid is not None and pid_matches(pid, KAFKA_MAIN):
        bootstrap = _saved_bootstrap(run_dir) or "?"
        ready = kafka_api_answers(int(bootstrap.rsplit(":", 1)[1])) if ":" in bootstrap else False
        state = "running" if ready else "starting (not answering yet)"
        return f"kafka: {state}, pid {pid}, bootstrap {bootstrap}, log {log_file(run_dir)}"
    return "kafka: stopped"


__all__ = [
    "ensure_kafka_jars",
    "kafka_api_answers",
    "kafka_running",
    "kafka_status",
    "log_file",
    "start_kafka",
    "stop_kafka",
]
