"""crm-core settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from leadline_shared.config import CommonSettings, setting


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

    @property
    def dsn(self) -> str:
        """The CRM DSN, falling back to the shared one."""
        return self.crm_dsn or self.pg_dsn
