"""Webhook signing secrets at rest (issue 16): what PostgreSQL holds never contains a secret, yet every delivery
still verifies with the Standard Webhooks reference library; secrets stored before migration 0060 are sealed at
start-up, a retired key's are sealed again under the first, and crm-core refuses to start with secrets it could not
open, naming LEADLINE_WEBHOOK_KEYS."""

from __future__ import annotations

import base64
import dataclasses

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from crm_core.webhooks.helpers import KEYS, SEALER, Receiver
from crm_core.webhooks.test_api import _until_delivered
from leadline_crm.app import create_app
from leadline_crm.http import auth
from leadline_crm.http.keys import POOL
from leadline_crm.settings import CrmSettings
from leadline_crm.webhooks import sealing, signing
from leadline_shared import config
from leadline_shared.config import ConfigError

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
INSERT = (
    "INSERT INTO webhook_subscriptions (url, event_types, secret, previous_secret, created_by)"
    " VALUES ('https://hooks.example.com/x', ARRAY['deal.won'], $1, $2, 'test') RETURNING id"
)


def _traces(secret: str) -> list[str]:
    """What would give a secret away: the secret, and its key bytes in the encodings a dump might show."""
    raw = base64.b64decode(secret.removeprefix(signing.PREFIX))
    return [secret, secret.removeprefix(signing.PREFIX), raw.hex(), base64.urlsafe_b64encode(raw).decode()]


async def _stored(db: asyncpg.Pool, sid: int) -> tuple[str, str | None]:
    row = await db.fetchrow("SELECT secret, previous_secret FROM webhook_subscriptions WHERE id = $1", sid)
    return row["secret"], row["previous_secret"]


async def test_the_stored_columns_never_hold_the_secret_and_deliveries_still_verify(
    client: TestClient, auth_headers: H, receiver: Receiver
) -> None:
    """Created and rotated through the API: neither column holds the secret (nor its key bytes), the app's
    dispatcher signs with what it opens, and the reference library verifies before and after the rotation."""
    admin = auth_headers["admin"]
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["person.created"], "allowed_network": "127.0.0.0/8"},
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    sid, secret = created["id"], created["secret"]
    receiver.secrets = [secret]
    db = client.server.app[POOL]
    current, _ = await _stored(db, sid)
    assert not any(trace in current for trace in _traces(secret))
    assert SEALER.open(current) == secret  # sealed with the test's first key
    assert (await client.post(f"/api/v1/webhooks/{sid}/test", headers=admin)).status == 202
    await _until_delivered(client, admin, sid, 1)

    rotated = await client.post(f"/api/v1/webhooks/{sid}/rotate-secret?overlap_seconds=3600", headers=admin)
    new = (await rotated.json())["secret"]
    current, previous = await _stored(db, sid)
    assert previous is not None
    both = current + " " + previous
    assert not any(trace in both for trace in _traces(secret) + _traces(new))
    assert (SEALER.open(current), SEALER.open(previous)) == (new, secret)
    receiver.secrets = [new]
    assert (await client.post(f"/api/v1/webhooks/{sid}/test", headers=admin)).status == 202
    await _until_delivered(client, admin, sid, 2)
    assert receiver.bad == []
    assert len(receiver.received) == 2


async def _unsealed_row(db: asyncpg.Pool, secret: str, previous: str | None) -> int:
    """A row as written before migration 0060 (its constraint lifted for the insert, then put back as the
    migration leaves it: NOT VALID)."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "ALTER TABLE webhook_subscriptions DROP CONSTRAINT webhook_subscriptions_secrets_sealed"
        )
        sid: int = await conn.fetchval(INSERT, secret, previous)
        await conn.execute(
            "ALTER TABLE webhook_subscriptions ADD CONSTRAINT webhook_subscriptions_secrets_sealed"
            " CHECK (secret NOT LIKE 'whsec\\_%' AND coalesce(previous_secret, '') NOT LIKE 'whsec\\_%')"
            " NOT VALID"
        )
    return sid


async def test_secrets_stored_before_the_migration_are_sealed_at_start_up(
    pool: asyncpg.Pool, crm_settings: CrmSettings
) -> None:
    """The data half of migration 0060: crm-core's start seals the secrets it finds in the clear (both of a
    rotation's), and from the migration on PostgreSQL refuses a secret in the clear."""
    old, new = signing.new_secret(), signing.new_secret()
    sid = await _unsealed_row(pool, new, old)
    async with TestClient(TestServer(create_app(crm_settings))):
        pass  # started and stopped: the start-up sealed
    current, previous = await _stored(pool, sid)
    assert previous is not None
    assert not any(t in current + previous for t in _traces(old) + _traces(new))
    assert (SEALER.open(current), SEALER.open(previous)) == (new, old)
    assert await sealing.seal_stored(pool, SEALER) == 0  # nothing left to do
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(INSERT, signing.new_secret(), None)


async def test_a_retired_keys_secrets_are_sealed_again_under_the_first(pool: asyncpg.Pool) -> None:
    """Key rotation: with the new key first and the old one after it, the start-up re-seals every secret under
    the new key, so the old one can then be dropped from LEADLINE_WEBHOOK_KEYS."""
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    secret = signing.new_secret()
    sid = await pool.fetchval(INSERT, sealing.Sealer.of(old_key).seal(secret), None)
    assert await sealing.seal_stored(pool, sealing.Sealer.of(f"{new_key},{old_key}")) == 1
    current, _ = await _stored(pool, sid)
    assert sealing.Sealer.of(new_key).open(current) == secret  # the new key alone opens it now
    with pytest.raises(sealing.NoKey):
        sealing.Sealer.of(old_key).open(current)


async def test_start_up_stops_when_stored_secrets_cannot_be_opened(pool: asyncpg.Pool) -> None:
    """No key, or only keys that do not fit: a clear error naming the variable (never a key); with nothing
    stored, no key is needed to start."""
    assert await sealing.seal_stored(pool, sealing.Sealer()) == 0
    await pool.fetchval(INSERT, SEALER.seal(signing.new_secret()), None)
    with pytest.raises(ConfigError, match="LEADLINE_WEBHOOK_KEYS is not set"):
        await sealing.seal_stored(pool, sealing.Sealer())
    stranger = Fernet.generate_key().decode()
    with pytest.raises(ConfigError, match="none of the keys in LEADLINE_WEBHOOK_KEYS") as caught:
        await sealing.seal_stored(pool, sealing.Sealer.of(stranger))
    assert stranger not in str(caught.value)


def test_a_key_that_is_not_a_fernet_key_is_refused_by_the_settings() -> None:
    """The settings name the variable and the key's place, never the value."""
    good = KEYS.split(",")[0]
    with pytest.raises(ConfigError, match=r"LEADLINE_WEBHOOK_KEYS: key 2 is not a Fernet key") as caught:
        config.load(CrmSettings, {"LEADLINE_WEBHOOK_KEYS": f"{good},not-a-key-at-all"})
    assert "not-a-key-at-all" not in str(caught.value)
    assert config.load(CrmSettings, {"LEADLINE_WEBHOOK_KEYS": KEYS}).webhook_keys == KEYS


async def test_without_a_key_a_new_subscription_is_refused_clearly(crm_settings: CrmSettings) -> None:
    """crm-core without LEADLINE_WEBHOOK_KEYS starts (nothing stored), but refuses to create a subscription
    whose secret it could not store sealed: 503 naming the variable, and nothing stored."""
    settings = dataclasses.replace(crm_settings, webhook_keys="")
    async with TestClient(TestServer(create_app(settings))) as keyless:
        db = keyless.server.app[POOL]
        async with db.acquire() as conn:
            token = await auth.create_token(conn, "t-admin", "admin", None)
        resp = await keyless.post(
            "/api/v1/webhooks",
            json={"url": "https://hooks.example.com/x", "event_types": ["deal.won"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        assert "LEADLINE_WEBHOOK_KEYS is not set" in (await resp.json())["detail"]
        assert await db.fetchval("SELECT count(*) FROM webhook_subscriptions") == 0
