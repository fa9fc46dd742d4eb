"""The enricher's app factory: the consume loop runs beside a small health/metrics server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from leadline_enricher.enrich import EventEnricher
from leadline_enricher.geo import GeoIp
from leadline_enricher.identifiers import IdentifierRules
from leadline_enricher.identity import IdentityGraph
from leadline_enricher.metrics import EnricherMetrics
from leadline_enricher.pipeline import Enricher
from leadline_enricher.settings import EnricherSettings
from leadline_shared import kafka, pg
from leadline_shared.http import add_check, add_ops_routes
from leadline_shared.service import background, watch_task

MIGRATIONS = Path(__file__).parent / "migrations"
ENRICHER = web.AppKey("enricher", Enricher)


def identifier_rules(settings: EnricherSettings) -> IdentifierRules:
    """What counts as an identifier, from the settings."""
    return IdentifierRules.create(settings.identity_blocked, settings.limits, settings.phone_region)


def create_app(settings: EnricherSettings) -> web.Application:
    """Build the enricher; PostgreSQL and Kafka are opened in cleanup contexts when the app starts."""
    topics = kafka.Topics.with_prefix(settings.topic_prefix)
    metrics = EnricherMetrics.create()
    app = web.Application()
    add_ops_routes(app, metrics.registry)

    async def pipeline_ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.migrate_on_start:  # else `leadline migrate` ran first (the Helm chart's hook Job)
            await pg.migrate(settings.dsn, settings.identity_schema, MIGRATIONS)
        if settings.create_topics:
            await kafka.ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions)
        pool = await pg.create_pool(settings.dsn, settings.identity_schema)
        geoip = GeoIp(Path(settings.geoip_db)) if settings.geoip_db else None
        rules = identifier_rules(settings)
        enricher = Enricher(
            bootstrap=settings.kafka_bootstrap,
            topics=topics,
            group_id=settings.group_id,
            transactional_id=f"{settings.group_id}-{settings.replica}",
            pool=pool,
            metrics=metrics,
            batch_max=settings.batch_max,
            kafka_timeout_ms=settings.kafka_timeout_ms,
            rules=rules,
            enricher=EventEnricher(geoip, settings.scanner_seconds, settings.internal_hosts),
            graph=IdentityGraph(rules, settings.identity_cache),
        )
        try:
            await enricher.start()
            app[ENRICHER] = enricher
            add_check(app, "postgres", lambda: pg.pool_reachable(pool))
            add_check(app, "kafka", lambda: kafka.broker_reachable(settings.kafka_bootstrap))
            async with background("enricher", enricher.run()) as task:
                add_check(app, "pipeline", watch_task("enricher", task))
                yield
        finally:
            await enricher.stop()
            await pool.close()
            if geoip is not None:
                geoip.close()

    app.cleanup_ctx.append(pipeline_ctx)
    return app
