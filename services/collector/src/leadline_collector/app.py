"""The collector's app factory: routes, the sink, ops endpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from leadline_collector import pixel
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import Publisher
from leadline_collector.settings import CollectorSettings
from leadline_collector.spool import Spool
from leadline_shared import kafka
from leadline_shared.http import add_check, add_ops_routes

log = logging.getLogger(__name__)
SINK = web.AppKey("sink", Publisher)
SETTINGS = web.AppKey("settings", CollectorSettings)


def create_app(settings: CollectorSettings) -> web.Application:
    """Build the collector; Kafka and the spool are opened in a cleanup context when the app starts."""
    topics = kafka.Topics.with_prefix(settings.topic_prefix)
    metrics = CollectorMetrics.create()
    spool = Spool(Path(settings.spool_dir), settings.spool_max_mb * 1024 * 1024)
    sink = Publisher(
        settings.kafka_bootstrap,
        topics.raw,
        spool,
        metrics,
        deadline=settings.publish_timeout,
        linger=settings.linger_ms / 1000,
    )
    app = web.Application(client_max_size=settings.body_max_kb * 1024)
    app[SETTINGS] = settings
    app[SINK] = sink
    add_ops_routes(app, metrics.registry)
    add_check(app, "sink", sink.is_healthy)

    async def sink_ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.create_topics:
            try:
                await asyncio.wait_for(
                    kafka.ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions), 10
                )
            except Exception:  # Kafka down at start: the spool takes events until it is back
                log.warning("could not check topics: Kafka unreachable; starting with the spool")
        await sink.start()
        yield
        await sink.stop()

    app.cleanup_ctx.append(sink_ctx)
    handler = pixel.make_handler(sink, metrics, settings.cookie_domain)
    prefixes = {""} | ({settings.path_prefix.rstrip("/")} if settings.path_prefix else set())
    for prefix in sorted(prefixes):
        app.router.add_get(f"{prefix}/p.gif", handler)
    return app
