"""Send a world (world.py) through the running stack: crm-core's API for what staff type in, the collector for
what browsers, mail systems and the site's backend send.

Idempotent, so ``make demo`` twice makes one world:
- records made through the API are looked up by their natural key first (a user's e-mail, a product's SKU, a
  campaign's name, an ad's id, a lead's e-mail (the API's 409 names the existing person), an e-mail send's
  campaign and person, an activity's person, kind and time, a purchase's person, product and date, feedback's
  person and text);
- events carry ids derived from the seed (the snippet's item ids, pixel ``eid``, Segment ``messageId``, forms'
  ``Idempotency-Key``), and crm-core stores an event id once;
- ad clicks and e-mail opens and clicks get a new id from the collector on every hit, so each step of traffic
  is recorded as done in the Segment write key's settings (``settings.demo[seed]``) and not sent again: a
  second run skips it, an interrupted run resumes at the first step not done (a "top-up").

Timestamps: snippet items (``ts``), Segment messages (``timestamp``), activities (``at``), purchases
(``purchased_on``) and e-mail sends (``sent_at``) are spread over the 30 days before the world's anchor day.
The collector stamps ad clicks, e-mail opens and clicks, HTML form posts and pixel hits with the time it
receives them (a client cannot backdate them), so those happen "today", while the demo runs: today's ad
traffic and its quote requests, the e-mail engagement of the month's two campaigns, today's contact forms.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leadline_localstack.demo import automation, sales, service, webhooks
from leadline_localstack.demo import world as w
from leadline_localstack.demo.http import Api, Browser, Collector, DemoError

T = TypeVar("T")
STEPS = ("month", "today-web", "ad-impressions", "email-people", "email-machines")
"""Traffic steps, recorded in the write key's settings once sent (the API steps look their records up)."""


@dataclass(frozen=True)
class Target:
    """Where the stack answers, and the admin token."""

    collector_url: str
    crm_url: str
    token: str
    concurrency: int = 8
    wait_seconds: float = 180.0


@dataclass
class Report:
    """What a run did: the steps sent and skipped, and what the API then holds."""

    seed: int
    scale: float
    anchor: str
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    proxy_trusted: bool | None = None
    seconds: float = 0.0
    world: dict[str, int] = field(default_factory=dict)
    """What the world holds (World.summary)."""
    counts: dict[str, Any] = field(default_factory=dict)
    """What crm-core holds after the run, whoever else put it there (:func:`counts`)."""
    service: dict[str, int] = field(default_factory=dict)
    """What the service desk's step created (demo/service.py): articles, contracts, cases, comments, moves."""
    sales: dict[str, int] = field(default_factory=dict)
    """What the sales step created or changed (demo/sales.py): companies, links, owners, deals, moves, tasks."""


class Steps:
    """The progress bar on a terminal, one line per step elsewhere (logs, tests)."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        )

    def say(self, text: str) -> None:
        if not self.quiet:
            self.progress.console.print(text)

    @contextmanager
    def step(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        started = time.monotonic()
        task = self.progress.add_task(name, total=max(total, 1))

        def tick(n: int) -> None:
            self.progress.advance(task, n)

        yield tick
        self.progress.update(task, completed=max(total, 1))
        if self.progress.disable:
            self.say(f"  {name}: {total} in {time.monotonic() - started:.1f}s")


def impressions(seed: int, world: w.World) -> list[tuple[Browser, str, str]]:
    """Today's impressions of every ad: 10 to 30 per click it got, at least 10 (a click-through rate of 3-10 %),
    from browsers of the day's visitors but without their cookies: a view on another site is nobody's visit."""
    clicks = Counter((c.affiliate.affiliate_id, c.ad.ad_id) for c in world.ad_clicks)
    out: list[tuple[Browser, str, str]] = []
    for affiliate in w.AFFILIATES:
        for ad in affiliate.ads:
            r = w.rng(seed, "impressions", affiliate.affiliate_id, ad.ad_id)
            for _ in range(max(clicks[affiliate.affiliate_id, ad.ad_id], 1) * r.randint(10, 30)):
                v = world.ad_clicks[r.randrange(len(world.ad_clicks))].visitor
                browser = Browser(v.user_agent, None, v.ip, v.country.locale)
                out.append((browser, affiliate.affiliate_id, ad.ad_id))
    return out


async def bounded(limit: int, jobs: Iterable[Awaitable[T]], done: Callable[[int], None]) -> list[T]:
    """Run ``jobs`` with at most ``limit`` at a time, ticking ``done`` as each finishes; in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            result = await job
        done(1)
        return result

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


class Demo:
    """One run of one world against one stack."""

    def __init__(self, target: Target, seed: int, scale: float, steps: Steps) -> None:
        self.target, self.seed, self.scale, self.steps = target, seed, scale, steps
        self.ids: dict[str, dict[str, str]] = {}  # kind -> natural key -> API id
        self.persons: dict[str, str] = {}  # e-mail -> person id
        self.links: dict[str, str] = {}  # send id -> signed link token

    # --- the marker -------------------------------------------------------------------------------------------
    async def marker(self, api: Api) -> dict[str, Any]:
        source = await api.get(f"/api/v1/sources/{w.WRITE_KEY}")
        settings = source.get("settings", {}) if source else {}
        mine: dict[str, Any] = settings.get("demo", {}).get(str(self.seed), {})
        return mine

    async def record(self, api: Api, **changes: Any) -> None:
        """Note in the write key's settings what this seed's world has had sent."""
        source = await api.get(f"/api/v1/sources/{w.WRITE_KEY}")
        settings = dict(source.get("settings", {}) if source else {})
        demo = dict(settings.get("demo", {}))
        demo[str(self.seed)] = {**demo.get(str(self.seed), {}), **changes}
        await api.patch(f"/api/v1/sources/{w.WRITE_KEY}", {"settings": {**settings, "demo": demo}})

    # --- what staff set up through the API ---------------------------------------------------------------------
    async def catalog(self, api: Api, world: w.World) -> None:
        """Users, products, campaigns, affiliates and their ads, forms and the write key (looked up first)."""
        todo = 6 + sum(len(a.ads) for a in w.AFFILIATES) + len(w.AFFILIATES) + len(w.FORMS)
        with self.steps.step("staff, catalog, campaigns, forms", todo) as tick:
            users = {u["email"]: u["id"] for u in await api.all("/api/v1/users")}
            for user in w.USERS:
                if user.email not in users:
                    created = await api.create(
                        "/api/v1/users", {"email": user.email, "name": user.name, "role": user.role}
                    )
                    users[user.email] = created["id"]
            self.ids["user"] = users
            tick(1)
            products = {p["sku"]: p["id"] for p in await api.all("/api/v1/products")}
            for product in w.PRODUCTS:
                if product.sku not in products:
                    body = {
                        "sku": product.sku,
                        "name": product.name,
                        "list_price": product.list_price,
                        "currency": "USD",
                        "info": product.info,
                    }
                    products[product.sku] = (await api.create("/api/v1/products", body))["id"]
            self.ids["product"] = products
            tick(1)
            campaigns = {c["name"]: c["id"] for c in await api.all("/api/v1/campaigns")}
            for campaign in w.CAMPAIGNS:
                if campaign.name not in campaigns:
                    starts = (world.anchor - timedelta(days=campaign.starts_days_ago)).date()
                    body = {
                        "name": campaign.name,
                        "channel": campaign.channel,
                        "landing_url": campaign.landing_url,
                        "starts_on": starts.isoformat(),
                        "ends_on": (starts + timedelta(days=campaign.runs_days)).isoformat(),
                    }
                    campaigns[campaign.name] = (await api.create("/api/v1/campaigns", body))["id"]
            self.ids["campaign"] = campaigns
            tick(1)
            for affiliate in w.AFFILIATES:
                if await api.get(f"/api/v1/affiliates/{affiliate.affiliate_id}") is None:
                    await api.create(
                        "/api/v1/affiliates",
                        {
                            "affiliate_id": affiliate.affiliate_id,
                            "name": affiliate.name,
                            "landing_url": affiliate.landing_url,
                            "contact_email": affiliate.contact_email,
                        },
                    )
                tick(1)
                ads = {a["ad_id"] for a in await api.all("/api/v1/ads", affiliate_id=affiliate.affiliate_id)}
                for ad in affiliate.ads:
                    if ad.ad_id not in ads:
                        await api.create(
                            "/api/v1/ads",
                            {
                                "affiliate_id": affiliate.affiliate_id,
                                "ad_id": ad.ad_id,
                                "name": ad.name,
                                "landing_url": ad.landing_url,
                                "campaign_id": campaigns[ad.campaign],
                                "creative": {"format": "link" if "episode" in ad.ad_id else "banner"},
                            },
                        )
                    tick(1)
            for form in w.FORMS:
                if await api.get(f"/api/v1/forms/{form.key}") is None:
                    await api.create(
                        "/api/v1/forms",
                        {
                            "key": form.key,
                            "name": form.name,
                            "fields": list(form.fields),
                            "required": list(form.required),
                            "allowed_origins": [w.SITE],
                            "thank_you_url": form.thank_you_url,
                        },
                    )
                tick(1)
            if await api.get(f"/api/v1/sources/{w.WRITE_KEY}") is None:
                await api.create(
                    "/api/v1/sources",
                    {"write_key": w.WRITE_KEY, "name": "Savings calculator app", "settings": {}},
                )
            tick(3)

    # --- the month: the snippet's page views and sign-ups, crawlers, the app's Segment calls ---------------------
    async def month(self, collector: Collector, api: Api, world: w.World, report: Report) -> None:
        sessions = [(v, k, s) for v in world.visitors for k, s in enumerate(v.sessions)]
        app_users = [v for v in world.visitors if v.app_user]
        with self.steps.step("a month of visits (snippet)", len(sessions) + len(world.crawler_views)) as tick:
            first = world.visitors[0]
            await self.session(collector, world, first, 0, first.sessions[0])
            report.proxy_trusted = await self.proxy_trusted(api, first)
            if not report.proxy_trusted:
                self.steps.say(
                    "  note: the collector does not believe X-Forwarded-For from this machine"
                    " (LEADLINE_TRUSTED_PROXIES), so every visitor is stored with the demo's own address and forms"
                    " are rate-limited per address; start the stack with LEADLINE_TRUSTED_PROXIES=127.0.0.1/32"
                    " to see visitors from several countries"
                )
            tick(1)
            await bounded(
                self.target.concurrency,
                (self.session(collector, world, v, k, s) for v, k, s in sessions[1:]),
                tick,
            )
            await bounded(
                self.target.concurrency,
                (
                    collector.beacon(
                        Browser(agent, cookie, "66.249.66.1"), [_view_item(view)], w.iso(view.at)
                    )
                    for agent, cookie, view in world.crawler_views
                ),
                tick,
            )
        with self.steps.step("the app's Segment calls", len(app_users)) as tick:
            batches = [app_user_messages(self.seed, v) for v in app_users]
            for start in range(0, len(batches), 20):
                chunk = [m for b in batches[start : start + 20] for m in b]
                await collector.segment_batch(w.WRITE_KEY, chunk, w.iso(max(_at(m) for m in chunk)))
                tick(len(batches[start : start + 20]))

    async def session(
        self, collector: Collector, world: w.World, v: w.Visitor, k: int, views: list[w.PageView]
    ) -> None:
        items = [_view_item(view) for view in views]
        last = views[-1]
        if v.newsletter_at is not None and k == len(v.sessions) - 1 and v.person is not None:
            items.append(
                {
                    "type": "form_submit",
                    "id": w.stable_id(self.seed, "newsletter", v.n),
                    "url": last.url,
                    "title": last.title,
                    "ts": w.iso(v.newsletter_at),
                    "form": {
                        "id": "newsletter",
                        "fields": {
                            "email": v.person.email,
                            "name": v.person.name,
                            "country": v.person.country,
                            "consent_marketing": True,
                        },
                    },
                }
            )
        browser = Browser(v.user_agent, v.cookie, v.ip, v.country.locale)
        await collector.beacon(browser, items, items[-1]["ts"])

    async def proxy_trusted(self, api: Api, v: w.Visitor) -> bool:
        """Whether the collector stored the first visitor's forwarded address (it trusts this machine as a proxy);
        also proves the pipeline flows before thousands of events follow."""
        deadline = time.monotonic() + self.target.wait_seconds
        while time.monotonic() < deadline:
            page = await api.get("/api/v1/events", anon_id=v.cookie, limit="1")
            if page and page["items"]:
                return bool(page["items"][0].get("context", {}).get("ip") == v.ip)
            await asyncio.sleep(0.5)
        raise DemoError(
            f"the first page view did not reach crm-core within {self.target.wait_seconds:.0f}s: are the"
            " enricher and crm-core running (make status, make logs)?"
        )

    # --- what reps type in ---------------------------------------------------------------------------------------
    async def rep_leads(self, api: Api, world: w.World) -> None:
        with self.steps.step("leads typed in by reps", len(world.rep_leads)) as tick:
            for lead in world.rep_leads:
                p = lead.person
                body = {
                    "first_name": p.first_name,
                    "last_name": p.last_name,
                    "email": p.email,
                    "phone": p.phone,
                    "city": p.city,
                    "region": p.region,
                    "country": p.country,
                    "source": f"{lead.source} ({lead.rep.name})",
                    **({"company": p.company} if p.company else {}),
                }
                status, doc = await api.call("POST", "/api/v1/leads", body)
                if status == 201:
                    self.persons[p.email] = doc["id"]
                elif status == 409 and isinstance(doc, dict) and doc.get("existing_person_id"):
                    self.persons[p.email] = doc["existing_person_id"]
                else:
                    raise DemoError(f"POST /api/v1/leads: {status} {doc}")
                tick(1)

    async def await_persons(self, api: Api, emails: list[str], what: str) -> None:
        """Wait until crm-core holds a person for each e-mail (the pipeline is asynchronous)."""
        missing = [e for e in emails if e not in self.persons]
        with self.steps.step(what, len(missing)) as tick:
            deadline = time.monotonic() + self.target.wait_seconds
            while missing:
                found = await bounded(
                    self.target.concurrency, (self.person_of(api, e) for e in missing), lambda n: None
                )
                tick(sum(1 for f in found if f))
                missing = [e for e, f in zip(missing, found, strict=True) if not f]
                if missing and time.monotonic() > deadline:
                    raise DemoError(
                        f"{len(missing)} people (e.g. {missing[0]}) did not reach crm-core within"
                        f" {self.target.wait_seconds:.0f}s; see make logs"
                    )
                if missing:
                    await asyncio.sleep(1.0)

    async def person_of(self, api: Api, email: str) -> str | None:
        page = await api.get("/api/v1/persons", email=email)
        if page and page["items"]:
            self.persons[email] = page["items"][0]["id"]
            return str(page["items"][0]["id"])
        return None

    # --- e-mail ---------------------------------------------------------------------------------------------------
    async def email_sends(self, api: Api, world: w.World, links: bool) -> None:
        """The send records (looked up by campaign and person) and, with ``links``, a signed link for each send
        that anyone (or any machine) opens or clicks."""
        by_campaign: dict[str, dict[str, str]] = {}
        for name in {s.campaign for s in world.sends}:
            campaign = self.ids["campaign"][name]
            sends = await api.all("/api/v1/email_sends", campaign_id=campaign)
            by_campaign[name] = {s["person_id"]: s["id"] for s in sends if s["person_id"]}
        sends_ids: dict[str, str] = {}

        async def one(send: w.EmailSend) -> None:
            assert send.visitor.person is not None
            person = self.persons[send.visitor.person.email]
            known = by_campaign[send.campaign]
            if person not in known:
                body = {
                    "campaign_id": self.ids["campaign"][send.campaign],
                    "person_id": person,
                    "subject": send.subject,
                    "sent_at": send.sent_at.isoformat(),
                }
                known[person] = (await api.create("/api/v1/email_sends", body))["id"]
            sends_ids[send.send_id] = known[person]
            if links and (send.opens or send.clicks or send.image_proxy or send.scanner):
                campaign = next(c for c in w.CAMPAIGNS if c.name == send.campaign)
                sep = "&" if "?" in campaign.landing_url else "?"
                target = f"{campaign.landing_url}{sep}utm_source=newsletter&utm_medium=email&utm_campaign="
                link = await api.create(
                    "/api/v1/links",
                    {
                        "target": target + _slug(send.campaign),
                        "campaign_id": self.ids["campaign"][send.campaign],
                        "send_id": known[person],
                        "recipient_token": send.recipient_token,
                        "ttl_days": 60,
                    },
                )
                # its click_url and open_url are /c/{token} and /o/{token}.gif under the collector's public URL;
                # the demo calls those routes at --collector-url, which is where it reaches the collector
                self.links[send.send_id] = link["token"]

        with self.steps.step("e-mail sends and signed links", len(world.sends)) as tick:
            await bounded(self.target.concurrency, (one(s) for s in world.sends), tick)

    async def email_people(self, collector: Collector, world: w.World) -> None:
        """Recipients open (webmail, in the browser that carries their cookie) and click."""
        engaged = [s for s in world.sends if s.opens or s.clicks]

        async def one(send: w.EmailSend) -> None:
            v = send.visitor
            browser = Browser(v.user_agent, v.cookie, v.ip, v.country.locale)
            for _ in range(send.opens):
                await collector.open(browser, self.links[send.send_id])
            for _ in range(send.clicks):
                await collector.click(browser, self.links[send.send_id])

        with self.steps.step("e-mail opens and clicks", len(engaged)) as tick:
            await bounded(self.target.concurrency, (one(s) for s in engaged), tick)

    async def await_engagement(self, api: Api, world: w.World) -> None:
        """Wait until the recipients' own opens and clicks are stored: only then does the identity graph know
        their recipient tokens, and a scanner's hit (which never identifies anyone) lands on the right person."""
        waiting = {
            s.visitor.cookie for s in world.sends if (s.opens or s.clicks) and (s.image_proxy or s.scanner)
        }
        with self.steps.step("waiting for the pipeline", len(waiting)) as tick:
            deadline = time.monotonic() + self.target.wait_seconds
            while waiting:
                for cookie in list(waiting):
                    page = await api.get("/api/v1/events", anon_id=cookie, limit="5")
                    if page and any(e.get("source") == "link" for e in page["items"]):
                        waiting.discard(cookie)
                        tick(1)
                if waiting and time.monotonic() > deadline:
                    raise DemoError(
                        f"{len(waiting)} recipients' e-mail events did not reach crm-core in time"
                    )
                if waiting:
                    await asyncio.sleep(1.0)

    async def email_machines(self, collector: Collector, world: w.World) -> None:
        """Image proxies fetch the open pixel; link scanners probe the link (HEAD, then GET) with no cookie."""
        machines = [s for s in world.sends if s.image_proxy or s.scanner]

        async def one(send: w.EmailSend) -> None:
            if send.image_proxy:
                await collector.open(Browser(w.IMAGE_PROXY, None, "66.102.8.10"), self.links[send.send_id])
            if send.scanner:
                scanner = Browser(send.scanner, None, "52.100.1.20")
                await collector.click(scanner, self.links[send.send_id], "HEAD")
                await collector.click(scanner, self.links[send.send_id])

        with self.steps.step("image proxies and link scanners", len(machines)) as tick:
            await bounded(self.target.concurrency, (one(s) for s in machines), tick)

    # --- today's web traffic: ad clicks, quote and contact forms, no-JavaScript page views ------------------------
    async def today_web(self, collector: Collector, world: w.World) -> None:
        total = len(world.ad_clicks) + len(world.contact_posts) + len(world.pixel_views)
        with self.steps.step("today: ads, forms, pixel views", total) as tick:
            await bounded(
                self.target.concurrency, (self.ad_visit(collector, c) for c in world.ad_clicks), tick
            )
            await bounded(
                self.target.concurrency, (self.contact(collector, v) for v in world.contact_posts), tick
            )
            await bounded(
                self.target.concurrency,
                (
                    collector.pixel(
                        Browser(v.user_agent, v.cookie, v.ip, v.country.locale),
                        {"url": w.SITE + path, "title": dict(w.PAGES)[path], "eid": eid},
                    )
                    for v, path, eid in world.pixel_views
                ),
                tick,
            )

    async def ad_impressions(self, collector: Collector, world: w.World) -> None:
        """Today's views of the ads on the affiliates' sites, after the clicks (the collector knows the ads by
        then): the ads report's impressions and click-through rate."""
        shown = impressions(self.seed, world)
        with self.steps.step("today: ad impressions", len(shown)) as tick:
            await bounded(
                self.target.concurrency, (collector.impression(b, aff, ad) for b, aff, ad in shown), tick
            )

    async def ad_visit(self, collector: Collector, c: w.AdClick) -> None:
        v = c.visitor
        browser = Browser(v.user_agent, v.cookie, v.ip, v.country.locale)
        landing = await collector.ad_click(browser, c.affiliate.affiliate_id, c.ad.ad_id, c.sub_id)
        now = datetime.now(UTC)
        item = {
            "type": "page_view",
            "id": w.stable_id(self.seed, "ad-landing", v.n),
            "url": landing,
            "ref": c.affiliate.landing_url,
            "title": "Sunridge Solar",
            "ts": w.iso(now),
        }
        await collector.beacon(browser, [item], w.iso(now))
        if c.converts and v.person is not None:
            quote = w.FORMS[1]
            await collector.form(
                browser,
                quote.key,
                _form_fields(quote, v.person),
                quote.page,
                w.SITE,
                w.stable_id(self.seed, "quote", v.n),
            )

    async def contact(self, collector: Collector, v: w.Visitor) -> None:
        assert v.person is not None
        form = w.FORMS[0]
        browser = Browser(v.user_agent, v.cookie, v.ip, v.country.locale)
        await collector.form(
            browser,
            form.key,
            _form_fields(form, v.person),
            form.page,
            w.SITE,
            w.stable_id(self.seed, "contact", v.n),
        )

    # --- the reps' month: activities, purchases, feedback ---------------------------------------------------------
    async def rep_work(self, api: Api, world: w.World) -> None:
        emails = sorted({a.email for a in world.activities} | {p.email for p in world.purchases})
        emails += sorted({f.email for f in world.feedback} - set(emails))
        await bounded(self.target.concurrency, (self.person_of(api, e) for e in emails), lambda n: None)
        users, products = self.ids["user"], self.ids["product"]
        done_activities = {
            (a["person_id"], a["kind"], datetime.fromisoformat(a["at"]))
            for a in await api.all("/api/v1/activities")
        }
        done_purchases = {
            (p["person_id"], p["product_id"], p["purchased_on"]) for p in await api.all("/api/v1/purchases")
        }
        done_feedback = {(f["person_id"], f["text"]) for f in await api.all("/api/v1/feedback")}
        total = len(world.activities) + len(world.purchases) + len(world.feedback)
        with self.steps.step("reps' calls, visits, sales, feedback", total) as tick:
            for a in world.activities:
                person = self.persons[a.email]
                if (person, a.kind, a.at) not in done_activities:
                    body: dict[str, Any] = {
                        "person_id": person,
                        "kind": a.kind,
                        "rep_id": users[a.rep.email],
                        "at": a.at.isoformat(),
                        "notes": a.notes,
                        **({"outcome": a.outcome} if a.outcome else {}),
                    }
                    await api.create("/api/v1/activities", body)
                tick(1)
            for p in world.purchases:
                person, product = self.persons[p.email], products[p.sku]
                if (person, product, p.purchased_on.isoformat()) not in done_purchases:
                    body = {
                        "person_id": person,
                        "product_id": product,
                        "quantity": p.quantity,
                        "purchased_on": p.purchased_on.isoformat(),
                        "sales_rep": users[p.rep.email],
                        "price_paid": p.price_paid,
                        **(
                            {"special_instructions": p.special_instructions} if p.special_instructions else {}
                        ),
                    }
                    await api.create("/api/v1/purchases", body)
                tick(1)
            for f in world.feedback:
                person = self.persons[f.email]
                if (person, f.text) not in done_feedback:
                    await api.create(
                        "/api/v1/feedback", {"person_id": person, "rating": f.rating, "text": f.text}
                    )
                tick(1)

    # --- the whole run ----------------------------------------------------------------------------------------------
    async def run(self) -> Report:
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=self.target.concurrency * 2)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        ) as session:
            api = Api(session, self.target.crm_url, self.target.token)
            collector = Collector(session, self.target.collector_url)
            await api.get("/api/v1/scoring")  # the token works and crm-core answers
            marker = await self.marker(api)
            scale = float(marker.get("scale", self.scale))
            if marker and marker.get("version") != w.WORLD_VERSION:
                raise DemoError(
                    f"seed {self.seed}'s world on this stack was made by another version of leadline demo (world"
                    f" version {marker.get('version', 0)}, this one makes {w.WORLD_VERSION}); topping it up would"
                    " mix two worlds: choose another --seed"
                )
            if scale != self.scale:
                raise DemoError(
                    f"seed {self.seed}'s world was made at --scale {scale:g}; run again with --scale {scale:g}"
                    f" (to top it up) or choose another --seed"
                )
            anchor = w.anchor_of(
                date.fromisoformat(marker["anchor"]) if "anchor" in marker else datetime.now(UTC).date()
            )
            world = w.make_world(self.seed, self.scale, anchor)
            report = Report(self.seed, self.scale, anchor.date().isoformat(), world=world.summary())
            self.steps.say(
                f"Sunridge Solar, seed {self.seed}, scale {self.scale:g}: {world.summary()['visitors']} visitors,"
                f" the 30 days before {anchor.date().isoformat()}"
            )
            await self.catalog(api, world)
            await self.record(
                api, scale=self.scale, anchor=anchor.date().isoformat(), version=w.WORLD_VERSION
            )
            done = set(marker.get("done", []))

            async def traffic(name: str, send: Callable[[], Awaitable[None]]) -> None:
                if name in done:
                    report.skipped.append(name)
                    return
                await send()
                done.add(name)
                report.sent.append(name)
                await self.record(api, done=sorted(done))

            await traffic("month", lambda: self.month(collector, api, world, report))
            await self.rep_leads(api, world)
            audience = sorted({s.visitor.person.email for s in world.sends if s.visitor.person})
            workers = {a.email for a in world.activities} | {p.email for p in world.purchases}
            await self.await_persons(api, sorted(set(audience) | workers), "waiting for the month's leads")
            await traffic("today-web", lambda: self.today_web(collector, world))
            await traffic("ad-impressions", lambda: self.ad_impressions(collector, world))
            await self.email_sends(api, world, links=not {"email-people", "email-machines"} <= done)
            await traffic("email-people", lambda: self.email_people(collector, world))
            if "email-machines" not in done:
                await self.await_engagement(api, world)
            await traffic("email-machines", lambda: self.email_machines(collector, world))
            await self.rep_work(api, world)
            with self.steps.step("service desk: articles, contracts, cases", len(service.ARTICLES)):
                report.service = await service.make(api, world, self.persons, self.ids)
                report.service |= await service.support_form(api, collector, world, self.seed)
            with self.steps.step("sales: companies, owners, deals, tasks", len(sales.deals(world))):
                report.sales = await sales.make(api, world, self.persons, self.ids, datetime.now(UTC))
            with self.steps.step("webhooks: a subscription (disabled)", 1):
                await webhooks.make(api)
            today = [c.visitor.person.email for c in world.ad_clicks if c.converts and c.visitor.person]
            today += [v.person.email for v in world.contact_posts if v.person]
            await self.await_persons(api, today, "waiting for today's form leads")  # so the counts hold them
            report.counts = await counts(api)
            # after the counts: the rules act on what comes next, not on the world the counts describe
            with self.steps.step("automation: workflow rules", 3):
                await automation.make(api)
        report.seconds = time.monotonic() - started
        return report


def app_user_messages(seed: int, v: w.Visitor) -> list[dict[str, Any]]:
    """What the savings calculator's backend tells Segment about one user: who they are, what they did."""
    assert v.person is not None
    p = v.person
    r = w.rng(seed, "app", v.n)
    start = v.sessions[-1][0].at + timedelta(minutes=r.randrange(1, 20))
    context = {"ip": v.ip, "userAgent": v.user_agent, "locale": v.country.locale}
    user_id = f"u-{w.token(seed, 'user', v.n)}"
    base = {"userId": user_id, "anonymousId": v.cookie, "context": context}
    traits = {
        "email": p.email,
        "firstName": p.first_name,
        "lastName": p.last_name,
        "phone": p.phone,
        "address": {
            "street": p.street,
            "city": p.city,
            "state": p.region,
            "postalCode": p.postal_code,
            "country": p.country,
        },
        **({"company": {"name": p.company}} if p.company else {}),
    }
    messages: list[dict[str, Any]] = [
        {
            **base,
            "type": "identify",
            "traits": traits,
            "timestamp": w.iso(start),
            "messageId": f"{user_id}-identify",
        }
    ]
    at = start
    for i in range(1 + r.randrange(4)):
        at += timedelta(minutes=r.randrange(1, 90))
        kwh = r.randrange(2800, 9000)
        messages.append(
            {
                **base,
                "type": "track",
                "event": "Savings Calculated",
                "properties": {"annual_kwh": kwh, "roof_m2": r.randrange(18, 90), "estimate_usd": kwh // 7},
                "timestamp": w.iso(at),
                "messageId": f"{user_id}-calc-{i}",
            }
        )
        messages.append(
            {
                **base,
                "type": "page",
                "name": "Calculator results",
                "properties": {"url": f"{w.SITE}/app/results", "title": "Your savings | Sunridge Solar"},
                "timestamp": w.iso(at + timedelta(seconds=5)),
                "messageId": f"{user_id}-page-{i}",
            }
        )
    return messages


def _at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(message["timestamp"]))


def _view_item(view: w.PageView) -> dict[str, Any]:
    item = {
        "type": "page_view",
        "id": view.event_id,
        "url": view.url,
        "title": view.title,
        "ts": w.iso(view.at),
    }
    if view.referrer:
        item["ref"] = view.referrer
    return item


def _form_fields(form: w.Form, p: w.Person) -> dict[str, str]:
    values = {
        "email": p.email,
        "name": p.name,
        "phone": p.phone,
        "company": p.company or "",
        "street": p.street,
        "city": p.city,
        "postal_code": p.postal_code,
        "country": p.country,
        "message": "Could you check whether my roof suits panels and a battery?",
    }
    return {k: values[k] for k in form.fields if values.get(k)} | {"consent_marketing": "yes"}


async def counts(api: Api) -> dict[str, Any]:
    """What crm-core holds after the run (the report and the tests read these)."""
    persons = await api.all("/api/v1/persons")
    stages: dict[str, int] = {}
    for p in persons:
        stages[p["stage"]] = stages.get(p["stage"], 0) + 1
    purchases = await api.all("/api/v1/purchases")
    cases = await api.all("/api/v1/cases")
    case_statuses: dict[str, int] = {}
    for c in cases:
        case_statuses[c["status"]] = case_statuses.get(c["status"], 0) + 1
    deal_stages: dict[str, int] = {}
    for d in await api.all("/api/v1/deals"):
        deal_stages[d["stage"]] = deal_stages.get(d["stage"], 0) + 1
    return {
        "known_persons": len(persons),
        "stages": dict(sorted(stages.items())),
        "users": len(await api.all("/api/v1/users")),
        "products": len(await api.all("/api/v1/products")),
        "campaigns": len(await api.all("/api/v1/campaigns")),
        "affiliates": len(await api.all("/api/v1/affiliates")),
        "ads": len(await api.all("/api/v1/ads")),
        "forms": len(await api.all("/api/v1/forms")),
        "email_sends": len(await api.all("/api/v1/email_sends")),
        "activities": len(await api.all("/api/v1/activities")),
        "purchases": len(purchases),
        "purchase_reps": len({p["sales_rep"] for p in purchases if p["sales_rep"]}),
        "feedback": len(await api.all("/api/v1/feedback")),
        "kb_articles": len(await api.all("/api/v1/kb/articles")),
        "contracts": len(await api.all("/api/v1/contracts")),
        "cases": len(cases),
        "case_statuses": dict(sorted(case_statuses.items())),
        "companies": len(await api.all("/api/v1/companies")),
        "deal_stages": dict(sorted(deal_stages.items())),
        "tasks": len(await api.all("/api/v1/tasks")),
        "owned_persons": sum(1 for p in persons if p.get("owner_id")),
    }


async def make(target: Target, seed: int, scale: float, quiet: bool = False) -> Report:
    """Make (or top up) seed's world on the stack; the report of what was done. Progress goes to stderr."""
    steps = Steps(Console(file=sys.stderr, soft_wrap=True), quiet)
    with steps.progress:
        return await Demo(target, seed, scale, steps).run()
