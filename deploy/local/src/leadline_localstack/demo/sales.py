"""The demo's sales workspace (issue 15): companies for the month's business customers (people linked by hand: their
addresses are at mail providers, not the company's domain), an owner and a next step for every lead a rep worked
(some next steps overdue), deals across the default pipeline (won for buyers, lost with a reason, the rest in the
open stages, each moved there stage by stage so it has a history), and tasks, some overdue; made through crm-core's
API.

Kept apart from the world's traffic (world.py), as the service desk is (service.py): what it makes follows from the
world's people, rep work and purchases and draws from its own random stream (``rng(seed, "sales", …)``), so the
world's fingerprint and version are untouched. Idempotent by natural keys: a company's name, a deal's person and
title, a task's person and title; a deal found again is moved on to its stage, so an interrupted run is completed
by the next one.

Two things an admin moving from spreadsheets does: the contacts collected at a home-energy fair come in as a CSV
file through the real import API (``POST /api/v1/imports``; its one malformed row is in the import's rejects
report, and a second run skips the ten it already holds), and each rep gets a monthly target for this month and
the last, shown beside the deals they won on the sales dashboard.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp

from leadline_localstack.demo import world as w
from leadline_localstack.demo.http import Api, DemoError

OPEN_STAGES = ("Qualified", "Meeting", "Proposal", "Negotiation")
LOSS_REASONS = ("went with a cheaper installer", "roof not suitable", "postponed to next year", "no budget")
NEXT_STEPS = ("Send the quote", "Book the roof survey", "Call about financing", "Confirm the install date",
              "Follow up on the proposal")  # fmt: skip


# The sign-up sheet of the spring home-energy fair, as the stand's laptop exported it (semicolons, a notes column
# the import leaves out, one address the visitor never finished).
FAIR_CSV = """First name;Last name;E-mail;Phone;City;Country;Owner;Notes
Hannah;Weber;hannah.weber@mailbox.example;+44 20 7946 0101;Bristol;GB;maya.okafor@sunridge-solar.example;south roof, asked about batteries
Oliver;Grant;oliver.grant@mailbox.example;+44 20 7946 0102;Bath;GB;daniel.brooks@sunridge-solar.example;wants a quote before June
Amara;Nwosu;amara.nwosu@post.example;+44 20 7946 0103;Cardiff;GB;sofia.lindqvist@sunridge-solar.example;heat pump and panels
Lukas;Brandt;lukas.brandt@post.example;+44 20 7946 0104;Bristol;GB;tom.reilly@sunridge-solar.example;EV charger first
Chloe;Martin;chloe.martin@mailbox.example;;Swindon;GB;maya.okafor@sunridge-solar.example;call after 6 pm
Ravi;Shah;ravi.shah@post.example;+44 20 7946 0106;Gloucester;GB;daniel.brooks@sunridge-solar.example;flat roof
Ingrid;Olsen;ingrid.olsen@mailbox.example;+44 20 7946 0107;Bath;GB;sofia.lindqvist@sunridge-solar.example;
Jonas;Petrov;n/a;;Bristol;GB;;left before finishing the form
Megan;Hughes;megan.hughes@post.example;+44 20 7946 0109;Newport;GB;tom.reilly@sunridge-solar.example;neighbour of a customer
Samir;Haddad;samir.haddad@mailbox.example;+44 20 7946 0110;Cheltenham;GB;maya.okafor@sunridge-solar.example;
Elena;Rossi;elena.rossi@post.example;+44 20 7946 0111;Bristol;GB;daniel.brooks@sunridge-solar.example;battery only
"""
TARGET_BASE, TARGET_STEP = 20_000, 5_000  # EUR a month; each rep a step above the one before


@dataclass(frozen=True)
class Company:
    name: str
    domain: str
    industry: str
    size: str
    country: str
    owner: w.User
    people: tuple[str, ...]  # emails


@dataclass(frozen=True)
class Owner:
    email: str
    rep: w.User
    next_step: str
    next_step_on: date


@dataclass(frozen=True)
class Deal:
    email: str
    title: str
    amount: float
    stage: str  # where the demo leaves it
    reason: str | None
    expected_close_on: date
    rep: w.User
    company: str | None


@dataclass(frozen=True)
class Task:
    email: str
    title: str
    due_at: datetime
    rep: w.User


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def _worked(world: w.World) -> dict[str, w.User]:
    """Each worked lead's rep: who sold to them, else who called them last (the support team's notes aside)."""
    reps: dict[str, w.User] = {}
    for a in sorted(world.activities, key=lambda a: a.at):
        if a.rep.role == "sales":
            reps[a.email] = a.rep
    for lead in world.rep_leads:
        reps.setdefault(lead.person.email, lead.rep)
    for p in world.purchases:
        reps[p.email] = p.rep
    return reps


def _person_of(world: w.World) -> dict[str, w.Person]:
    people = {v.person.email: v.person for v in world.visitors if v.person is not None}
    people.update({lead.person.email: lead.person for lead in world.rep_leads})
    return people


def companies(world: w.World) -> list[Company]:
    """A company for each business among the worked leads (a person's company name), with its people."""
    people, reps = _person_of(world), _worked(world)
    members: dict[str, list[str]] = defaultdict(list)
    for email in reps:
        person = people.get(email)
        if person is not None and person.company:
            members[person.company].append(email)
    out = []
    for name, emails in sorted(members.items()):
        r = w.rng(world.seed, "sales", "company", name)
        first = people[emails[0]]
        out.append(Company(name, f"{_slug(name)}.example", r.choice(("health", "food", "logistics", "hospitality")),
                           r.choice(("1-10", "11-50", "51-200")), first.country, reps[emails[0]], tuple(emails)))  # fmt: skip
    return out


def owners(world: w.World) -> list[Owner]:
    """Every worked lead gets its rep as owner and a next step; about a third are due already (overdue)."""
    out = []
    for email, rep in sorted(_worked(world).items()):
        r = w.rng(world.seed, "sales", "owner", email)
        out.append(
            Owner(email, rep, r.choice(NEXT_STEPS), (world.anchor + timedelta(days=r.randint(-4, 9))).date())
        )
    return out


def deals(world: w.World) -> list[Deal]:
    """A won deal for each buyer (their purchases' value), and a deal for each other worked lead: mostly open across
    the stages, some lost with a reason."""
    people, bought = _person_of(world), defaultdict[str, float](float)
    for p in world.purchases:
        bought[p.email] += p.price_paid
    out = []
    for email, rep in sorted(_worked(world).items()):
        r = w.rng(world.seed, "sales", "deal", email)
        person = people.get(email)
        company = person.company if person is not None else None
        close = (world.anchor + timedelta(days=r.randint(3, 45))).date()
        if email in bought:
            out.append(
                Deal(
                    email, "Solar installation", round(bought[email], 2), "Won", "signed", close, rep, company
                )
            )
        elif r.random() < 0.2:
            out.append(Deal(email, "Solar installation", float(r.choice((6900, 9400, 12100))), "Lost",
                            r.choice(LOSS_REASONS), close, rep, company))  # fmt: skip
        else:
            product = r.choice(w.PRODUCTS[:5])
            out.append(Deal(email, product.name, float(product.list_price), r.choice(OPEN_STAGES), None, close, rep,
                            company))  # fmt: skip
    return out


def tasks(world: w.World, now: datetime) -> list[Task]:
    """A task for each open deal: due from two days ago to next week (the first ones overdue)."""
    out = []
    for i, deal in enumerate(d for d in deals(world) if d.stage in OPEN_STAGES):
        r = w.rng(world.seed, "sales", "task", deal.email)
        hours = -48 + i * 7 if i < 4 else r.randint(-30, 24 * 7)
        due = (world.anchor + timedelta(hours=hours + 24 * max(0, (now - world.anchor).days))).replace(
            minute=0
        )
        out.append(Task(deal.email, f"{r.choice(NEXT_STEPS)}: {deal.title}", due, deal.rep))
    return out


async def make(api: Api, world: w.World, persons: dict[str, str], ids: dict[str, dict[str, str]],
               now: datetime) -> dict[str, int]:  # fmt: skip
    """Make the companies, owners, deals and tasks (each looked up first); what was created or changed."""
    made = {
        "companies": 0,
        "links": 0,
        "owners": 0,
        "deals": 0,
        "moves": 0,
        "tasks": 0,
        "imported": 0,
        "targets": 0,
    }
    users = ids["user"]
    pipelines = (await api.get("/api/v1/pipelines"))["items"]
    stages = [s["name"] for s in next(p for p in pipelines if p["is_default"])["stages"]]
    held = {c["name"]: c for c in await api.all("/api/v1/companies")}
    company_ids: dict[str, str] = {}
    for company in companies(world):
        doc = held.get(company.name)
        if doc is None:
            doc = await api.create("/api/v1/companies", {
                "name": company.name, "domain": company.domain, "industry": company.industry, "size": company.size,
                "country": company.country, "owner_id": users[company.owner.email]})  # fmt: skip
            made["companies"] += 1
        company_ids[company.name] = doc["id"]
        linked = {p["id"] for p in (await api.get(f"/api/v1/companies/{doc['id']}/people"))["items"]}
        for email in company.people:
            if persons[email] not in linked:
                await api.create(f"/api/v1/companies/{doc['id']}/people", {"person_id": persons[email]})
                made["links"] += 1
    for owner in owners(world):
        person = await api.get(f"/api/v1/persons/{persons[owner.email]}")
        want = {"owner_id": users[owner.rep.email], "next_step": owner.next_step,
                "next_step_on": owner.next_step_on.isoformat()}  # fmt: skip
        if person is not None and any(str(person.get(k) or "") != v for k, v in want.items()):
            await api.patch(f"/api/v1/persons/{persons[owner.email]}", want)
            made["owners"] += 1
    for deal in deals(world):
        person = persons[deal.email]
        found = [d for d in await api.all("/api/v1/deals", person=person) if d["title"] == deal.title]
        if found:
            doc = found[0]
        else:
            body: dict[str, Any] = {"title": deal.title, "person_id": person, "amount": deal.amount,
                                    "currency": "EUR", "owner_id": users[deal.rep.email],
                                    "expected_close_on": deal.expected_close_on.isoformat()}  # fmt: skip
            if deal.company:
                body["company_id"] = company_ids[deal.company]
            doc = await api.create("/api/v1/deals", body)
            made["deals"] += 1
        # stage by stage to where it belongs (a lost deal is lost from its last open stage)
        path = [s for s in stages[: stages.index(deal.stage) + 1] if s != "Won" or deal.stage == "Won"]
        if deal.stage == "Lost":
            path = [*OPEN_STAGES[: 1 + len(deal.email) % 3], "Lost"]
        done = path.index(doc["stage"]) + 1 if doc["stage"] in path else 1
        for stage in path[done:]:
            move: dict[str, Any] = {"stage": stage}
            if stage in ("Won", "Lost"):
                move["reason"] = deal.reason
            await api.patch(f"/api/v1/deals/{doc['id']}", move)
            made["moves"] += 1
    for task in tasks(world, now):
        person = persons[task.email]
        if not any(t["title"] == task.title for t in await api.all("/api/v1/tasks", person_id=person)):
            await api.create("/api/v1/tasks", {"title": task.title, "due_at": task.due_at.isoformat(),
                                               "person_id": person, "owner_id": users[task.rep.email]})  # fmt: skip
            made["tasks"] += 1
    made["imported"] = (await import_fair_contacts(api))["created"]
    made["targets"] = await set_targets(api, ids, now.date())
    return made


async def import_fair_contacts(api: Api) -> dict[str, int]:
    """The fair's sign-up sheet through POST /api/v1/imports (people, skip duplicates): created, skipped, rejected."""
    form = aiohttp.FormData()
    form.add_field("file", FAIR_CSV.encode(), filename="home-energy-fair.csv", content_type="text/csv")
    for key, value in (("kind", "people"), ("mode", "commit"), ("on_duplicate", "skip")):
        form.add_field(key, value)
    async with api.session.post(f"{api.base}/api/v1/imports", data=form, headers=api.headers) as resp:
        job = await resp.json(content_type=None)
        if resp.status != 201:
            raise DemoError(f"POST /api/v1/imports: {resp.status} {job}")
    return {k: int(job[k]) for k in ("created", "skipped", "rejected")}


def targets(today: date) -> list[tuple[w.User, str, int]]:
    """Each rep's target for this month and the last: (rep, YYYY-MM, EUR)."""
    last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    months = [last.isoformat()[:7], today.isoformat()[:7]]
    return [(rep, m, TARGET_BASE + TARGET_STEP * i) for m in months for i, rep in enumerate(w.SALES_REPS)]


async def set_targets(api: Api, ids: dict[str, dict[str, str]], today: date) -> int:
    """Set the reps' targets that are not set yet (or differ); how many were set."""
    changed = 0
    for rep, month, amount in targets(today):
        user = ids["user"][rep.email]
        held = (await api.get("/api/v1/sales/targets", month=month))["items"]
        if any(t["user_id"] == user and t["target"] == amount for t in held):
            continue
        status, doc = await api.call(
            "PUT", "/api/v1/sales/targets", {"user_id": user, "month": month, "amount": amount}
        )
        if status != 200:
            raise DemoError(f"PUT /api/v1/sales/targets: {status} {doc}")
        changed += 1
    return changed
