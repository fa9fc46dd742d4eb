"""Enricher settings, read once from the environment."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from leadline_shared.config import CommonSettings, ConfigError, setting


@dataclass(frozen=True)
class EnricherSettings(CommonSettings):
    """Where the enricher reads, writes and keeps the identity graph."""

    host: str = setting("127.0.0.1", "ENRICHER_HOST", "enricher health/metrics listen address")
    port: int = setting(8082, "ENRICHER_PORT", "enricher health/metrics listen port")
    identity_dsn: str = setting(
        "", "IDENTITY_DSN", "PostgreSQL DSN of the identity graph (empty: LEADLINE_PG_DSN)"
    )
    identity_schema: str = setting("identity", "IDENTITY_SCHEMA", "schema the enricher owns")
    group_id: str = setting("leadline-enricher", "ENRICHER_GROUP", "Kafka consumer group of the enricher")
    instance_id: str = setting(
        "", "INSTANCE_ID", "this replica's name in its transactional id (empty: host name)"
    )
    batch_max: int = setting(2000, "ENRICHER_BATCH_MAX", "most raw events handled in one transaction")
    kafka_timeout_ms: int = setting(
        40000,
        "ENRICHER_KAFKA_TIMEOUT_MS",
        "how long a batch's records may wait for Kafka before its transaction fails and is replayed",
    )
    identity_blocked: tuple[str, ...] = setting(
        (),
        "IDENTITY_BLOCKED",
        "identifier values that never count, besides the built-in list (comma-separated)",
    )
    limit_email: int = setting(5, "IDENTITY_LIMIT_EMAIL", "most emails one person may hold")
    limit_phone: int = setting(5, "IDENTITY_LIMIT_PHONE", "most phone numbers one person may hold")
    limit_user_id: int = setting(1, "IDENTITY_LIMIT_USER_ID", "most user ids one person may hold")
    limit_anon_id: int = setting(200, "IDENTITY_LIMIT_ANON_ID", "most visitor cookies one person may hold")
    identity_cache: int = setting(
        200000, "IDENTITY_CACHE", "identifiers kept in the enricher's in-process cache"
    )
    geoip_db: str = setting("", "GEOIP_DB", "path of a MaxMind-format GeoIP database (empty: no geo lookup)")
    scanner_seconds: float = setting(
        10.0, "SCANNER_SECONDS", "an email link clicked this soon after the send counts as a link scanner"
    )
    internal_hosts: tuple[str, ...] = setting(
        (), "INTERNAL_HOSTS", "the site's own hosts, whose referrers count as internal (comma-separated)"
    )

    @property
    def replica(self) -> str:
        """This replica's stable name: a restarted pod keeps it, so its old transactions get fenced."""
        return self.instance_id or socket.gethostname()

    def validate(self) -> None:
        """Limits below zero make no sense."""
        super().validate()
        for name in ("limit_email", "limit_phone", "limit_user_id", "limit_anon_id", "identity_cache"):
            if getattr(self, name) < 0:
                var = self.__dataclass_fields__[name].metadata["env"]
                raise ConfigError(f"{var}={getattr(self, name)!r}: must be ≥ 0")

    @property
    def limits(self) -> dict[str, int]:
        """Most identifiers of each type one person may hold."""
        return {
            "email": self.limit_email,
            "phone": self.limit_phone,
            "user_id": self.limit_user_id,
            "anon_id": self.limit_anon_id,
        }

    @property
    def dsn(self) -> str:
        """The identity DSN, falling back to the shared one."""
        return self.identity_dsn or self.pg_dsn
