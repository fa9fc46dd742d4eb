"""crm-core's app factory: the REST API, the web app, the ingestion consumer and the outbox relay in one process.

The routes come from the domains, mounted here from one explicit list each (:func:`api`, :func:`pages`);
importing a module registers nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from leadline_crm import (
    admin,
    automation,
    catalog,
    imports,
    marketing,
    outbox,
    people,
    sales,
    service,
    webhooks,
)
from leadline_crm.catalog.links import COLLECTOR_URL, KEYRING
from leadline_crm.http import forwarded, guard, openapi, session, templating, unavailable
from leadline_crm.http import pages as web_pages
from leadline_crm.http.keys import POOL
from leadline_crm.ingest.consumer import Ingestor
from leadline_crm.people import privacy
from leadline_crm.people.persons import PHONE_REGION
from leadline_crm.settings import CrmSettings
from leadline_shared import kafka, pg
from leadline_shared.http import add_check, add_ops_routes
from leadline_shared.service import background, watch_task
from leadline_shared.signing import KeyRing

MIGRATIONS = Path(__file__).parent / "migrations"
TITLE = "Leadline crm-core API"


def api() -> openapi.Registry:
    """Every operation of the REST API, domain by domain: the router, the OpenAPI document and the docs page are
    made from this one list."""
    return openapi.Registry(
        [
            *people.operations(),
            *catalog.operations(),
            *admin.operations(),
            *marketing.operations(),
            *sales.operations(),
            *imports.operations(),
            *service.operations(),
            *webhooks.operations(),
            *automation.operations(),
        ]
    )


def pages() -> list[web.AbstractRouteDef]:
    """Every page of the web app under /app."""
    return [
        *web_pages.session_pages(),
        *people.pages(),
        *admin.pages(),
        *catalog.pages(),
        *marketing.pages(),
        *sales.pages(),
        *imports.pages(),
        *service.pages(),
        *webhooks.pages(),
        *automation.pages(),
    ]


#: The packages whose ``templates/`` folders make the web app's template environment, the layout's first.
TEMPLATE_PACKAGES = (
    "leadline_crm.http",
    "leadline_crm.people",
    "leadline_crm.admin",
    "leadline_crm.catalog",
    "leadline_crm.marketing",
    "leadline_crm.sales",
    "leadline_crm.imports",
    "leadline_crm.service",
    "leadline_crm.webhooks",
    "leadline_crm.automation",
)


def create_app(settings: CrmSettings) -> web.Application:
    """Build crm-core; PostgreSQL and Kafka are opened in cleanup contexts when the app starts."""
    topics = kafka.Topics.with_prefix(settings.topic_prefix)
    registry = CollectorRegistry()
    app = web.Application(
        middlewares=[
            forwarded.middleware(forwarded.proxy_networks(settings.trusted_proxies)),
            templating.security_headers,
            unavailable.database_unavailable,
            guard.api_middleware,
            web_pages.html_errors,
            session.csrf_guard,
        ],
        client_max_size=1024 * 1024,
    )
    app[templating.TEMPLATES] = templating.environment(TEMPLATE_PACKAGES)
    app[KEYRING] = KeyRing.parse(settings.link_keys)
    app[webhooks.SEALER] = webhooks.Sealer.of(settings.webhook_keys)
    app[COLLECTOR_URL] = settings.collector_public_url
    app[PHONE_REGION] = settings.phone_region
    app[privacy.TOPICS] = topics
    app[sales.PURCHASES_RESOURCE] = people.PURCHASES
    add_ops_routes(app, registry)
    operations = api()
    operations.install(app, guard.guard)
    app.router.add_routes(openapi.routes(operations, TITLE))
    app.router.add_routes(pages())

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.migrate_on_start:  # else `leadline migrate` ran first (the Helm chart's hook Job)
            await pg.migrate(settings.dsn, settings.crm_schema, MIGRATIONS)
        pool = await pg.create_pool(settings.dsn, settings.crm_schema)
        app[POOL] = pool
        add_check(app, "postgres", lambda: pg.pool_reachable(pool))
        yield
        await pool.close()

    async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
        """The relay sends what the API owes Kafka; every config entry is owed once more at start-up, so a
        collector whose topic was recreated gets everything back."""
        if settings.create_topics:
            await kafka.ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions)
        pool = app[POOL]
        async with pool.acquire() as conn, conn.transaction():
            entries = await catalog.config_entries(conn)
            await outbox.write(conn, [outbox.config_entry(e) for e in entries])
        relay = outbox.Relay(
            pool, settings.kafka_bootstrap, topics, registry, stale_seconds=settings.outbox_stale_seconds
        )
        add_check(app, "outbox", relay.healthy)
        async with background("outbox", relay.run()) as task:
            add_check(app, "outbox_relay", watch_task("outbox", task))
            yield

    async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
        ingestor = Ingestor(
            bootstrap=settings.kafka_bootstrap,
            topics=topics,
            group_id=settings.group_id,
            pool=app[POOL],
            registry=registry,
            batch_max=settings.batch_max,
        )
        await ingestor.start()
        add_check(app, "kafka", lambda: kafka.broker_reachable(settings.kafka_bootstrap))
        try:
            async with background("ingest", ingestor.run()) as task:
                add_check(app, "ingest", watch_task("ingest", task))
                yield
        finally:
            await ingestor.stop()

    async def automation_ctx(app: web.Application) -> AsyncIterator[None]:
        """The automation loop: each batch of domain events through this explicit list of handlers, then its
        periodic jobs (delayed rule runs, breached cases, the marketing credits queued by ingestion)."""
        rules = automation.Evaluator()
        runner = automation.Runner(
            app[POOL],
            handlers=[rules, webhooks.on_events],
            jobs=[rules.due, automation.breaches, marketing.Refolder(registry)],
        )
        async with background("automation", runner.run()) as task:
            add_check(app, "automation", watch_task("automation", task))
            yield

    async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
        """The webhook dispatcher: sends queued deliveries while this replica leads (one per schema); first, any
        signing secret stored in the clear or under a retired key is sealed under the first key (or start-up
        stops, naming LEADLINE_WEBHOOK_KEYS)."""
        await webhooks.seal_stored(app[POOL], app[webhooks.SEALER])
        dispatcher = webhooks.Dispatcher(app[POOL], registry, sealer=app[webhooks.SEALER])
        async with background("webhooks", dispatcher.run()) as task:
            add_check(app, "webhooks", watch_task("webhooks", task))
            yield

    app.cleanup_ctx.extend([pool_ctx, outbox_ctx, ingest_ctx, automation_ctx, webhooks_ctx])
    return app
