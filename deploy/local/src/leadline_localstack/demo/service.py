"""The demo's service desk (issue 14): the support team's knowledge base, service contracts for customers who bought
a service plan or a system, and cases in every state with their comments, made through crm-core's API.

Kept apart from the world's traffic (world.py): what it makes follows from the world's purchases and fixed texts,
and draws from its own random stream (``rng(seed, "service", …)``), so the world's fingerprint and version are
untouched. Idempotent by natural keys: an article's title, a contract's person and name, a case's person and
subject; a case found again is moved on to its state and given the comments it lacks, so an interrupted run is
completed by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from leadline_localstack.demo import world as w
from leadline_localstack.demo.http import Api, Browser, Collector, DemoError


@dataclass(frozen=True)
class Article:
    title: str
    body: str
    tags: tuple[str, ...]
    sku: str | None
    public: bool


@dataclass(frozen=True)
class Contract:
    email: str
    name: str
    sku: str
    starts_on: date
    ends_on: date
    response_hours: int


@dataclass(frozen=True)
class Case:
    email: str
    type: str
    priority: str
    subject: str
    description: str
    status: str  # where the demo leaves it
    comments: tuple[tuple[str, bool], ...]  # (text, customer-visible)


def _article(title: str, steps: str, tags: str, sku: str | None = None, public: bool = True) -> Article:
    body = f"# {title}\n\n{steps}\n\nStill stuck? Call Sunridge support and quote your case number (SR-…)."
    return Article(title, body, tuple(tags.split()), sku, public)


ARTICLES = (
    _article("Reading your inverter's status light", "- **Green**: producing.\n- **Orange**: waiting for sun.\n"
             "- **Red**: a fault; note the code on the display.", "inverter panels", "panel-kit-4kw"),
    _article("Inverter shows error E-21 (grid voltage too high)", "The grid's voltage rose above the limit and the "
             "inverter stopped feeding in. It restarts by itself; if the error repeats daily, ask us to check the "
             "voltage settings.", "inverter error grid", "panel-kit-6kw"),
    _article("Cleaning your solar panels safely", "Rinse with a garden hose from the ground, early in the morning. "
             "Never climb on the roof and never use a pressure washer.", "panels cleaning maintenance"),
    _article("Why production drops in winter", "Shorter days and a low sun reduce production by up to 70 %. "
             "Compare months year on year, not with summer.", "panels production"),
    _article("Home battery does not charge", "Check the battery's mode in the app: *backup only* keeps it full "
             "for outages. Set it to *self-consumption* to charge from surplus solar.", "battery charging",
             "battery-10kwh"),
    _article("Battery reserve for power cuts", "The reserve (default 20 %) is kept for outages. Raise it before "
             "storms from the app's battery settings.", "battery backup outage", "battery-10kwh"),
    _article("EV charger: charging only from solar", "Choose *solar only* in the charger's app; the car charges "
             "when the surplus exceeds 1.4 kW.", "charger ev solar", "ev-charger"),
    _article("EV charger light blinks blue", "The charger waits for the car's authorisation. Unplug, lock and "
             "unlock the car, then plug in again.", "charger ev error", "ev-charger"),
    _article("Heat pump makes a humming noise", "A low hum is normal while the compressor runs. A loud or "
             "rattling noise usually means a loose fan grille: switch off and call us.", "heat-pump noise",
             "heat-pump-8kw"),
    _article("Heat pump shows low water pressure", "Top up the heating circuit to 1.5 bar at the filling valve. "
             "If pressure drops again within a week there is a leak: open a case.", "heat-pump pressure water",
             "heat-pump-8kw"),
    _article("Setting the heat pump's night mode", "Lower the flow temperature by 5 °C between 22:00 and 06:00 "
             "from the controller's schedule menu.", "heat-pump settings schedule", "heat-pump-8kw"),
    _article("Monitoring app shows no data", "Check the display's Wi-Fi symbol. After a router change, pair the "
             "display again from the app's *devices* page.", "monitoring app wifi", "monitoring"),
    _article("Exporting your energy data", "In the monitoring app open *history*, choose the period and tap "
             "*export CSV*.", "monitoring export data", "monitoring"),
    _article("What the annual service visit covers", "Inspection of panels, fixings and cabling, an inverter "
             "check, cleaning, and a report within a week.", "service-plan maintenance", "service-plan"),
    _article("Renewing your service plan", "Plans renew yearly; we write 30 days before the end. Renewing keeps "
             "your priority response time.", "service-plan renewal contract", "service-plan"),
    _article("Warranty: what is covered", "Panels 25 years (output), inverters 10 years, batteries 10 years. "
             "Damage from storms is for your home insurance.", "warranty panels battery"),
    _article("Returning a product within 30 days", "Unused products can be returned within 30 days of delivery. "
             "Open a *return* case with your order number.", "return refund"),
    _article("Making a complaint", "Tell us what went wrong in a *complaint* case; a team lead answers within "
             "two working days.", "complaint"),
    _article("Invoice and payment questions", "Invoices are sent by email after installation. Payment plans are "
             "possible for systems over 5,000 USD.", "invoice payment billing"),
    _article("Internal: escalating a roof leak after installation", "Send the installer crew lead the case "
             "number the same day and book a visit within 48 hours. Never promise compensation on the phone.",
             "escalation installation roof", public=False),
)  # fmt: skip

CASE_TEXTS = (
    ("fault", "high", "Inverter shows error E-21 every afternoon",
     "Since last week the inverter stops at about 3 pm with error E-21 and production drops to zero.", "open",
     (("Asked for a photo of the display and the grid voltage reading.", False),
      ("We are checking the grid voltage settings remotely and will call you tomorrow.", True))),
    ("question", "normal", "How do I export my energy data?",
     "I would like my production figures for the last year as a spreadsheet.", "closed",
     (("You can export them in the monitoring app: history, choose the year, export CSV.", True),)),
    ("complaint", "high", "Installer left debris in the garden",
     "The crew left packaging and screws on the lawn after installing the panels.", "waiting",
     (("Crew lead informed; pick-up booked.", False),
      ("We apologise. A colleague will collect everything on Friday; please confirm you are home.", True))),
    ("fault", "urgent", "Heat pump loses water pressure",
     "The pressure falls below 1 bar every few days even after topping up.", "new", ()),
    ("return", "normal", "Return the monitoring kit",
     "The monitoring kit does not fit in the meter cupboard; I would like to return it.", "resolved",
     (("Return label sent by email; refund follows when the kit arrives.", True),)),
    ("question", "low", "Battery does not charge in the morning",
     "The battery stays at 20 % until noon although the panels produce.", "resolved",
     (("The battery was in backup mode; switched to self-consumption with the customer on the phone.", False),)),
)  # fmt: skip

#: How a case reaches each state from new.
PATHS = {
    "new": (),
    "open": ("open",),
    "waiting": ("open", "waiting"),
    "resolved": ("open", "resolved"),
    "closed": ("open", "resolved", "closed"),
}
CONTRACT_SKUS = ("service-plan", "panel-kit-4kw", "panel-kit-6kw", "heat-pump-8kw")


def contracts(world: w.World) -> list[Contract]:
    """A contract for each purchase of a service plan or a system: a year from the purchase; service plans answer
    within 24 hours, systems (their installation warranty service) within 72. The first began 350 days before the
    world's day, so renewals due show it; at most 12."""
    out: list[Contract] = []
    for i, p in enumerate(x for x in world.purchases if x.sku in CONTRACT_SKUS):
        start = world.anchor.date() - timedelta(days=350) if i == 0 else p.purchased_on
        name = "Annual service plan" if p.sku == "service-plan" else f"Installation service ({p.sku})"
        if any(c.email == p.email and c.name == name for c in out):
            continue
        hours = 24 if p.sku == "service-plan" else 72
        out.append(Contract(p.email, name, p.sku, start, start + timedelta(days=365), hours))
        if len(out) == 12:
            break
    return out


def cases(world: w.World) -> list[Case]:
    """A case for each of the first customers (one per customer, texts in order), in varied states."""
    customers = list(dict.fromkeys(p.email for p in world.purchases))
    return [
        Case(email, kind, priority, subject, text, status, comments)
        for email, (kind, priority, subject, text, status, comments) in zip(
            customers, CASE_TEXTS, strict=False
        )
    ]


async def make(
    api: Api, world: w.World, persons: dict[str, str], ids: dict[str, dict[str, str]]
) -> dict[str, int]:
    """Make the knowledge base, the contracts and the cases (each looked up first); what was created."""
    made = {"kb_articles": 0, "contracts": 0, "cases": 0, "comments": 0, "moves": 0}
    products, agent = ids["product"], ids["user"][w.SUPPORT.email]
    titles = {a["title"] for a in await api.all("/api/v1/kb/articles")}
    for article in ARTICLES:
        if article.title not in titles:
            body: dict[str, Any] = {"title": article.title, "body": article.body, "tags": list(article.tags),
                                    "public": article.public}  # fmt: skip
            if article.sku:
                body["product_id"] = products[article.sku]
            await api.create("/api/v1/kb/articles", body)
            made["kb_articles"] += 1
    held = {(c["person_id"], c["name"]) for c in await api.all("/api/v1/contracts")}
    for contract in contracts(world):
        person = persons[contract.email]
        if (person, contract.name) not in held:
            await api.create("/api/v1/contracts", {
                "person_id": person, "name": contract.name, "product_id": products[contract.sku],
                "starts_on": contract.starts_on.isoformat(), "ends_on": contract.ends_on.isoformat(),
                "response_hours": contract.response_hours})  # fmt: skip
            made["contracts"] += 1
    for case in cases(world):
        person = persons[case.email]
        found = [c for c in await api.all("/api/v1/cases", person_id=person) if c["subject"] == case.subject]
        if found:
            number, status = found[0]["tracking_number"], found[0]["status"]
        else:
            doc = await api.create("/api/v1/cases", {
                "person_id": person, "type": case.type, "priority": case.priority, "subject": case.subject,
                "description": case.description, "assignee_id": agent})  # fmt: skip
            number, status = doc["tracking_number"], doc["status"]
            made["cases"] += 1
        path = PATHS[case.status]
        done = path.index(status) + 1 if status in path else 0
        said = {c["body"] for c in (await api.get(f"/api/v1/cases/{number}"))["comments"]}
        for text, public in case.comments:
            if text not in said:
                await api.create(f"/api/v1/cases/{number}/comments", {"body": text, "public": public})
                made["comments"] += 1
        for to in path[done:]:
            status_code, doc = await api.call("POST", f"/api/v1/cases/{number}/status", {"status": to})
            if status_code != 200:
                raise DemoError(f"moving {number} to {to}: {status_code} {doc}")
            made["moves"] += 1
    return made


#: The support form: published by crm-core at /support/forms/support, whose thank-you page shows the number.
SUPPORT_FORM = {
    "key": "support",
    "name": "Contact Sunridge support",
    "fields": ["email", "name", "type", "subject", "message"],
    "required": ["email", "message"],
    "allowed_origins": [w.SITE],
    "thank_you_url": "/support/thanks",
    "support": True,
    "case_type": "question",
}
#: What customers send through it: (type, subject, message).
SUPPORT_POSTS = (
    ("fault", "Display stays dark", "The inverter's display has been dark since the storm on Sunday."),
    ("question", "", "Can I add a second battery to my system later?"),
    ("complaint", "Invoice charged twice", "My card was charged twice for the same invoice."),
)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def support_posts(world: w.World) -> list[tuple[str, dict[str, str]]]:
    """Who posts to the support form and what: customers after those with an agent's case, one post each."""
    customers = list(dict.fromkeys(p.email for p in world.purchases))[len(CASE_TEXTS) :]
    return [
        (
            email,
            {"email": email, "type": kind, "message": message} | ({"subject": subject} if subject else {}),
        )
        for email, (kind, subject, message) in zip(customers, SUPPORT_POSTS, strict=False)
    ]


async def support_form(api: Api, collector: Collector, world: w.World, seed: int) -> dict[str, int]:
    """The support form and, when it is new, a few customers' posts to it through the collector; each opens a case
    once ingestion has it (a resent post keeps its event id, the Idempotency-Key fixed per world, so it opens
    none). A second run finds the form and sends nothing."""
    if await api.get(f"/api/v1/forms/{SUPPORT_FORM['key']}") is not None:
        return {"support_forms": 0, "support_posts": 0}
    await api.create("/api/v1/forms", SUPPORT_FORM)
    posts = support_posts(world)
    for n, (_email, fields) in enumerate(posts):
        browser = Browser(BROWSER, None, f"198.51.100.{10 + n}")
        await collector.form(browser, "support", fields, f"{w.SITE}/support", w.SITE,
                             w.stable_id(seed, "support", n))  # fmt: skip
    return {"support_forms": 1, "support_posts": len(posts)}
