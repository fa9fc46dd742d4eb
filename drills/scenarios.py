"""The six drills and the runner that puts each under load and counts the outcome.

Each drill is a fault: an async function that breaks one part of the stack and repairs it, returning the
``time.monotonic()`` at which the repair began (the fault's end: the broker, server or process being started
again). The runner checks the stack is healthy, starts the raw-topic reader and the load, waits ``lead``
seconds, runs the fault, keeps the load on for ``tail`` seconds, then waits for the pipeline to settle and
counts (see :mod:`drills.report`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiokafka.errors import KafkaError

from drills import observe
from drills.load import Load, Rates
from drills.report import DrillOutcome, Figure, Observed, figures, loss_window
from drills.stack import DrillStack
from leadline_shared import kafka

QUIET_S = 10.0

Fault = Callable[[DrillStack, float], Awaitable[float]]


@dataclass(frozen=True)
class Settings:
    """How long each phase lasts and how hard the load pushes."""

    duration: float = 60.0  # how long Kafka stays down (and the spool full)
    lead: float = 5.0  # seconds of load before the fault
    tail: float = 20.0  # seconds of load after the fault's end
    settle: float = 120.0  # at most this long waiting for the pipeline to catch up (and again to go quiet)
    rates: Rates = field(default_factory=Rates)


async def _kafka_outage(stack: DrillStack, duration: float) -> float:
    await asyncio.to_thread(stack.stop_kafka)
    await asyncio.sleep(duration)
    back = time.monotonic()
    await asyncio.to_thread(stack.start_kafka)
    return back


def _killer(name: str) -> Fault:
    async def fault(stack: DrillStack, duration: float) -> float:
        await asyncio.to_thread(stack.kill, name)
        back = time.monotonic()
        await asyncio.to_thread(stack.start_service, name)
        return back

    return fault


async def _postgres_restart(stack: DrillStack, duration: float) -> float:
    await asyncio.to_thread(stack.stop_postgres)
    back = time.monotonic()
    await asyncio.to_thread(stack.start_postgres)
    return back


async def _spool_full(stack: DrillStack, duration: float) -> float:
    """Kafka down long enough for the small spool to fill; see :meth:`DrillStack.small_spool`."""
    return await _kafka_outage(stack, duration)


async def _spool_remedy(stack: DrillStack, obs: Observed, settle: float) -> None:
    """If the spool still holds events once the pipeline is quiet, do what the runbook says (give the spool
    room, restart the collector) and note how long the rest then takes to arrive."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        waiting = await observe.spool_records(http, stack.collector_url)
    missing_forms = sum(1 for f in obs.answered_forms if f not in obs.raw)
    missing_pixels = sum(1 for p in obs.answered_pixels if p not in obs.raw)
    obs.extra += [
        Figure("events left in the spool once the pipeline was quiet", waiting, "count", "0"),
        Figure("forms acknowledged but not in Kafka at that time", missing_forms, "count", "0"),
        Figure("pixels answered but not in Kafka at that time", missing_pixels, "count"),
    ]
    if not waiting:
        return
    obs.notes.append(
        f"Once Kafka was back and the pipeline quiet, {waiting:.0f} events (of them {missing_forms} acknowledged "
        "forms) were still in the spool: it did not drain by itself. The runbook's remedy (give the spool's "
        "volume room, restart the collector) was applied; the figures above count what arrived after it."
    )
    started = time.monotonic()
    how = await asyncio.to_thread(stack.grow_spool)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        while time.monotonic() - started < settle:
            if await observe.spool_records(http, stack.collector_url) == 0:
                obs.extra.append(
                    Figure(
                        f"spool replayed after the remedy ({how}, restart)", time.monotonic() - started, "s"
                    )
                )
                return
            await asyncio.sleep(0.5)
    obs.extra.append(Figure(f"spool replayed after the remedy ({how}, restart)", None, "s"))


@dataclass(frozen=True)
class Drill:
    """One fault, what the SRE should expect of it, and the guarantee it proves."""

    name: str
    title: str
    text: str
    fault: Fault
    pixel_loss: str = "0"  # what the SRE may expect to lose of the answered pixels
    small_spool: bool = False
    remedy: Callable[[DrillStack, Observed, float], Awaitable[None]] | None = None


DRILLS = (
    Drill(
        "kafka-outage",
        "Kafka down (broker stopped, started again)",
        "The collector keeps answering from its disk spool while the broker is away and replays the spool when "
        "it returns; the enricher and crm-core wait and resume from their committed offsets. Expect no refusal, "
        "no loss, and a backlog that drains within about a minute of the broker's return. Proves: *a form is "
        "durable before its answer* and *a Kafka outage costs no event*.",
        _kafka_outage,
    ),
    Drill(
        "collector-kill",
        "collector SIGKILLed mid-stream (restarted at once)",
        "Requests in flight fail (the client sees a reset) and nothing is answered until the new process "
        "listens. Forms acknowledged before the kill are in Kafka or in the fsync'd spool, which the new process "
        "replays. Pixels are answered before they are durable: those answered in the last moments before the "
        "kill (the spool's group-commit window, milliseconds) may be lost. Proves: *a pixel can be lost only "
        "if the process dies within its spool's commit window*, and forms never.",
        _killer("collector"),
        pixel_loss="only those answered in the spool's commit window",
    ),
    Drill(
        "enricher-kill",
        "enricher SIGKILLed mid-stream (restarted at once)",
        "The collector is not affected. The enricher's uncommitted batch is read again by the new process "
        "(at-least-once); duplicates stop at crm-core, whose touchpoints are keyed by event id. Expect the lag "
        "to drain within seconds of the restart. Proves: *a consumer crash loses nothing and duplicates "
        "nothing downstream*.",
        _killer("enricher"),
    ),
    Drill(
        "crm-core-kill",
        "crm-core SIGKILLed mid-stream (restarted at once)",
        "The collector and the enricher are not affected; crm-core's API and web app are away until it listens "
        "again, and it re-reads the enriched events it had not committed, writing each touchpoint once. "
        "Proves: *ingestion is idempotent across a crash*.",
        _killer("crm-core"),
    ),
    Drill(
        "postgres-restart",
        "PostgreSQL restarted (fast shutdown, started again)",
        "Capture does not depend on PostgreSQL: the collector keeps answering and Kafka buffers. The enricher "
        "and crm-core lose their connections, retry, and catch up once the server is back. Proves: *a database "
        "restart (a failover) delays crm-core but loses nothing*.",
        _postgres_restart,
    ),
    Drill(
        "spool-full",
        "the collector's spool disk full (Kafka down, spool on a tiny filesystem)",
        "When the spool cannot take more, the collector stops acknowledging forms (503: the browser or the "
        "site can retry, nothing acknowledged is lost), reports not-ready so a load balancer can steer away, "
        "and keeps answering pixels while dropping them (counted in leadline_collector_dropped_total). When the "
        "broker returns the spool drains and forms are accepted again. Expect pixels answered while the disk "
        "was full to be lost, and no acknowledged form. Proves: *a full disk never costs an acknowledged form*.",
        _spool_full,
        pixel_loss="those answered while the spool was full",
        small_spool=True,
        remedy=_spool_remedy,
    ),
)
NAMES = tuple(d.name for d in DRILLS)


def select(only: list[str] | None) -> list[Drill]:
    """The drills named (in the standard order), or all; ValueError names an unknown one."""
    if not only:
        return list(DRILLS)
    wanted = {name.strip() for item in only for name in item.split(",") if name.strip()}
    unknown = sorted(wanted - set(NAMES))
    if unknown:
        raise ValueError(f"unknown drill {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    return [d for d in DRILLS if d.name in wanted]


async def run_drill(stack: DrillStack, drill: Drill, settings: Settings, prefix: str) -> DrillOutcome:
    """Heal the stack if needed, run one drill under load and count; never raises for the drill's faults."""
    notes: list[str] = []
    down = await asyncio.to_thread(stack.not_ready)
    if down:
        notes.append(
            f"Before this drill {', '.join(down)} did not answer (left so by the drill before) and was restarted."
        )
        still = await asyncio.to_thread(stack.heal)
        if still:
            return DrillOutcome(
                drill.title, drill.text, error=f"not healthy before the drill: {', '.join(still)}"
            )
    marks = stack.log_marks()
    try:
        if drill.small_spool:
            with stack.small_spool() as how:
                notes.append(f"Spool: {how}.")
                obs = await _under_load(stack, drill, settings, prefix)
        else:
            obs = await _under_load(stack, drill, settings, prefix)
    except Exception as exc:  # the drill's own failure goes into the report; the others still run
        return DrillOutcome(drill.title, drill.text, error=f"{type(exc).__name__}: {exc}")
    notes += obs.notes
    window = loss_window(obs)
    if window is not None:
        notes.append(
            f"The {window[0]} lost pixels were all answered in the {window[1] * 1000:.0f} ms before the kill."
        )
    notes += [
        f'The {name} log says "{msg}" ({count} times).'
        for (name, msg), count in stack.log_findings(marks).items()
    ]
    if obs.caught_up_at is None:
        notes.append(
            f"The backlog the fault left had not drained into crm-core {settings.settle:g} s after the fault."
        )
    down = await asyncio.to_thread(stack.not_ready)
    notes.append(
        f"After the drill: {', '.join(down)} not answering."
        if down
        else "After the drill: every part answers."
    )
    return DrillOutcome(
        drill.title,
        drill.text,
        figures(obs, pixel_loss=drill.pixel_loss),
        notes=" ".join(notes),
    )


async def _under_load(stack: DrillStack, drill: Drill, settings: Settings, prefix: str) -> Observed:
    topics = kafka.Topics.with_prefix("")
    obs = Observed()
    reader = observe.RawReader(stack.bootstrap, topics.raw, prefix, obs)
    await reader.start()
    stop = asyncio.Event()
    load = asyncio.create_task(Load(stack.collector_url, prefix, settings.rates, obs).run(stop))
    try:
        await asyncio.sleep(settings.lead)
        obs.fault_start = time.monotonic()
        obs.fault_end = await drill.fault(stack, settings.duration)
        caught_up = asyncio.create_task(
            observe.wait_caught_up(stack.bootstrap, stack.collector_url, topics, obs, timeout=settings.settle)
        )
        await asyncio.sleep(max(0.0, obs.fault_end + settings.tail - time.monotonic()))
        stop.set()
        await load
        obs.load_end = time.monotonic()
        await caught_up
        await _settle(stack, topics, obs, settings.settle)
        if drill.remedy is not None:
            await drill.remedy(stack, obs, settings.settle)
            await _settle(stack, topics, obs, settings.settle)
        obs.pg = await observe.touchpoints(stack.dsn, prefix)
    finally:
        stop.set()
        await asyncio.gather(load, return_exceptions=True)
        await reader.stop()
    return obs


async def _settle(stack: DrillStack, topics: kafka.Topics, obs: Observed, timeout: float) -> None:
    """Wait (bounded) until the consumers' lag is zero and either every answered event is on the raw topic or
    nothing more has arrived for ``QUIET_S`` seconds (the rest is lost, and counted so)."""
    deadline = time.monotonic() + timeout
    answered = set(obs.answered_pixels) | set(obs.answered_forms)
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum(obs.raw.values())
        if total != seen:
            seen, quiet_since = total, time.monotonic()
        if answered <= obs.raw.keys() or time.monotonic() - quiet_since >= QUIET_S:
            try:
                if await asyncio.wait_for(observe.pipeline_lag(stack.bootstrap, topics), 10.0) == 0:
                    return
            except (KafkaError, OSError, TimeoutError, RuntimeError):
                pass
        await asyncio.sleep(1.0)
