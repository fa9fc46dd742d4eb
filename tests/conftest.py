"""Session fixtures: one real Kafka broker and one real PostgreSQL for the whole run.

They are started by the project's own code (deploy/local) unless already running (``make up``), in which case
the running stack is reused and left alone. Every test then gets topic names and a schema of its own, so tests
never see each other's messages or rows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from leadline_localstack import kafka as local_kafka
from leadline_localstack import postgres as local_pg
from leadline_localstack import procs
from leadline_shared import kafka

REPO = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("LEADLINE_TEST_RUN_DIR", REPO / ".run"))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker: the running one, else one started for this session and stopped after it."""
    if env := os.environ.get("LEADLINE_TEST_KAFKA"):
        yield env
        return
    was_running = local_kafka.kafka_running(RUN_DIR)
    bootstrap = local_kafka.start_kafka(RUN_DIR)
    yield bootstrap
    if not was_running:
        local_kafka.stop_kafka(RUN_DIR)


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL: the running one, else one started for this session and stopped after it."""
    if env := os.environ.get("LEADLINE_TEST_PG_DSN"):
        yield env
        return
    was_running = local_pg.postgres_running(RUN_DIR)
    dsn = local_pg.start_postgres(RUN_DIR, for_tests=True)
    yield dsn
    if not was_running:
        local_pg.stop_postgres(RUN_DIR)


@pytest.fixture
def run_id() -> str:
    """A short id unique to this test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def janitor() -> Iterator[ThreadPoolExecutor]:
    """One thread that clears up after tests (their topics, their schema) while the next test runs, instead of
    each test waiting for its own clean-up; the session waits for the last of it at its end."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="janitor") as pool:
        yield pool


@pytest.fixture
async def topics(
    kafka_bootstrap: str, run_id: str, janitor: ThreadPoolExecutor
) -> AsyncIterator[kafka.Topics]:
    """This test's own topics, created on the real broker and deleted after the test (by the janitor).

    Deleting matters: a broker that keeps every test's partitions (a dozen per test, hundreds of tests per run,
    runs after runs against a `make up` broker) ends in an out-of-memory crash.
    """
    names = kafka.Topics.with_prefix(f"test-{run_id}.")
    await kafka.ensure_topics(kafka_bootstrap, names, partitions=3)
    yield names
    janitor.submit(_delete_topics_quietly, kafka_bootstrap, f"test-{run_id}.")


def _delete_topics_quietly(bootstrap: str, prefix: str) -> None:
    try:  # cleanup only, with a deadline: the test's verdict stands whatever happens here
        asyncio.run(asyncio.wait_for(_delete_topics(bootstrap, prefix), 15))
    except (TimeoutError, KafkaError, OSError) as exc:
        logging.getLogger(__name__).warning("could not delete test topics: %r", exc)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine, timeout_ms=10000)
    finally:
        await admin.close()


@pytest.fixture
def schema(pg_dsn: str, run_id: str, janitor: ThreadPoolExecutor) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards (by the janitor)."""
    name = f"t_{run_id}"
    yield name
    janitor.submit(_drop_schema, pg_dsn, name)


def _drop_schema(pg_dsn: str, name: str) -> None:
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    except psycopg.Error as exc:
        logging.getLogger(__name__).warning("could not drop test schema %s: %r", name, exc)


@pytest.fixture(scope="module")
def private_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, int]]:
    """A broker of this module's own (run dir, port, controller port), for tests that stop and start it."""
    run_dir = tmp_path_factory.mktemp("outage-kafka")
    port, controller = procs.free_port(), procs.free_port()
    local_kafka.start_kafka(run_dir, port=port, controller_port=controller, heap_mb=256)
    yield run_dir, port, controller
    local_kafka.stop_kafka(run_dir)


@pytest.fixture(autouse=True)
def _forget_finished_apps() -> Iterator[None]:
    """aiohttp caches each handler's middleware chain in a module-level LRU (``web_app._cached_build_middleware``,
    1,024 entries) keyed by the handler and its application, which keeps every test's finished app alive. A
    crm-core app holds its compiled JSON Schema validators (about 80 MB), so the suite grew to 15 GB. One app per
    process in production never notices; the tests clear the cache after each test."""
    yield
    from aiohttp import web_app

    cache = getattr(web_app, "_cached_build_middleware", None)
    if cache is not None:
        cache.cache_clear()
