"""The image is really built and really runs: `make image` on this machine, then the three services from it.

Issue 17: the Dockerfile had never been built. Here it is built with podman on a Debian base the project makes
itself (no registry is reachable), and the services run from it, non-root, on a read-only root file system with
the spool on a volume, against the real Kafka and PostgreSQL of the test session: a pixel and a form go through
to crm-core, and each container stops cleanly on SIGTERM (exec-form entrypoint).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest

from leadline_localstack import procs
from leadline_shared import kafka

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/leadline:test"
ENV = {"CONTAINERS_CONF": str(REPO / "deploy" / "docker" / "containers.conf")}


def podman(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=os.environ | ENV, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}… failed: {result.stderr[-2000:]}")
    return result.stdout


@pytest.fixture(scope="module")
def image() -> str:
    """`make image`'s script, as a developer runs it (the base is cached after the first build)."""
    if shutil.which("podman") is None or shutil.which("debootstrap") is None:
        pytest.fail("podman and debootstrap are prerequisites (bash .ci/run installs them)")
    subprocess.run(
        ["bash", str(REPO / "deploy" / "docker" / "build-image.sh")],
        check=True, timeout=900, env=os.environ | ENV | {"TAG": "test"},
    )  # fmt: skip
    return IMAGE


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A request as a browser makes it (a library's user agent is a bot, whose form identifies nobody)."""
    request = urllib.request.Request(url, data=data, headers={"User-Agent": BROWSER, **(headers or {})})  # noqa: S310 (loopback only)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {timeout:.0f}s")


def test_the_image_holds_no_test_tools_and_runs_as_a_non_root_user(image: str) -> None:
    config = orjson.loads(podman("image", "inspect", "--format", "{{json .Config}}", image))
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["leadline"]  # exec form: the process gets SIGTERM itself
    probe = (
        "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('pytest', 'mypy', 'ruff')))"
    )
    podman(
        "run",
        "--rm",
        "--network=none",
        "--read-only",
        "--entrypoint",
        "/opt/leadline/bin/python",
        image,
        "-c",
        probe,
    )
    assert "usage: leadline" in podman("run", "--rm", "--network=none", "--read-only", image, "--help")


@pytest.fixture
def stack(
    image: str, kafka_bootstrap: str, pg_dsn: str, topics: kafka.Topics, run_id: str, schema: str
) -> Iterator[dict[str, int]]:
    """collector, enricher and crm-core containers on this test's topics and schemas; removed afterwards.

    As the Helm chart does it: `leadline migrate` runs first, in a container of its own (the hook Job), and the
    services start with LEADLINE_MIGRATE_ON_START=false, so the tables they use are the command's.
    """
    ports = {"collector": procs.free_port(), "enricher": procs.free_port(), "crm-core": procs.free_port()}
    common = {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_PG_DSN": pg_dsn,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_COLLECTOR_PORT": str(ports["collector"]),
        "LEADLINE_ENRICHER_PORT": str(ports["enricher"]),
        "LEADLINE_CRM_PORT": str(ports["crm-core"]),
        "LEADLINE_CRM_SCHEMA": schema,
        "LEADLINE_IDENTITY_SCHEMA": f"{schema}_id",
        "LEADLINE_CRM_GROUP": f"crm-{run_id}",
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
    }
    env_args = [a for k, v in common.items() for a in ("-e", f"{k}={v}")]
    names = [f"ll-{run_id}-{service}" for service in ports]
    volume = f"ll-{run_id}-spool"
    try:
        migrated = podman("run", "--rm", "--network=host", "--read-only", *env_args, image, "migrate")
        assert f"crm-core: schema {schema}," in migrated
        assert f"enricher: schema {schema}_id," in migrated
        env_args += ["-e", "LEADLINE_MIGRATE_ON_START=false"]
        for name, service in zip(names, ports, strict=True):
            extra = ["-v", f"{volume}:/var/lib/leadline/spool"] if service == "collector" else []
            podman(
                "run",
                "-d",
                "--name",
                name,
                "--network=host",
                "--read-only",
                *extra,
                *env_args,
                image,
                service,
            )
        for service, port in ports.items():
            wait_for(lambda p=port: http(f"http://127.0.0.1:{p}/readyz")[0] == 200, f"{service} ready")
        yield ports
    finally:  # the containers' last lines, shown by pytest only when the test failed
        for name in names:
            tail = subprocess.run(
                ["podman", "logs", "--tail", "15", name],
                capture_output=True,
                text=True,
                env=os.environ | ENV,
                check=False,
            )
            print(f"--- {name}\n{tail.stdout}{tail.stderr}")
        subprocess.run(["podman", "rm", "-f", *names], capture_output=True, env=os.environ | ENV, check=False)
        subprocess.run(
            ["podman", "volume", "rm", "-f", volume], capture_output=True, env=os.environ | ENV, check=False
        )
        asyncio.run(_drop_schema(pg_dsn, f"{schema}_id"))


async def _drop_schema(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


def test_a_pixel_and_a_form_go_through_the_three_containers_to_crm_core(
    stack: dict[str, int], run_id: str
) -> None:
    collector, crm = f"http://127.0.0.1:{stack['collector']}", f"http://127.0.0.1:{stack['crm-core']}"
    crm_name = f"ll-{run_id}-crm-core"
    token = podman("exec", crm_name, "leadline", "token", "--role", "admin").strip()
    podman("exec", crm_name, "leadline", "seed-demo", "--collector-url", collector)
    auth = {"Authorization": f"Bearer {token}"}

    visitor = "0190b3f0-7c1e-7cc2-9a57-0000000000aa"
    status, _ = http(f"{collector}/p.gif?url=https://shop.example/", headers={"Cookie": f"ll_vid={visitor}"})
    assert status == 200
    form = orjson.dumps({"email": f"img-{run_id}@shop.example", "name": "Ima Ge"})
    headers = {"Content-Type": "application/json", "Accept": "application/json", "Origin": collector}
    headers["Cookie"] = f"ll_vid={visitor}"
    wait_for(lambda: http(f"{collector}/f/demo", form, headers)[0] == 200, "the collector took the demo form")

    def person_known() -> bool:
        status, body = http(f"{crm}/api/v1/persons?email=img-{run_id}@shop.example", headers=auth)
        return status == 200 and len(orjson.loads(body)["items"]) == 1

    wait_for(person_known, "the form's person in crm-core")
    _, body = http(f"{crm}/api/v1/events?anon_id={visitor}", headers=auth)
    assert {"page_view", "form_submit"} <= {e["type"] for e in orjson.loads(body)["items"]}

    for service in ("collector", "enricher", "crm-core"):
        name = f"ll-{run_id}-{service}"
        podman("stop", "--time", "20", name, timeout=60)
        assert podman("inspect", "--format", "{{.State.ExitCode}}", name).strip() == "0", (
            f"{service} on SIGTERM"
        )
