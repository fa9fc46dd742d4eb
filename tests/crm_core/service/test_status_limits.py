"""The public status page's rate limit (issue 14): lookups per client address and per tracking number a minute,
past which a readable 429 page with Retry-After, and a limit that answers the same for a number that exists and
one that does not, so it cannot be used to find numbers either."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_crm.app import create_app
from leadline_crm.service import support
from leadline_crm.service.attempts import Attempts
from leadline_crm.settings import CrmSettings

TYPED = re.compile(r'name="(?:tracking_number|email|_token)" value="[^"]*"')


@pytest.fixture
async def proxied(crm_settings: CrmSettings) -> AsyncIterator[TestClient]:
    """crm-core behind a proxy it trusts (the test client), so each test picks the client's address."""
    settings = dataclasses.replace(crm_settings, trusted_proxies=("127.0.0.1/32",))
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def _case(conn: asyncpg.Connection, email: str, number: str) -> None:
    person = await conn.fetchval(
        "INSERT INTO persons (person_id, first_seen, last_seen, emails) VALUES (gen_random_uuid(), now(), now(),"
        " ARRAY[$1]) RETURNING person_id",
        email,
    )
    await conn.execute(
        "INSERT INTO cases (tracking_number, person_id, type, subject, description, due_at)"
        " VALUES ($1, $2, 'fault', 'It hums', 'Loud', now() + interval '1 day')",
        number, person,
    )  # fmt: skip


async def _lookup(client: TestClient, address: str, number: str, email: str) -> tuple[int, str, str | None]:
    headers = {"X-Forwarded-For": address}
    form = await (await client.get("/support/status", headers=headers)).text()
    token = re.search(r'name="_token" value="([^"]+)"', form)
    assert token is not None
    data = {"tracking_number": number, "email": email, "_token": token[1]}
    resp = await client.post("/support/status", data=data, headers=headers)
    return resp.status, await resp.text(), resp.headers.get("Retry-After")


@pytest.mark.integration
async def test_a_number_gets_five_tries_a_minute_whether_or_not_it_exists(
    proxied: TestClient, crm_conn: asyncpg.Connection
) -> None:
    await _case(crm_conn, "ada@example.com", "SR-2026-000101")
    await _case(crm_conn, "bo@example.com", "SR-2026-000102")
    answers = {}
    for address, number in (("203.0.113.1", "SR-2026-000101"), ("203.0.113.2", "SR-2026-999999")):
        tries = [
            await _lookup(proxied, address, number, f"guess{i}@example.com")
            for i in range(support.PER_NUMBER)
        ]
        assert [status for status, _, _ in tries] == [404] * support.PER_NUMBER
        answers[number] = await _lookup(
            proxied, address, number, "ada@example.com"
        )  # the right email, too late
    status, html, retry = answers["SR-2026-000101"]
    assert status == 429
    assert retry is not None
    assert 1 <= int(retry) <= 60
    assert f"Please wait {retry} seconds and try again." in html
    assert 'name="tracking_number"' in html  # the form, to try again later
    assert "It hums" not in html
    unknown = answers["SR-2026-999999"]
    assert unknown[0] == 429
    assert TYPED.sub("", unknown[1]) == TYPED.sub("", html)
    # another number is not held up, from either address
    found = await _lookup(proxied, "203.0.113.1", "SR-2026-000102", "bo@example.com")
    assert found[0] == 200
    assert "It hums" in found[1]


@pytest.mark.integration
async def test_an_address_gets_ten_tries_a_minute(proxied: TestClient, crm_conn: asyncpg.Connection) -> None:
    await _case(crm_conn, "cy@example.com", "SR-2026-000201")
    for i in range(support.PER_ADDRESS):
        assert (await _lookup(proxied, "198.51.100.7", f"SR-2026-{300 + i:06d}", "cy@example.com"))[0] == 404
    status, html, retry = await _lookup(proxied, "198.51.100.7", "SR-2026-000201", "cy@example.com")
    assert status == 429
    assert retry is not None
    assert "Too many tries in a minute" in html
    status, html, _ = await _lookup(proxied, "198.51.100.8", "SR-2026-000201", "cy@example.com")
    assert status == 200
    assert "It hums" in html


def test_attempts_slide_with_the_minute() -> None:
    attempts = Attempts(limit=3, window=60)
    assert [attempts.take("k", now=t) for t in (0, 10, 20)] == [0, 0, 0]
    assert attempts.take("k", now=30) == 30  # until the first one is a minute old
    assert attempts.take("other", now=30) == 0
    assert attempts.take("k", now=60) == 0  # the first has left the window
    assert attempts.take("k", now=61) == 9  # refused tries are not counted: the one at 10 leaves at 70


def test_attempts_forget_the_least_recently_used_keys_beyond_their_bound() -> None:
    attempts = Attempts(limit=1, window=60, max_keys=2)
    for key in ("a", "b", "c"):
        assert attempts.take(key, now=0) == 0
    assert attempts.take("a", now=1) == 0  # forgotten: a fresh start
    assert attempts.take("c", now=1) == 59


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # the same subscriber's network
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (None, ""),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64_network(remote: str | None, key: str) -> None:
    assert support.client_key(remote) == key
