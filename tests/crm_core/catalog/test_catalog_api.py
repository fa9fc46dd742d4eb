"""The catalogue routes (products, purchases, activities, campaigns, ads, forms, ...): each one's happy path,
its 401/403/404/422, lifecycle effects of purchases and rep activities, and config entries for the collector."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_crm.admin.routes import RESOURCES as ADMIN_RESOURCES
from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.catalog.routes import RESOURCES as CATALOG_RESOURCES
from leadline_crm.http.errors import FOREIGN_KEYS
from leadline_crm.people.records import RESOURCES as PEOPLE_RESOURCES
from leadline_crm.settings import CrmSettings
from leadline_shared import kafka, pg, siteconfig
from support import read_topic

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
MISSING_UUID = "01900000-0000-7000-8000-000000000000"


async def post(
    client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    resp = await client.post(path, json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


async def person(client: TestClient, admin: dict[str, str], email: str = "p@example.com") -> str:
    return str((await post(client, "/api/v1/leads", {"email": email, "force": True}, admin))["id"])


async def product(client: TestClient, admin: dict[str, str], sku: str = "W-1") -> str:
    body = {"sku": sku, "name": "Widget", "list_price": 12.5, "info": "A widget."}
    return str((await post(client, "/api/v1/products", body, admin))["id"])


async def affiliate(client: TestClient, admin: dict[str, str]) -> str:
    await post(client, "/api/v1/affiliates", {"affiliate_id": "aff9", "name": "Aff Nine"}, admin)
    return "aff9"


Setup = Callable[[TestClient, dict[str, str]], Awaitable[dict[str, Any]]]


async def _purchase(c: TestClient, a: dict[str, str]) -> dict[str, Any]:
    return {"person_id": await person(c, a), "product_id": await product(c, a), "quantity": 2}


async def _activity(c: TestClient, a: dict[str, str]) -> dict[str, Any]:
    return {"person_id": await person(c, a), "kind": "note", "outcome": "left a message"}


async def _feedback(c: TestClient, a: dict[str, str]) -> dict[str, Any]:
    return {"person_id": await person(c, a), "rating": 4, "text": "good service"}


async def _ad(c: TestClient, a: dict[str, str]) -> dict[str, Any]:
    return {
        "affiliate_id": await affiliate(c, a),
        "ad_id": "banner1",
        "landing_url": "https://shop.example/l",
    }


async def _const(body: dict[str, Any]) -> dict[str, Any]:
    return body


VALID: dict[str, tuple[Setup, dict[str, Any], dict[str, Any]]] = {
    # resource: (make a valid create body, a valid change, an invalid create body)
    "products": (
        lambda c, a: _const({"sku": "S-1", "name": "Suite", "list_price": 99}),
        {"list_price": 89.5},
        {"sku": "S-1", "name": "X", "list_price": -1},
    ),
    "purchases": (
        _purchase,
        {"special_instructions": "gift wrap"},
        {"person_id": MISSING_UUID, "quantity": 0},
    ),
    "feedback": (_feedback, {}, {"person_id": MISSING_UUID, "rating": 9}),
    "activities": (_activity, {"outcome": "called back"}, {"person_id": MISSING_UUID, "kind": "dance"}),
    "campaigns": (
        lambda c, a: _const({"name": "Spring", "channel": "email", "starts_on": "2026-03-01"}),
        {"name": "Spring 2"},
        {"name": ""},
    ),
    "affiliates": (
        lambda c, a: _const({"affiliate_id": "aff1", "name": "Aff One", "landing_url": "https://a.example/"}),
        {"name": "Aff 1"},
        {"affiliate_id": "bad id!", "name": "x"},
    ),
    "ads": (
        _ad,
        {"landing_url": "https://shop.example/l2"},
        {"affiliate_id": "aff9", "ad_id": "x", "landing_url": "javascript:alert(1)"},
    ),
    "forms": (
        lambda c, a: _const(
            {
                "key": "contact",
                "fields": ["email", "name"],
                "thank_you_url": "/thanks",
                "allowed_origins": ["https://shop.example"],
            }
        ),
        {"thank_you_url": "/merci"},
        {"key": "contact", "fields": []},
    ),
    "sources": (
        lambda c, a: _const({"write_key": "wk_1", "name": "Main site"}),
        {"name": "Main"},
        {"write_key": ""},
    ),
    "email_sends": (lambda c, a: _const({"subject": "Hello"}), {"subject": "Hi"}, {"subject": 5}),
    "field_definitions": (
        lambda c, a: _const({"name": "plan", "label": "Plan", "type": "choice", "choices": ["a"]}),
        {"label": "Plan name"},
        {"name": "Plan!", "label": "x", "type": "text"},
    ),
    "score_rules": (
        lambda c, a: _const(
            {"name": "demo", "event_type": "page_view", "url_contains": "/demo", "points": 3}
        ),
        {"points": 4},
        {"name": "x", "event_type": "nope", "points": 1},
    ),
    "users": (
        lambda c, a: _const({"email": "new.rep@example.com", "name": "New Rep", "role": "sales"}),
        {"active": False},
        {"email": "x", "name": "y", "role": "boss"},
    ),
}

RESOURCES = (*PEOPLE_RESOURCES, *CATALOG_RESOURCES, *ADMIN_RESOURCES)


def test_every_resource_has_a_test_case() -> None:
    assert {r.path for r in RESOURCES} == set(VALID)


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.path)
async def test_resource_routes_happy_paths_and_errors(client: TestClient, auth_headers: H, res: Any) -> None:
    admin = auth_headers["admin"]
    writer = auth_headers[sorted(res.write_roles - {"admin"})[0]] if res.write_roles - {"admin"} else admin
    make, change, invalid = VALID[res.path]
    base = f"/api/v1/{res.path}"
    body = await make(client, admin)

    assert (await client.post(base, json=body)).status == 401
    assert (await client.post(base, json=body, headers=auth_headers["read_only"])).status == 403
    bad = await client.post(base, json=invalid, headers=writer)
    assert bad.status == 422, await bad.text()
    assert bad.headers["Content-Type"] == "application/problem+json"

    created = await post(client, base, body, writer)
    key = str(created[res.key])
    for name, value in body.items():
        assert created[name] == value

    got = await client.get(f"{base}/{key}", headers=auth_headers["read_only"])
    assert got.status == 200
    assert (await got.json())[res.key] == created[res.key]
    listed = await (await client.get(base, headers=auth_headers["read_only"])).json()
    assert created[res.key] in [item[res.key] for item in listed["items"]]
    assert listed["next"] is None

    missing = f"{base}/{MISSING_UUID if res.generated_key else 'no-such-key'}"
    assert (await client.get(missing, headers=admin)).status == 404
    if "update" in res.ops:
        if change:
            changed = await client.patch(f"{base}/{key}", json=change, headers=writer)
            assert changed.status == 200, await changed.text()
            for name, value in change.items():
                assert (await changed.json())[name] == value
        assert (await client.patch(missing, json=change or {"x": 1}, headers=writer)).status in (404, 422)
        assert (await client.patch(f"{base}/{key}", json={"nope": 1}, headers=writer)).status == 422
        assert (
            await client.patch(f"{base}/{key}", json=change or {"x": 1}, headers=auth_headers["read_only"])
        ).status == 403
    if "delete" in res.ops:
        assert (await client.delete(f"{base}/{key}", headers=auth_headers["read_only"])).status == 403
        assert (await client.delete(f"{base}/{key}", headers=writer)).status == 204
        assert (await client.get(f"{base}/{key}", headers=admin)).status == 404
        assert (await client.delete(f"{base}/{key}", headers=writer)).status == 404


async def test_lists_page_with_a_cursor(client: TestClient, auth_headers: H) -> None:
    admin = auth_headers["admin"]
    for i in range(5):
        await post(client, "/api/v1/campaigns", {"name": f"c{i}"}, admin)
    names, cursor = [], None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await (await client.get("/api/v1/campaigns", params=params, headers=admin)).json()
        names += [c["name"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert names == [f"c{i}" for i in range(5)]
    assert (await client.get("/api/v1/campaigns", params={"cursor": "x"}, headers=admin)).status == 422


async def test_a_purchase_makes_a_customer_and_a_rep_call_makes_a_prospect(
    client: TestClient, auth_headers: H
) -> None:
    sales, admin = auth_headers["sales"], auth_headers["admin"]
    buyer, caller = (
        await person(client, admin, "buyer@example.com"),
        await person(client, admin, "call@example.com"),
    )
    prod = await product(client, admin)
    bought = await post(
        client, "/api/v1/purchases", {"person_id": buyer, "product_id": prod, "quantity": 3}, sales
    )
    assert bought["price_paid"] == 37.5  # list price x quantity when no price is given
    assert bought["sales_rep"] is not None  # the calling rep
    await post(
        client,
        "/api/v1/activities",
        {"person_id": caller, "kind": "phone_call", "outcome": "interested"},
        sales,
    )
    stages = {}
    for pid in (buyer, caller):
        stages[pid] = (await (await client.get(f"/api/v1/persons/{pid}", headers=sales)).json())["stage"]
    assert stages == {buyer: "customer", caller: "prospect"}
    timeline = await (await client.get(f"/api/v1/persons/{buyer}/timeline", headers=sales)).json()
    kinds = [i["kind"] for i in timeline["items"]]
    assert "purchase" in kinds
    move = next(i for i in timeline["items"] if i["kind"] == "stage" and i["data"]["to"] == "customer")
    assert move["data"]["cause_event_id"] == f"purchase:{bought['id']}"
    filtered = await (
        await client.get("/api/v1/purchases", params={"person_id": buyer}, headers=sales)
    ).json()
    assert [p["id"] for p in filtered["items"]] == [bought["id"]]


async def test_forms_ads_and_write_keys_reach_the_collectors_config_topic(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    mk = auth_headers["marketing"]
    await post(client, "/api/v1/forms", {"key": "f1", "fields": ["email"], "thank_you_url": "/t"}, mk)
    await post(client, "/api/v1/affiliates", {"affiliate_id": "a1", "name": "A"}, mk)
    ad = await post(
        client, "/api/v1/ads", {"affiliate_id": "a1", "ad_id": "x1", "landing_url": "https://l.example/"}, mk
    )
    await post(client, "/api/v1/sources", {"write_key": "wk", "name": "Site"}, mk)
    await client.patch(f"/api/v1/ads/{ad['id']}", json={"ad_id": "x2"}, headers=mk)
    assert (await client.delete("/api/v1/forms/f1", headers=mk)).status == 204

    messages = await read_topic(kafka_bootstrap, topics.config, 6)
    seen = [siteconfig.decode(k or b"", v) for k, v, _ in messages]
    assert seen[0] == (
        "form:f1",
        siteconfig.FormConfig(key="f1", fields=("email",), thank_you_url="/t", required=("email",)),
    )
    assert seen[1] == (
        "ad:a1/x1",
        siteconfig.AdConfig(affiliate_id="a1", ad_id="x1", landing_url="https://l.example/"),
    )
    assert seen[2] == ("source:wk", siteconfig.SourceConfig(write_key="wk", name="Site"))
    assert seen[3] == ("ad:a1/x1", None)  # the old key is tombstoned when an ad is renamed
    assert seen[4][0] == "ad:a1/x2"
    assert seen[5] == ("form:f1", None)


async def test_admins_tune_scoring_settings(client: TestClient, auth_headers: H) -> None:
    admin = auth_headers["admin"]
    current = await (await client.get("/api/v1/scoring", headers=auth_headers["read_only"])).json()
    assert current == {"half_life_days": 30, "prospect_threshold": 50, "repeat_visit_days": 3}
    changed = await client.patch("/api/v1/scoring", json={"prospect_threshold": 25}, headers=admin)
    assert (await changed.json())["prospect_threshold"] == 25
    assert (await client.patch("/api/v1/scoring", json={"half_life_days": 0}, headers=admin)).status == 422
    assert (
        await client.patch("/api/v1/scoring", json={"prospect_threshold": 1}, headers=auth_headers["sales"])
    ).status == 403
    assert (await client.get("/api/v1/scoring")).status == 401


async def test_config_entries_are_republished_when_crm_core_starts(
    crm_settings: CrmSettings, pg_dsn: str, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """A change committed just before a crash still reaches the collector: crm-core publishes every entry at
    start-up."""
    await pg.migrate(pg_dsn, crm_settings.crm_schema, MIGRATIONS)
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": crm_settings.crm_schema})
    try:
        await conn.execute(
            "INSERT INTO forms (key, fields, thank_you_url) VALUES ('late', '[\"email\"]', '/ok')"
        )
    finally:
        await conn.close()
    async with TestClient(TestServer(create_app(crm_settings))):
        messages = await read_topic(kafka_bootstrap, topics.config, 1)
    assert siteconfig.decode(messages[0][0] or b"", messages[0][1]) == (
        "form:late",
        siteconfig.FormConfig(key="late", fields=("email",), thank_you_url="/ok"),
    )


async def problem_of(resp: Any, status: int) -> str:
    """The detail of a problem document answered with ``status``."""
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"] == "application/problem+json"
    detail: str = (await resp.json())["detail"]
    return detail


async def test_a_campaign_cannot_end_before_it_starts(client: TestClient, auth_headers: H) -> None:
    """Reports by campaign period went wrong on campaigns that ended before they started; such dates are refused
    on create, and on a change where the date already stored counts."""
    mk = auth_headers["marketing"]
    backwards = {"name": "Backwards", "starts_on": "2026-03-10", "ends_on": "2026-03-01"}
    detail = await problem_of(await client.post("/api/v1/campaigns", json=backwards, headers=mk), 422)
    assert detail == "ends_on: 2026-03-01 is before starts_on 2026-03-10"
    one_day = await post(
        client,
        "/api/v1/campaigns",
        {"name": "One day", "starts_on": "2026-03-10", "ends_on": "2026-03-10"},
        mk,
    )
    url = f"/api/v1/campaigns/{one_day['id']}"
    detail = await problem_of(await client.patch(url, json={"ends_on": "2026-03-09"}, headers=mk), 422)
    assert detail == "ends_on: 2026-03-09 is before starts_on 2026-03-10"
    detail = await problem_of(await client.patch(url, json={"starts_on": "2026-04-01"}, headers=mk), 422)
    assert detail == "ends_on: 2026-03-10 is before starts_on 2026-04-01"
    stored = await (await client.get(url, headers=mk)).json()
    assert (stored["starts_on"], stored["ends_on"]) == ("2026-03-10", "2026-03-10")  # nothing half-applied
    moved = await client.patch(url, json={"starts_on": "2026-04-01", "ends_on": None}, headers=mk)
    assert moved.status == 200


async def test_a_reference_to_a_missing_record_names_the_field_and_what_it_refers_to(
    client: TestClient, auth_headers: H
) -> None:
    """A 422 said "ads_campaign_id_fkey"; the caller needs to know which field points at nothing."""
    mk, admin = auth_headers["marketing"], auth_headers["admin"]
    await affiliate(client, admin)
    ad = {
        "affiliate_id": "aff9",
        "ad_id": "b1",
        "landing_url": "https://l.example/",
        "campaign_id": MISSING_UUID,
    }
    detail = await problem_of(await client.post("/api/v1/ads", json=ad, headers=mk), 422)
    assert detail == f"campaign_id: no campaign with id {MISSING_UUID}"
    orphan_ad = {**ad, "affiliate_id": "nobody", "campaign_id": None}
    detail = await problem_of(await client.post("/api/v1/ads", json=orphan_ad, headers=mk), 422)
    assert detail == "affiliate_id: no affiliate with id nobody"
    note = {"person_id": MISSING_UUID, "kind": "note"}
    detail = await problem_of(await client.post("/api/v1/activities", json=note, headers=admin), 422)
    assert detail == f"person_id: no person with id {MISSING_UUID}"
    sold = await post(
        client,
        "/api/v1/purchases",
        {"person_id": await person(client, admin), "product_id": await product(client, admin), "quantity": 1},
        admin,
    )
    detail = await problem_of(
        await client.delete(f"/api/v1/products/{sold['product_id']}", headers=admin), 409
    )
    assert detail == "purchases still refer to this product"


async def test_every_foreign_key_has_a_message(crm_conn: asyncpg.Connection) -> None:
    """A foreign key added later without an entry would fall back to a message naming no field."""
    names = await crm_conn.fetch(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
    )
    assert {r["conname"] for r in names} <= set(FOREIGN_KEYS)
