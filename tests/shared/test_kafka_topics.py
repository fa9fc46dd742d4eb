"""Topic creation on the real broker: one request for all, safe when several processes race, loud on refusal."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from leadline_shared import kafka

pytestmark = pytest.mark.integration


async def _partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


async def test_racing_creators_make_every_topic_once_and_neither_fails(
    kafka_bootstrap: str, run_id: str
) -> None:
    topics = kafka.Topics.with_prefix(f"test-{run_id}.")
    first, second = await asyncio.gather(
        kafka.ensure_topics(kafka_bootstrap, topics, partitions=2),
        kafka.ensure_topics(kafka_bootstrap, topics, partitions=2),
    )
    specs = {spec.name: spec.num_partitions for spec in topics.specs(2)}
    assert sorted(first + second) == sorted(specs)  # each topic created by exactly one of them
    assert await _partitions(kafka_bootstrap, list(specs)) == specs
    assert await kafka.ensure_topics(kafka_bootstrap, topics, partitions=2) == []  # all there: nothing to do


async def test_a_topic_the_broker_refuses_is_an_error_not_a_silent_skip(
    kafka_bootstrap: str, run_id: str
) -> None:
    topics = kafka.Topics.with_prefix(f"test-{run_id}.bad name!")  # spaces and '!' are not legal in a name
    with pytest.raises(KafkaError):
        await kafka.ensure_topics(kafka_bootstrap, topics, partitions=1)
