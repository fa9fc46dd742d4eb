"""The collector's app factory: every capture route, the sink, the site configuration, ops endpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from leadline_collector import affiliate, beacon, cors, fastpath, forms, links, pixel, segment, snippet
from leadline_collector.context import proxy_networks, trusted_proxy_middleware
from leadline_collector.demo_page import make_demo_handler
from leadline_collector.httperrors import HANDLER_ARGS, HTTP_METRICS
from leadline_collector.leanpost import LeanPosts
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import Publisher
from leadline_collector.ratelimit import RateLimiter
from leadline_collector.settings import CollectorSettings
from leadline_collector.sink import Sink
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_collector.spool import Spool
from leadline_shared import kafka
from leadline_shared.http import add_check, add_ops_routes
from leadline_shared.signing import KeyRing

log = logging.getLogger(__name__)
SINK = web.AppKey("sink", Sink)
SITES = web.AppKey("sites", SiteConfigStore)
SETTINGS = web.AppKey("settings", CollectorSettings)


def prefixes(settings: CollectorSettings) -> tuple[str, ...]:
    """Path prefixes the capture routes answer under: the root, and the first-party prefix if set."""
    extra = settings.path_prefix.rstrip("/")
    return ("", extra) if extra else ("",)


def create_app(
    settings: CollectorSettings, *, sink: Sink | None = None, sites: SiteConfigStore | None = None
) -> web.Application:
    """Build the collector; the sink and the config follower start in cleanup contexts.

    By default events go to Kafka through the :class:`Publisher` (with its spool), and the site configuration
    follows ``crm.config.v1``. A ``sink`` given here takes the events instead (the app starts and stops it, and
    opens no producer); a ``sites`` store given here is used as it is, already filled, and not followed. With
    both, the app opens no Kafka connection at all: that is how the route tests run without a broker.
    """
    topics = kafka.Topics.with_prefix(settings.topic_prefix)
    metrics = CollectorMetrics.create()
    spool_dir = Path(settings.spool_dir)
    opens_kafka = sink is None or sites is None
    if sink is None:
        sink = Publisher(
            settings.kafka_bootstrap,
            topics.raw,
            Spool(spool_dir / "events", int(settings.spool_max_mb * 1024 * 1024)),
            metrics,
            deadline=settings.publish_timeout,
            linger=settings.linger_ms / 1000,
        )
    keys = KeyRing.parse(settings.link_keys)
    body_limit = settings.body_max_kb * 1024
    app = web.Application(
        client_max_size=max(body_limit, settings.batch_max_kb * 1024), handler_args=HANDLER_ARGS
    )
    app[HTTP_METRICS] = metrics
    proxies = proxy_networks(settings.trusted_proxies)
    if proxies:  # without trusted proxies the routes read the peer, and pay nothing for the option
        app.middlewares.append(trusted_proxy_middleware(proxies))
    add_ops_routes(app, metrics.registry)
    add_check(app, "sink", sink.is_healthy)
    if settings.create_topics and opens_kafka:
        app.cleanup_ctx.append(topics_ctx(settings.kafka_bootstrap, topics, settings.topic_partitions))
    app.cleanup_ctx.append(started_ctx(sink))
    if sites is None:
        sites = SiteConfigStore(settings.kafka_bootstrap, topics.config, spool_dir / "site-config.json")
        app.cleanup_ctx.append(started_ctx(sites))
    app[SETTINGS], app[SINK], app[SITES] = settings, sink, sites
    if not keys:
        log.warning("LEADLINE_LINK_KEYS is empty: email links and open pixels will be refused")

    per_minute = 60.0
    open_handler, click_handler = links.make_handlers(sink, keys, metrics, settings.cookie_domain)
    snip = snippet.load_snippet()
    handlers = {
        ("GET", "/p.gif"): pixel.make_handler(sink, metrics, settings.cookie_domain),
        ("GET", "/o/{token}.gif"): open_handler,
        ("GET", "/c/{token}"): click_handler,
        ("GET", "/a/{affiliate_id}/{ad_id}"): affiliate.make_handler(
            sink, sites, metrics, settings.cookie_domain
        ),
        ("GET", "/a/{affiliate_id}/{ad_id}/i.gif"): affiliate.make_impression_handler(sink, sites, metrics),
        ("POST", "/f/{form_key}"): forms.make_handler(
            sink,
            sites,
            metrics,
            cookie_domain=settings.cookie_domain,
            default_region=settings.phone_region,
            body_limit=body_limit,
            per_ip=RateLimiter(settings.form_rate_per_ip / per_minute, burst=settings.form_rate_per_ip * 2),
            per_form=RateLimiter(
                settings.form_rate_per_form / per_minute, burst=settings.form_rate_per_form / 6
            ),
        ),
        ("POST", "/e"): beacon.make_handler(
            sink,
            metrics,
            cookie_domain=settings.cookie_domain,
            default_region=settings.phone_region,
            body_limit=body_limit,
        ),
        ("POST", "/v1/{call:" + "|".join(segment.CALLS) + "}"): segment.make_handler(
            sink,
            sites,
            metrics,
            default_region=settings.phone_region,
            body_limit=settings.batch_max_kb * 1024,
        ),
        ("GET", "/s.js"): snippet_handler(snip),
        ("GET", "/demo"): make_demo_handler(keys, sites),
    }
    if settings.fast_path:
        fastpath.install(
            app,
            fastpath.FastPath(
                sink,
                metrics,
                keys,
                settings.cookie_domain,
                prefixes(settings),
                trusted_proxies=proxies,
                sites=sites,
                posts=LeanPosts(
                    sink,
                    sites,
                    metrics,
                    settings.phone_region,
                    segment_limit=settings.batch_max_kb * 1024,
                    beacon_limit=body_limit,
                    prefixes=prefixes(settings),
                ),
            ),
        )
    for prefix in prefixes(settings):
        for (method, path), handler in handlers.items():
            if method == "GET":  # GET routes answer HEAD too (link scanners probe with it)
                app.router.add_get(prefix + path, handler)
            else:  # POST routes are called cross-site from customers' pages
                app.router.add_route(method, prefix + path, cors.allow(handler))
                app.router.add_route("OPTIONS", prefix + path, cors.preflight)
    return app


def topics_ctx(
    bootstrap: str, topics: kafka.Topics, partitions: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Create the topics the collector reads and writes, if missing, before anything uses them."""

    async def ensure(app: web.Application) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(kafka.ensure_topics(bootstrap, topics, partitions), 10)
        except Exception:  # Kafka down at start: the spool takes events until it is back
            log.warning("could not check topics: Kafka unreachable; starting with the spool")
        yield

    return ensure


def started_ctx(resource: Sink | SiteConfigStore) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that starts ``resource`` before the app serves and stops it after."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        await resource.start()
        yield
        await resource.stop()

    return run


def snippet_handler(snip: snippet.Snippet) -> pixel.Handler:
    """``GET /s.js``: the capture snippet, cached by ETag."""

    async def serve(request: web.Request) -> web.StreamResponse:
        return snippet.response(request, snip)

    return serve
