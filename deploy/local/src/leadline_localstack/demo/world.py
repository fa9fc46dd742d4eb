"""The demo's world, made from a seed: a small solar installer (Sunridge Solar), its catalog, its staff, and a
month of visitors, leads, emails, ads, rep work and purchases.

Pure data, no I/O: :func:`make_world` gives the same world for the same seed and scale. Names, e-mail addresses,
cookies and event ids come from the seed only, so a world made on another day holds the same people; times are
laid out backwards from ``anchor`` (the start of the day the world was first made, kept by the runner), in the
30 days before it. What the product cannot backdate (ad and e-mail clicks, HTML form posts) happens "today",
while the demo runs (see :mod:`leadline_localstack.demo.run`).

Every random choice is drawn from a generator keyed by the seed and the thing chosen (:func:`rng`), so adding a
kind of record never reshuffles the others, and a larger scale keeps the smaller world's first people.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

SITE = "https://www.sunridge-solar.example"
DOMAIN = "sunridge-solar.example"
WRITE_KEY = "sunridge-app"
DAYS = 30
WORLD_VERSION = 1
"""Bumped by every change to what a seed makes (tests/localstack/test_demo.py holds each version's fingerprint):
a stack keeps the version its world was made by, and the demo will not top up a world another version made."""
_NAMESPACE = uuid.UUID("1b1e5d0c-7a43-4f9e-8e0b-5a3c2d1f0e99")
"""UUIDv5 namespace of the demo's cookies and event ids; fixed, or a rerun would stop deduplicating."""


def rng(seed: int, *key: object) -> random.Random:
    """A generator for one thing of one world: the same on every run (``random`` hashes str seeds with SHA-512)."""
    return random.Random(f"leadline-demo:{seed}:" + ":".join(str(k) for k in key))


def stable_id(seed: int, *key: object) -> str:
    """A UUID for one thing of one world (cookies, event ids, Segment message ids)."""
    return str(uuid.uuid5(_NAMESPACE, f"{seed}:" + ":".join(str(k) for k in key)))


def token(seed: int, *key: object) -> str:
    """A short slug-safe token (e-mail recipient tokens, send ids)."""
    return hashlib.sha256((f"{seed}:" + ":".join(str(k) for k in key)).encode()).hexdigest()[:16]


def iso(at: datetime) -> str:
    """ISO 8601 in UTC with a Z, as SDKs send timestamps."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the business (the same in every world) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    list_price: float
    info: str


@dataclass(frozen=True)
class User:
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class Campaign:
    name: str
    channel: str
    landing_url: str
    starts_days_ago: int
    runs_days: int


@dataclass(frozen=True)
class Ad:
    ad_id: str
    name: str
    landing_url: str
    campaign: str


@dataclass(frozen=True)
class Affiliate:
    affiliate_id: str
    name: str
    landing_url: str
    contact_email: str
    ads: tuple[Ad, ...]


@dataclass(frozen=True)
class Form:
    key: str
    name: str
    fields: tuple[str, ...]
    required: tuple[str, ...]
    thank_you_url: str
    page: str


PRODUCTS = (
    Product("panel-kit-4kw", "Solar panel kit 4 kW (10 panels)", 6900, "Monocrystalline, 25-year warranty"),
    Product("panel-kit-6kw", "Solar panel kit 6 kW (15 panels)", 9400, "Monocrystalline, 25-year warranty"),
    Product("battery-10kwh", "Home battery 10 kWh", 5200, "LFP cells, wall-mounted, 10-year warranty"),
    Product("ev-charger", "EV charger 11 kW, installed", 1150, "Solar-aware charging"),
    Product("heat-pump-8kw", "Air-to-water heat pump 8 kW", 11800, "Includes removal of the old boiler"),
    Product("monitoring", "Energy monitoring kit", 240, "App and display; fits any inverter"),
    Product("service-plan", "Annual service plan", 190, "Yearly inspection, cleaning and priority support"),
)

SALES_REPS = (
    User("maya.okafor@sunridge-solar.example", "Maya Okafor", "sales"),
    User("daniel.brooks@sunridge-solar.example", "Daniel Brooks", "sales"),
    User("sofia.lindqvist@sunridge-solar.example", "Sofia Lindqvist", "sales"),
    User("tom.reilly@sunridge-solar.example", "Tom Reilly", "sales"),
)
MARKETER = User("priya.nair@sunridge-solar.example", "Priya Nair", "marketing")
SUPPORT = User("lena.hoffmann@sunridge-solar.example", "Lena Hoffmann", "service")
USERS = (*SALES_REPS, MARKETER, SUPPORT)

NEWSLETTER = "Sunridge monthly: solar savings"
PROMO = "Battery spring promo"
CAMPAIGNS = (
    Campaign(NEWSLETTER, "email", f"{SITE}/blog/winter-yield", 30, 60),
    Campaign(PROMO, "email", f"{SITE}/products/home-battery?offer=spring", 3, 30),
    Campaign("Affiliate partners", "affiliate", f"{SITE}/quote", 30, 90),
    Campaign("Search: solar quote", "paid", f"{SITE}/pricing", 30, 60),
    Campaign("Home & Garden show", "event", f"{SITE}/", 12, 3),
)

AFFILIATES = (
    Affiliate(
        "greenhomes",
        "GreenHomes Blog",
        "https://greenhomes.example/",
        "partners@greenhomes.example",
        (
            Ad(
                "battery-review",
                "Review: is a home battery worth it?",
                f"{SITE}/products/home-battery",
                PROMO,
            ),
            Ad("sidebar-banner", "Sidebar banner: free roof check", f"{SITE}/quote", "Affiliate partners"),
        ),
    ),
    Affiliate(
        "solarcompare",
        "SolarCompare",
        "https://solarcompare.example/",
        "ads@solarcompare.example",
        (
            Ad("top-installers", "Top installers listing", f"{SITE}/pricing", "Affiliate partners"),
            Ad("quote-widget", "Compare quotes widget", f"{SITE}/quote", "Affiliate partners"),
        ),
    ),
    Affiliate(
        "ecopod",
        "The Eco Podcast",
        "https://ecopod.example/",
        "hello@ecopod.example",
        (Ad("episode-112", "Episode 112 sponsor read", f"{SITE}/how-it-works", "Affiliate partners"),),
    ),
)

FORMS = (
    Form(
        "contact",
        "Contact us",
        ("email", "name", "phone", "company", "country", "message"),
        ("email",),
        "/thanks",
        f"{SITE}/contact",
    ),
    Form(
        "quote",
        "Free quote and roof check",
        ("email", "name", "phone", "street", "city", "postal_code", "country", "message"),
        ("email", "name"),
        "/quote/thanks",
        f"{SITE}/quote",
    ),
)

PAGES = (
    ("/", "Sunridge Solar: solar panels, batteries and heat pumps"),
    ("/pricing", "Pricing | Sunridge Solar"),
    ("/products/solar-panels", "Solar panels | Sunridge Solar"),
    ("/products/home-battery", "Home battery | Sunridge Solar"),
    ("/products/ev-charger", "EV charger | Sunridge Solar"),
    ("/products/heat-pump", "Heat pumps | Sunridge Solar"),
    ("/how-it-works", "How it works | Sunridge Solar"),
    ("/financing", "Financing | Sunridge Solar"),
    ("/reviews", "Customer reviews | Sunridge Solar"),
    ("/blog/winter-yield", "How much do panels make in winter? | Sunridge Solar"),
    ("/blog/battery-or-not", "Battery or not? | Sunridge Solar"),
    ("/about", "About us | Sunridge Solar"),
    ("/contact", "Contact | Sunridge Solar"),
    ("/quote", "Free quote | Sunridge Solar"),
)
_PAGE_WEIGHTS = (30, 14, 12, 10, 4, 5, 8, 5, 6, 6, 5, 3, 4, 6)
REFERRERS = (
    (None, 38),
    ("https://www.google.com/", 34),
    ("https://www.bing.com/", 6),
    ("https://duckduckgo.com/", 4),
    ("https://www.facebook.com/", 8),
    ("https://www.reddit.com/r/solar/", 4),
    ("https://www.youtube.com/", 3),
    ("https://greenhomes.example/blog/", 3),
)

# --- visitors: devices and places ---------------------------------------------------------------------------------

DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
)
MOBILE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/130.0.6723.90 Mobile/15E148 Safari/604.1",
)
TABLET = (
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
)
MAIL_CLIENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"  # Apple Mail
)
CRAWLERS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)
IMAGE_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
LINK_SCANNERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Barracuda",
    "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Microsoft SafeLinks",
)


@dataclass(frozen=True)
class Country:
    code: str
    weight: int
    locale: str
    networks: tuple[str, ...]  # first two octets of large national consumer ISP ranges
    cities: tuple[tuple[str, str, str], ...]  # city, region, postal code prefix
    phone: str  # {area} or {a}: one of four blocks, {line}: four digits; see _phone


COUNTRIES = (
    Country(
        "US",
        42,
        "en-US",
        ("73.15", "73.92", "98.210", "24.6", "71.178"),
        (
            ("Austin", "TX", "787"),
            ("Denver", "CO", "802"),
            ("Phoenix", "AZ", "850"),
            ("Portland", "OR", "972"),
        ),
        "+1 {area} 555 {line}",
    ),
    Country(
        "CA",
        10,
        "en-CA",
        ("174.88", "70.26", "99.228"),
        (("Toronto", "ON", "M4"), ("Vancouver", "BC", "V6"), ("Calgary", "AB", "T2")),
        "+1 {area} 555 {line}",
    ),
    Country(
        "GB",
        14,
        "en-GB",
        ("86.140", "81.98", "90.200"),
        (("Bristol", "England", "BS"), ("Leeds", "England", "LS"), ("Edinburgh", "Scotland", "EH")),
        "+44 20 79{a}6 {line}",
    ),
    Country(
        "DE",
        10,
        "de-DE",
        ("91.3", "79.200", "84.150"),
        (("Berlin", "Berlin", "10"), ("Hamburg", "Hamburg", "20"), ("Freiburg", "Baden-Württemberg", "79")),
        "+49 30 9{a}18{line}",
    ),
    Country(
        "NL",
        6,
        "nl-NL",
        ("77.161", "83.84"),
        (("Utrecht", "Utrecht", "35"), ("Rotterdam", "Zuid-Holland", "30")),
        "+31 20 12{a} {line}",
    ),
    Country(
        "IE",
        5,
        "en-IE",
        ("86.41", "89.100"),
        (("Dublin", "Leinster", "D0"), ("Cork", "Munster", "T12")),
        "+353 1 23{a} {line}",
    ),
    Country(
        "AU",
        8,
        "en-AU",
        ("1.120", "101.160"),
        (("Adelaide", "SA", "50"), ("Brisbane", "QLD", "40"), ("Perth", "WA", "60")),
        "+61 2 98{a}6 {line}",
    ),
)
_AREAS = {"US": ("512", "303", "602", "503"), "CA": ("416", "604", "403", "905")}

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas", "Mia", "Mateo",
    "Amelia", "Benjamin", "Harper", "Henry", "Evelyn", "Theo", "Chloe", "Jack", "Grace", "Samuel", "Aisha",
    "Omar", "Hannah", "Jonas", "Lea", "Finn", "Ines", "Luca", "Nora", "Arjun", "Priyanka", "Kenji", "Yuki",
    "Mateus", "Camila", "Diego", "Sara", "Elias", "Freya", "Oscar", "Zoe", "Felix", "Ruby", "Leo", "Maeve",
    "Declan", "Siobhan", "Willem", "Femke", "Daan", "Sanne", "Charlotte", "Hugo", "Ella", "Archie", "Isla",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Martinez", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Walker", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Müller", "Schmidt",
    "Schneider", "Fischer", "Weber", "de Vries", "Jansen", "Bakker", "Visser", "Murphy", "Kelly", "O'Brien",
    "Byrne", "Walsh", "Nguyen", "Patel", "Singh", "Tanaka", "Kim", "Novak", "Rossi", "Costa", "Silva",
)  # fmt: skip
COMPANIES = (
    "Oakridge Dental", "Birch & Co Bakery", "Harbor Logistics", "Maple Street Vet", "Northfield Farms",
    "Cedar Lane Dental", "Blue Fern Studio", "Riverside Brewing", "Summit Physio", "Lakeside Inn",
)  # fmt: skip
MAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "post.example")
STREETS = (
    "Maple Ave",
    "Oak Street",
    "Station Road",
    "Hill Crescent",
    "Lindenstraße",
    "Church Lane",
    "Park Row",
)
SPECIAL_INSTRUCTIONS = (
    "Install on the south-facing garage roof; the main roof has a skylight.",
    "Customer works nights: schedule the install after 1 pm.",
    "Dog in the back yard; call before entering.",
    "Scaffolding permit needed from the city; rep to file it.",
    "Battery in the utility room next to the water heater.",
    "Keep the old boiler for two weeks as a backup.",
    "Use black frames to match the roof tiles.",
    "Charger on the left of the driveway, 7 m cable.",
    "",
)
CALL_OUTCOMES = (
    ("phone_call", "reached", "Walked through the quote; wants financing options by email."),
    ("phone_call", "voicemail", "Left a voicemail about the roof check."),
    ("phone_call", "reached", "Asked about battery sizing for an EV; sent the spec sheet."),
    ("phone_call", "not interested", "Renting; landlord would need to agree."),
    ("site_visit", "surveyed", "Roof survey done: 34° pitch, good condition, fits 15 panels."),
    ("site_visit", "surveyed", "Checked the fuse box; needs an upgrade before a heat pump."),
    ("meeting", "quote presented", "Presented two options; leaning to panels plus battery."),
    ("email", "sent", "Sent the financing brochure."),
    ("note", None, "Prefers contact by email in the mornings."),
)
FEEDBACK = (
    (5, "Install team was on time and tidy. The app shows exactly what we make."),
    (5, "Maya explained everything clearly; panels were up in a day."),
    (4, "Great result, but the permit took longer than promised."),
    (4, "Happy with the battery. The first invoice was confusing."),
    (3, "Good panels; communication before the install could be better."),
    (5, "Our bill dropped by two thirds in the first month."),
    (2, "Scaffolding stayed up a week longer than agreed."),
)


@dataclass(frozen=True)
class Person:
    """Who a visitor turns out to be, if they ever say so."""

    first_name: str
    last_name: str
    email: str
    phone: str
    company: str | None
    street: str
    city: str
    region: str
    postal_code: str
    country: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class PageView:
    at: datetime
    path: str
    title: str
    referrer: str | None
    event_id: str

    @property
    def url(self) -> str:
        return SITE + self.path


@dataclass
class Visitor:
    """A browser: one ``ll_vid`` cookie, one device and place, its sessions, maybe a person behind it."""

    n: int
    cookie: str
    user_agent: str
    device: str
    ip: str
    country: Country
    sessions: list[list[PageView]] = field(default_factory=list)
    person: Person | None = None
    newsletter_at: datetime | None = None  # signed up through the site's own form (captured by the snippet)
    app_user: bool = False  # uses the savings calculator app (Segment calls)
    first_seen: datetime | None = None


@dataclass(frozen=True)
class AdClick:
    """Today's click on an affiliate's ad, by a new visitor who may ask for a quote."""

    visitor: Visitor
    affiliate: Affiliate
    ad: Ad
    sub_id: str
    converts: bool


@dataclass(frozen=True)
class RepLead:
    """A lead a rep types in (a phone inquiry, the home show)."""

    person: Person
    rep: User
    source: str


@dataclass(frozen=True)
class EmailSend:
    """One e-mail of a campaign to one known person, and what its recipient (and their mail system) did."""

    campaign: str
    subject: str
    visitor: Visitor
    sent_at: datetime
    send_id: str
    recipient_token: str
    opens: int
    clicks: int
    image_proxy: bool
    scanner: str | None


@dataclass(frozen=True)
class Activity:
    email: str
    kind: str
    rep: User
    at: datetime
    outcome: str | None
    notes: str


@dataclass(frozen=True)
class Purchase:
    email: str
    sku: str
    quantity: int
    purchased_on: date
    rep: User
    price_paid: float
    special_instructions: str


@dataclass(frozen=True)
class Feedback:
    email: str
    rating: int
    text: str


@dataclass
class World:
    seed: int
    scale: float
    anchor: datetime
    visitors: list[Visitor]
    crawler_views: list[tuple[str, str, PageView]]  # (user agent, cookie, view)
    ad_clicks: list[AdClick]
    contact_posts: list[Visitor]
    pixel_views: list[tuple[Visitor, str, str]]  # no-JavaScript views today: visitor, path, eid
    rep_leads: list[RepLead]
    sends: list[EmailSend] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    purchases: list[Purchase] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def known(self) -> list[Visitor]:
        """Visitors who said who they are during the month (newsletter or app), in order."""
        return [v for v in self.visitors if v.person is not None]

    def fingerprint(self) -> str:
        """A digest of everything this world sends (people, cookies, times, ids, rep work)."""
        digest = hashlib.sha256()
        for part in (
            self.visitors,
            self.crawler_views,
            self.ad_clicks,
            self.contact_posts,
            self.pixel_views,
            self.rep_leads,
            self.sends,
            self.activities,
            self.purchases,
            self.feedback,
        ):
            digest.update(repr(part).encode())
        return digest.hexdigest()

    def summary(self) -> dict[str, int]:
        """What this world holds, for the command's report and the tests."""
        return {
            "visitors": len(self.visitors) + len(self.ad_clicks),
            "page_views": sum(len(s) for v in self.visitors for s in v.sessions) + len(self.pixel_views),
            "newsletter_signups": sum(1 for v in self.visitors if v.newsletter_at),
            "app_users": sum(1 for v in self.visitors if v.app_user),
            "ad_clicks": len(self.ad_clicks),
            "form_posts": len(self.contact_posts) + sum(1 for c in self.ad_clicks if c.converts),
            "rep_leads": len(self.rep_leads),
            "email_sends": len(self.sends),
            "activities": len(self.activities),
            "purchases": len(self.purchases),
            "feedback": len(self.feedback),
            "crawler_views": len(self.crawler_views),
        }


def _weighted(r: random.Random, items: tuple[Any, ...], weights: tuple[int, ...]) -> Any:
    return r.choices(items, weights=weights, k=1)[0]


def _phone(n: int, country: Country) -> str:
    """Person ``n``'s number, unique in the world: a phone is an identifier, and two people sharing one would
    be one person to the identity graph. Person numbers (visitors from 0, today's ad visitors from 100,000, rep
    leads from 200,000; under 30,000 visitors at scale 10) map one to one onto four blocks of 10,000 numbers
    (US and Canada: the 555 exchange of four area codes)."""
    dense = n if n < 100_000 else 30_000 + n - 100_000 if n < 200_000 else 35_000 + n - 200_000
    block, line = divmod(dense, 10_000)
    area = _AREAS.get(country.code, ("",) * 4)[block % 4]
    return country.phone.format(area=area, a=3 + block % 4, line=f"{line:04d}")


def make_person(seed: int, n: int, country: Country) -> Person:
    """Person ``n`` of the world: their name, contact details and address (unique e-mail per ``n``)."""
    r = rng(seed, "person", n)
    first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
    local = f"{first}.{last}".lower().replace(" ", "").replace("'", "").replace("ü", "ue")
    city, region, postal = r.choice(country.cities)
    company = r.choice(COMPANIES) if r.random() < 0.15 else None
    return Person(
        first_name=first,
        last_name=last,
        email=f"{local}.{n}@{r.choice(MAIL_DOMAINS)}",
        phone=_phone(n, country),
        company=company,
        street=f"{r.randrange(1, 240)} {r.choice(STREETS)}",
        city=city,
        region=region,
        postal_code=f"{postal}{r.randrange(100, 999)}",
        country=country.code,
    )


def _visitor(seed: int, n: int, kind: str = "visitor") -> Visitor:
    r = rng(seed, kind, n)
    country = _weighted(r, COUNTRIES, tuple(c.weight for c in COUNTRIES))
    device = _weighted(r, ("desktop", "mobile", "tablet"), (52, 42, 6))
    agents = {"desktop": DESKTOP, "mobile": MOBILE, "tablet": TABLET}[device]
    net = r.choice(country.networks)
    return Visitor(
        n=n,
        cookie=stable_id(seed, kind, n),
        user_agent=r.choice(agents),
        device=device,
        ip=f"{net}.{r.randrange(0, 256)}.{r.randrange(1, 255)}",
        country=country,
    )


def _day_start(anchor: datetime, days_ago: int) -> datetime:
    return anchor - timedelta(days=days_ago)


def _session(seed: int, v: Visitor, k: int, start: datetime, r: random.Random) -> list[PageView]:
    referrer = _weighted(r, tuple(x for x, _ in REFERRERS), tuple(w for _, w in REFERRERS))
    count = _weighted(r, (1, 2, 3, 4, 5, 6, 8), (30, 22, 16, 12, 9, 6, 5))
    views: list[PageView] = []
    at = start
    for i in range(count):
        path, title = _weighted(r, PAGES, _PAGE_WEIGHTS) if i or r.random() < 0.5 else PAGES[0]
        ref = referrer if i == 0 else SITE + views[-1].path
        views.append(PageView(at, path, title, ref, stable_id(seed, "pv", v.n, k, i)))
        at += timedelta(seconds=r.randrange(15, 240))
    return views


def make_world(seed: int, scale: float, anchor: datetime) -> World:
    """The world of ``seed`` at ``scale`` (1.0: about 3,000 visitors), its month ending at ``anchor``."""
    visitors: list[Visitor] = []
    count = max(12, round(3000 * scale))
    for n in range(count):
        v = _visitor(seed, n)
        r = rng(seed, "visits", n)
        first_day = min(DAYS, int(r.triangular(1, DAYS + 1, 1)))  # more visitors lately: the business grows
        sessions = _weighted(r, (1, 2, 3, 4, 6), (58, 20, 10, 7, 5))
        days = sorted(
            {first_day, *(r.randrange(1, first_day + 1) for _ in range(sessions - 1))}, reverse=True
        )
        for k, days_ago in enumerate(days):
            start = _day_start(anchor, days_ago) + timedelta(seconds=r.randrange(6 * 3600, 23 * 3600))
            v.sessions.append(_session(seed, v, k, start, r))
        v.first_seen = v.sessions[0][0].at
        visitors.append(v)
        if r.random() < 0.07 or n in (1, 2):  # n 1 and 2: even the smallest world has leads
            v.person = make_person(seed, n, v.country)
            last = v.sessions[-1]
            v.newsletter_at = last[-1].at + timedelta(seconds=30)
        if r.random() < 0.05 or n in (2, 3):
            v.person = v.person or make_person(seed, n, v.country)
            v.app_user = True

    crawler_views: list[tuple[str, str, PageView]] = []
    r = rng(seed, "crawlers")
    for i in range(max(6, round(240 * scale))):
        agent = r.choice(CRAWLERS)
        days_ago = r.randrange(1, DAYS + 1)
        path, title = r.choice(PAGES)
        at = _day_start(anchor, days_ago) + timedelta(seconds=r.randrange(0, 86400))
        cookie = stable_id(seed, "crawler", CRAWLERS.index(agent), days_ago)  # one crawl a day per bot
        crawler_views.append((agent, cookie, PageView(at, path, title, None, stable_id(seed, "crawl", i))))

    ad_clicks: list[AdClick] = []
    ads = [(a, ad) for a in AFFILIATES for ad in a.ads]
    for i in range(max(len(AFFILIATES) * 2, round(150 * scale))):
        r = rng(seed, "adclick", i)
        affiliate, ad = ads[i % len(ads)] if i < len(ads) else r.choice(ads)
        v = _visitor(seed, i, "ad-visitor")
        converts = (i < len(AFFILIATES) * 2 and ad is affiliate.ads[0]) or r.random() < 0.1
        if converts:
            v.person = make_person(seed, 100_000 + i, v.country)
        ad_clicks.append(
            AdClick(v, affiliate, ad, f"{affiliate.affiliate_id}-{r.randrange(1, 40)}", converts)
        )

    r = rng(seed, "contact")
    anonymous = [v for v in visitors if v.person is None]
    contact_posts = r.sample(anonymous, k=min(len(anonymous), max(2, round(14 * scale))))
    for v in contact_posts:
        v.person = make_person(seed, v.n, v.country)
    r = rng(seed, "pixel")
    pixel_views = [
        (v, r.choice(PAGES)[0], stable_id(seed, "pixel", i))
        for i, v in enumerate(r.sample(visitors, k=min(len(visitors), max(3, round(100 * scale)))))
    ]
    rep_leads = []
    for i in range(max(2, round(20 * scale))):
        r = rng(seed, "rep-lead", i)
        country = _weighted(r, COUNTRIES, tuple(c.weight for c in COUNTRIES))
        source = r.choice(("phone inquiry", "Home & Garden show"))
        rep_leads.append(
            RepLead(make_person(seed, 200_000 + i, country), SALES_REPS[i % len(SALES_REPS)], source)
        )
    world = World(
        seed, scale, anchor, visitors, crawler_views, ad_clicks, contact_posts, pixel_views, rep_leads
    )
    _emails(world)
    _rep_work(world)
    return world


def _emails(world: World) -> None:
    """The newsletter to every subscriber, the promo to subscribers and app users; what each recipient did."""
    seed, anchor = world.seed, world.anchor
    subscribers = [v for v in world.visitors if v.newsletter_at]
    audience = [v for v in world.visitors if v.person is not None and (v.newsletter_at or v.app_user)]
    for campaign, subject, people, days_ago in (
        (NEWSLETTER, "How much do panels make in winter?", subscribers, 9),
        (PROMO, "Spring offer: 10% off a home battery", audience, 1),
    ):
        sent_at = _day_start(anchor, days_ago) + timedelta(hours=9)
        for v in people:
            if v.newsletter_at is not None and v.newsletter_at > sent_at:
                continue  # subscribed after this went out
            r = rng(seed, "send", campaign, v.n)
            opened = r.random() < 0.45 or v.n in (1, 2)
            clicks = (1 + (r.random() < 0.3)) if opened and (r.random() < 0.3 or v.n == 2) else 0
            world.sends.append(
                EmailSend(
                    campaign=campaign,
                    subject=subject,
                    visitor=v,
                    sent_at=sent_at,
                    send_id=token(seed, "send", campaign, v.n),
                    recipient_token=token(seed, "recipient", v.n),
                    opens=(1 + (r.random() < 0.4)) if opened else 0,
                    clicks=clicks,
                    image_proxy=opened and (r.random() < 0.3 or v.n == 1),
                    scanner=r.choice(LINK_SCANNERS) if r.random() < 0.15 or v.n == 2 else None,
                )
            )


def _rep_work(world: World) -> None:
    """Calls, visits and meetings with the month's leads; purchases by several reps; feedback from customers."""
    seed, anchor = world.seed, world.anchor
    leads = [
        (v.person, v.newsletter_at or v.first_seen or anchor)
        for v in world.visitors
        if v.person is not None and (v.newsletter_at or v.app_user)
    ]  # today's form leads and ad clicks came in while the demo runs: too fresh for a rep
    for i, (person, since) in enumerate(leads):
        r = rng(seed, "work", person.email)
        if r.random() > 0.55 and i >= 3:
            continue
        rep = SALES_REPS[(i + r.randrange(2)) % len(SALES_REPS)]
        days_left = max(0.0, (anchor - since).total_seconds() / 86400)
        at = since
        touches = _weighted(r, (1, 2, 3, 4), (40, 30, 20, 10))
        for _ in range(touches):
            at = at + timedelta(hours=r.uniform(2, max(3.0, days_left * 24 / (touches + 1))))
            at = min(at, anchor - timedelta(minutes=r.randrange(5, 600)))
            kind, outcome, notes = r.choice(CALL_OUTCOMES)
            who = rep if kind != "note" else SUPPORT
            world.activities.append(
                Activity(person.email, kind, who, at.replace(microsecond=0), outcome, notes)
            )
        if r.random() < 0.4 or i in (0, 1, 2):
            rep_for_sale = SALES_REPS[i % len(SALES_REPS)] if i < len(SALES_REPS) else rep
            bought = r.sample(PRODUCTS[:5], 1)
            if r.random() < 0.3:  # an add-on: another product (a purchase's natural key holds its product)
                bought.append(r.choice([p for p in PRODUCTS if p not in bought]))
            for product in bought:
                quantity = 1
                discount = r.choice((1.0, 1.0, 0.95, 0.9))
                world.purchases.append(
                    Purchase(
                        person.email,
                        product.sku,
                        quantity,
                        min(
                            (at + timedelta(days=r.randrange(0, 3))).date(),
                            (anchor - timedelta(days=1)).date(),
                        ),
                        rep_for_sale,
                        round(product.list_price * quantity * discount, 2),
                        r.choice(SPECIAL_INSTRUCTIONS),
                    )
                )
            if r.random() < 0.6 or i == 0:
                rating, text = r.choice(FEEDBACK)
                world.feedback.append(Feedback(person.email, rating, text))


def anchor_of(day: date) -> datetime:
    """The end of a world's month: the start (UTC) of the day it was first made."""
    return datetime.combine(day, time(0, 0), tzinfo=UTC)
