"""crm-core settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from leadline_shared.config import CommonSettings, ConfigError, setting


@dataclass(frozen=True)
class CrmSettings(CommonSettings):
    """Where crm-core listens and keeps the CRM."""

    host: str = setting("127.0.0.1", "CRM_HOST", "crm-core listen address (API and web app)")
    port: int = setting(8081, "CRM_PORT", "crm-core listen port")
    crm_dsn: str = setting("", "CRM_DSN", "PostgreSQL DSN of the CRM (empty: LEADLINE_PG_DSN)")
    crm_schema: str = setting("crm", "CRM_SCHEMA", "schema crm-core owns")
    group_id: str = setting("leadline-crm-core", "CRM_GROUP", "Kafka consumer group of crm-core")
    batch_max: int = setting(5000, "CRM_BATCH_MAX", "most events fetched and written per ingestion batch")
    outbox_stale_seconds: float = setting(
        60.0,
        "CRM_OUTBOX_STALE_SECONDS",
        "crm-core is not ready while its outbox relay leads and a message has waited longer than this",
    )

    collector_public_url: str = setting(
        "http://127.0.0.1:8080",
        "COLLECTOR_PUBLIC_URL",
        "the collector's URL as email recipients reach it (with its path prefix, if any): POST /api/v1/links"
        " answers click and open URLs under it",
    )

    webhook_keys: str = setting(
        "",
        "WEBHOOK_KEYS",
        "Fernet keys (comma-separated) that encrypt webhook signing secrets at rest; the first encrypts, all decrypt"
        " (rotation); `make up` writes .run/webhook.keys",
        secret=True,
    )

    trusted_proxies: tuple[str, ...] = setting(
        (),
        "TRUSTED_PROXIES",
        "networks (CIDR, comma-separated) of the proxies whose X-Forwarded-For is believed; empty: none",
    )

    def validate(self) -> None:
        """Also refuse a collector URL that would put broken links in every email sent, and a trusted proxy that
        is not a network."""
        super().validate()
        for value in self.trusted_proxies:
            try:
                ip_network(value)
            except ValueError:
                raise ConfigError(
                    f"LEADLINE_TRUSTED_PROXIES: {value!r} is not a network (CIDR, e.g. 10.0.0.0/8 or fd00::/8)"
                ) from None
        for n, key in enumerate((k.strip() for k in self.webhook_keys.split(",") if k.strip()), 1):
            try:
                Fernet(key.encode())
            except ValueError:
                raise ConfigError(
                    f"LEADLINE_WEBHOOK_KEYS: key {n} is not a Fernet key (32 url-safe base64 bytes, as"
                    " Fernet.generate_key() makes)"
                ) from None
        parts = urlsplit(self.collector_public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(
                f"LEADLINE_COLLECTOR_PUBLIC_URL={self.collector_public_url!r}: expected an http(s) URL"
                " such as https://t.example.com/ll"
            )

    @property
    def dsn(self) -> str:
        """The CRM DSN, falling back to the shared one."""
        return self.crm_dsn or self.pg_dsn
