"""crm-core behind a reverse proxy (http/forwarded.py): the sign-in back-off counts the real client, not the proxy,
and the session cookie is Secure when the client used https; an unlisted peer's headers are ignored."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from crm_core.web import PASSWORD, csrf_in, user_with_password
from leadline_crm.app import create_app
from leadline_crm.http import passwords
from leadline_crm.http.forwarded import forwarded_client, proxy_networks
from leadline_crm.settings import CrmSettings

PROXIES = proxy_networks(["10.0.0.0/8", "127.0.0.1/32"])


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("10.1.1.1", "203.0.113.7", "203.0.113.7"),
        ("10.1.1.1", "198.51.100.1, 203.0.113.7, 10.2.2.2", "203.0.113.7"),  # the client wrote the left one
        ("192.0.2.9", "203.0.113.7", "192.0.2.9"),  # not our proxy: its header is not believed
        ("10.1.1.1", "10.3.3.3", "10.3.3.3"),  # every hop ours: the left-most
        ("10.1.1.1", "unknown, 203.0.113.7", "203.0.113.7"),
        ("10.1.1.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.1.1.1", None, "10.1.1.1"),
    ],
)
def test_the_client_is_the_right_most_hop_that_is_not_our_proxy(
    peer: str, header: str | None, client: str
) -> None:
    assert forwarded_client(peer, header, PROXIES) == client


@pytest.fixture
async def proxied(crm_settings: CrmSettings) -> AsyncIterator[TestClient]:
    """crm-core that trusts the test client's address as its proxy."""
    settings = dataclasses.replace(crm_settings, trusted_proxies=("127.0.0.1/32",))
    server = TestServer(create_app(settings))
    await server.start_server()
    # the proxy speaks https to the browser: Secure cookies go back to it
    jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/"))])
    async with TestClient(server, cookie_jar=jar) as c:
        yield c


async def sign_in_from(
    client: TestClient, email: str, password: str, address: str, proto: str = "https"
) -> int:
    headers = {"X-Forwarded-For": address, "X-Forwarded-Proto": proto}
    form = await client.get("/app/login", headers=headers)
    resp = await client.post(
        "/app/login",
        data={"email": email, "password": password, "_csrf": csrf_in(await form.text())},
        headers=headers,
        allow_redirects=False,
    )
    if resp.status == 303:
        assert "Secure" in resp.headers["Set-Cookie"]
    return resp.status


@pytest.mark.integration
async def test_behind_a_trusted_proxy_the_cookie_is_secure_and_the_back_off_counts_each_client(
    proxied: TestClient,
) -> None:
    email = await user_with_password(proxied, "sales")
    assert await sign_in_from(proxied, email, PASSWORD, "203.0.113.7", "https") == 303
    for i in range(passwords.ADDRESS_LIMIT):
        status = await sign_in_from(proxied, f"u{i}@example.com", "guess", "203.0.113.66")
    assert status == 429
    assert await sign_in_from(proxied, email, PASSWORD, "203.0.113.66") == 429  # the sprayer waits
    assert (
        await sign_in_from(proxied, email, PASSWORD, "203.0.113.7") == 303
    )  # others behind the proxy do not


@pytest.mark.integration
async def test_an_unlisted_peer_cannot_claim_another_address_or_https(client: TestClient) -> None:
    email = await user_with_password(client, "sales")
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    form = await client.get("/app/login", headers=headers)
    resp = await client.post(
        "/app/login",
        data={"email": email, "password": PASSWORD, "_csrf": csrf_in(await form.text())},
        headers=headers,
        allow_redirects=False,
    )
    assert resp.status == 303
    assert "Secure" not in resp.headers["Set-Cookie"]
