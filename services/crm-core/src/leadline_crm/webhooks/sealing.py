"""Webhook signing secrets encrypted at rest, so a database dump or a read-only SQL session does not hand out the
keys that make Leadline's signatures.

A secret must be read back to sign, so it is encrypted (not hashed) with a key PostgreSQL never sees:
``LEADLINE_WEBHOOK_KEYS``, one or more Fernet keys (AES-128-CBC with HMAC-SHA256, from the ``cryptography``
package), comma-separated. The first key seals; every key opens, which is how the key is rotated:

1. make a key (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``) and
   put it first, the old one after it;
2. restart crm-core: at start-up (:func:`seal_stored`) every stored secret the first key cannot open is sealed
   again under it (logged as a count);
3. remove the old key from the list at the next restart.

Rows written before migration 0060 hold the secret as it is (``whsec_…``): the same start-up step seals them, which
is the data half of that migration (SQL cannot encrypt with a key it must never hold). The migration's constraint
refuses any new plaintext secret. Without any key configured crm-core still starts as long as no secret is stored
(new subscriptions are then refused with a clear answer); with stored secrets it refuses to start, naming the
variable, since it could not sign a single delivery.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from leadline_crm.webhooks import queries, signing
from leadline_shared.config import ConfigError

log = logging.getLogger(__name__)

VARIABLE = "LEADLINE_WEBHOOK_KEYS"


class NoKey(RuntimeError):
    """No key is configured, or none of them opens a stored secret."""


@dataclass(frozen=True)
class Sealer:
    """Seals and opens signing secrets with the configured keys (none: :attr:`ready` is False)."""

    keys: tuple[Fernet, ...] = ()

    @classmethod
    def of(cls, spec: str) -> Sealer:
        """From ``LEADLINE_WEBHOOK_KEYS``'s value (checked by the settings: each part a Fernet key)."""
        return cls(tuple(Fernet(k.strip().encode()) for k in spec.split(",") if k.strip()))

    @property
    def ready(self) -> bool:
        """Whether a key is configured."""
        return bool(self.keys)

    def seal(self, secret: str) -> str:
        """``secret`` encrypted under the first key (a Fernet token, ASCII)."""
        if not self.keys:
            raise NoKey(f"webhook signing secrets cannot be stored: {VARIABLE} is not set")
        return self.keys[0].encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret a token holds; NoKey when no configured key opens it."""
        return _open(self.keys, sealed)

    def current(self, sealed: str) -> bool:
        """Whether ``sealed`` is sealed under the first key (nothing to do at a rotation)."""
        try:
            self.keys[0].decrypt(sealed.encode())
        except (InvalidToken, IndexError):
            return False
        return True

    def reseal(self, sealed: str) -> str:
        """``sealed`` opened with any key and sealed again under the first."""
        try:
            return MultiFernet(list(self.keys)).rotate(sealed.encode()).decode()
        except InvalidToken:
            raise NoKey(f"a stored webhook secret opens with none of the keys in {VARIABLE}") from None


SEALER = web.AppKey("webhook_sealer", Sealer)
"""The app's sealer, made once from the settings (app.py)."""


@functools.lru_cache(maxsize=4096)
def _open(keys: tuple[Fernet, ...], sealed: str) -> str:
    """Cached: the dispatcher opens the same few secrets thousands of times a second (HMAC check and AES each)."""
    if not keys:
        raise NoKey(f"cannot sign: {VARIABLE} is not set")
    try:
        return MultiFernet(list(keys)).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise NoKey(f"cannot sign: the secret opens with none of the keys in {VARIABLE}") from None


def is_plain(stored: str | None) -> bool:
    """Whether a stored value is a secret as it is (written before migration 0060)."""
    return stored is not None and stored.startswith(signing.PREFIX)


async def seal_stored(pool: asyncpg.Pool, sealer: Sealer) -> int:
    """Seal what is stored in the clear and reseal what the first key does not open (at start-up, after the
    migrations); how many rows changed. ConfigError when secrets are stored and no configured key can open them."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(queries.STORED_SECRETS)
        if rows and not sealer.ready:
            raise ConfigError(
                f"{VARIABLE} is not set, but {len(rows)} webhook subscription(s) have signing secrets to open:"
                " set it to the keys they were sealed with (docs/architecture.md §16)"
            )
        if not sealer.ready:
            log.warning(f"{VARIABLE} is empty: webhook subscriptions cannot be created until it is set")
            return 0
        changed = 0
        for row in rows:
            try:
                new = [_sealed(sealer, row[c]) for c in ("secret", "previous_secret")]
            except NoKey as exc:
                raise ConfigError(f"webhook subscription {row['id']}: {exc}") from None
            if new != [row["secret"], row["previous_secret"]]:
                await conn.execute(queries.SEAL_SECRETS, row["id"], *new)
                changed += 1
    if changed:
        log.info("webhook signing secrets sealed under the first key", extra={"subscriptions": changed})
    return changed


def _sealed(sealer: Sealer, stored: str | None) -> str | None:
    if stored is None:
        return None
    if is_plain(stored):
        return sealer.seal(stored)
    return stored if sealer.current(stored) else sealer.reseal(stored)
