"""Enricher settings, read once from the environment."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from leadline_shared.config import CommonSettings, setting


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
    batch_max: int = setting(500, "ENRICHER_BATCH_MAX", "most raw events handled in one transaction")

    @property
    def replica(self) -> str:
        """This replica's stable name: a restarted pod keeps it, so its old transactions get fenced."""
        return self.instance_id or socket.gethostname()

    @property
    def dsn(self) -> str:
        """The identity DSN, falling back to the shared one."""
        return self.identity_dsn or self.pg_dsn
