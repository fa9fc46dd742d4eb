"""The collector's app factory: routes, the sink, ops endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from leadline_collector import pixel
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.settings import CollectorSettings
from leadline_collector.sink import KafkaSink
from leadline_shared import kafka
from leadline_shared.http import add_check, add_ops_routes

log = logging.getLogger(__name__)
SINK = web.AppKey("sink", KafkaSink)
SETTINGS = web.AppKey("settings", CollectorSettings)


def create_app(settings: CollectorSettings) -> web.Application:
    """Build the collector; Kafka is connected in a cleanup context when the app starts."""
    topics = kafka.Topics.with_prefix(settings.topic_prefix)
    metrics = CollectorMetrics.create()
    sink = KafkaSink(
        settings.kafka_bootstrap, topics.raw, timeout=settings.publish_timeout, linger_ms=settings.linger_ms
    )
    app = web.Application(client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[SINK] = sink
    add_ops_routes(app, metrics.registry)
    add_check(app, "kafka", sink.is_healthy)

    async def sink_ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.create_topics:
            await kafka.ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions)
        await sink.start()
        yield
        await sink.stop()

    app.cleanup_ctx.append(sink_ctx)
    handler = pixel.make_handler(sink, metrics, settings.cookie_domain)
    prefixes = {""} | ({settings.path_prefix.rstrip("/")} if settings.path_prefix else set())
    for prefix in sorted(prefixes):
        app.router.add_get(f"{prefix}/p.gif", handler)
    return app
