"""Killing the enricher inside one of its Kafka transactions, under load, for the crash tests.

A SIGKILL sent "mid-stream" mostly lands between two transactions: with small batches each commits within
milliseconds, so a kill test that never saw an open transaction proves less than it claims. These helpers look
at the broker (the log end against the last stable offset) and kill only while a transaction of the enricher's
is open.
"""

from __future__ import annotations

import asyncio
import os
import signal

from aiokafka import AIOKafkaConsumer, TopicPartition

from leadline_shared import kafka


async def produce_slowly(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], chunk: int, pause: float = 0.05
) -> None:
    """``(key, value)`` messages ``chunk`` at a time with a pause between, so a kill lands while they still come."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for start in range(0, len(messages), chunk):
            for key, value in messages[start : start + chunk]:
                await producer.send(topic, value, key=key)
            await producer.flush()
            await asyncio.sleep(pause)
    finally:
        await producer.stop()


class OpenTransactions:
    """Where topics end for a read_uncommitted reader (the log end) and for a read_committed one (the last stable
    offset): records between the two belong to a Kafka transaction still open."""

    def __init__(self, bootstrap: str, topics: list[str], partitions: int = 3) -> None:
        self.partitions = {topic: [TopicPartition(topic, p) for p in range(partitions)] for topic in topics}
        self.uncommitted, self.committed = (
            AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level=level)
            for level in ("read_uncommitted", "read_committed")
        )

    async def __aenter__(self) -> OpenTransactions:
        await self.uncommitted.start()
        await self.committed.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.uncommitted.stop()
        await self.committed.stop()

    async def records(self) -> dict[str, int]:
        """Records of open transactions, by topic. The log end is read first: a positive count then proves a
        transaction was open when the stable offset was read."""
        every = [tp for tps in self.partitions.values() for tp in tps]
        end = await self.uncommitted.end_offsets(every)
        stable = await self.committed.end_offsets(every)
        return {topic: sum(end[tp] - stable[tp] for tp in tps) for topic, tps in self.partitions.items()}


async def kill_inside_transaction(pid: int, probe: OpenTransactions, topic: str) -> dict[str, int]:
    """SIGKILL ``pid`` while a transaction of its holds records on ``topic``, written but not committed; returns
    what the dead transaction left open, by topic.

    Seen from outside, such a transaction may commit in the millisecond before a kill lands, so the process is
    frozen first (SIGSTOP) and looked at again once whatever it had sent reached the broker: still open, it is
    killed right there, as a kill at the moment it was frozen would have; committed meanwhile, it runs on
    (SIGCONT) until the next one.
    """
    killed = False
    try:
        async with asyncio.timeout(30):
            while True:
                if (await probe.records())[topic] == 0:
                    continue
                os.kill(pid, signal.SIGSTOP)
                await asyncio.sleep(0.3)  # requests it sent before it froze are answered
                left = await probe.records()
                if left[topic] > 0:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                    return left
                os.kill(pid, signal.SIGCONT)
    finally:
        if not killed:
            os.kill(pid, signal.SIGCONT)
