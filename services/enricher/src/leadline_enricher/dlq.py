"""``leadline dlq replay``: send dead letters back where they came from once the cause is fixed.

Reads capture.dlq.v1 from a given offset (default: the beginning) up to its end as it was when the command
started, and re-publishes each message with its original key to the topic its service read it from
(leadline_shared.dlq.origin): the enricher's to capture.raw.v1, crm-core's to capture.enriched.v1 (or
identity.changes.v1). That service then processes it again (and dead-letters it again if it is still bad).
``--service`` (alias ``--stage``) replays one service's letters only. Events are deduplicated downstream by
event_id, so replaying a range twice does no harm.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, dlq, kafka

SERVICES = tuple(dlq.SOURCE_OF)


async def replay(
    bootstrap: str,
    topics: kafka.Topics,
    from_offset: int = 0,
    limit: int | None = None,
    service: str | None = None,
) -> int:
    """Re-publish dead letters from ``from_offset`` on (every DLQ partition), those of ``service`` only when
    given; returns how many."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    producer = kafka.producer(bootstrap)
    await producer.start()
    sent = 0
    try:
        partitions = [
            TopicPartition(topics.dlq, p) for p in sorted(await producer.partitions_for(topics.dlq))
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, from_offset)
        remaining = {tp for tp in partitions if ends[tp] > from_offset}
        while remaining and (limit is None or sent < limit):
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp] or (limit is not None and sent >= limit):
                        remaining.discard(tp)
                        break
                    letter = dict(record.headers)
                    if service is not None and dlq.service_of(letter) != service:
                        continue
                    headers = [("replayed_from", f"{tp.partition}:{record.offset}".encode())]
                    target = dlq.origin(letter, topics)
                    partition = None  # the default (murmur2) for enriched, as the enricher writes it
                    if target == topics.raw and record.key:  # the raw topic's one partitioner
                        partition = kafka.partition_for(
                            record.key, len(await producer.partitions_for(target))
                        )
                    await producer.send(
                        target, record.value, key=record.key or None, headers=headers, partition=partition
                    )
                    sent += 1
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    return sent


def run(args: argparse.Namespace) -> int:
    """Replay with the enricher's settings (bootstrap servers and topic prefix)."""
    settings = config.load(EnricherSettings)
    topics = kafka.Topics.with_prefix(settings.topic_prefix)
    count = asyncio.run(replay(settings.kafka_bootstrap, topics, args.from_offset, args.limit, args.service))
    print(f"replayed {count} dead letters from {topics.dlq} to the topics they came from")
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline dlq replay``."""
    parser = subparsers.add_parser("dlq", help="dead letters of the enricher and crm-core")
    sub = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    rep = sub.add_parser("replay", help="re-publish dead letters to the topics they came from")
    rep.add_argument("--from-offset", type=int, default=0, help="first DLQ offset to replay (default 0)")
    rep.add_argument("--limit", type=int, default=None, help="replay at most this many")
    rep.add_argument(
        "--service",
        "--stage",
        dest="service",
        choices=SERVICES,
        default=None,
        help="replay only the letters this service gave up on (default: all)",
    )
    rep.set_defaults(func=run)
