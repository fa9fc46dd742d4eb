"""Collector settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network

from leadline_shared.config import CommonSettings, ConfigError, setting

MAX_RECORD_BODY_KB = 900
"""The largest body cap: a Segment batch or a beacon is stored as one Kafka record (its body and some 500 bytes
of the request's facts), and the producer's and the broker's default limit is 1 MB a record."""


@dataclass(frozen=True)
class CollectorSettings(CommonSettings):
    """Where the collector listens and how it treats visitors."""

    host: str = setting("127.0.0.1", "COLLECTOR_HOST", "collector listen address")
    port: int = setting(8080, "COLLECTOR_PORT", "collector listen port")
    path_prefix: str = setting(
        "", "COLLECTOR_PATH_PREFIX", "extra path prefix for first-party serving, e.g. /ll"
    )
    cookie_domain: str = setting(
        "", "COOKIE_DOMAIN", "domain attribute of the ll_vid cookie (empty: host only)"
    )
    publish_timeout: float = setting(
        2.0, "PUBLISH_TIMEOUT", "seconds a publish may wait on Kafka before the request fails over"
    )
    fast_path: bool = setting(
        True,
        "COLLECTOR_FAST_PATH",
        "answer pixel, open and click GETs on the lean HTTP path (see fastpath.py)",
    )
    linger_ms: int = setting(
        2,
        "COLLECTOR_LINGER_MS",
        "how long the publisher gathers a batch of pixels and beacons, milliseconds (not calls awaiting Kafka)",
    )
    spool_dir: str = setting(
        ".run/spool", "SPOOL_DIR", "directory of the disk spool used while Kafka is down"
    )
    spool_max_mb: float = setting(
        1024.0, "SPOOL_MAX_MB", "spool size cap; when full, forms get 503 and pixels drop"
    )
    body_max_kb: int = setting(64, "BODY_MAX_KB", "largest request body accepted (413 above)")
    batch_max_kb: int = setting(512, "BATCH_MAX_KB", "largest Segment /v1/batch body accepted")
    form_rate_per_ip: float = setting(
        10.0, "FORM_RATE_PER_IP", "form posts per minute one IP may make (bursts of twice that)"
    )
    form_rate_per_form: float = setting(600.0, "FORM_RATE_PER_FORM", "form posts per minute one form accepts")
    workers: int = setting(
        1,
        "COLLECTOR_WORKERS",
        "processes serving the port (SO_REUSEPORT), about one per core; 1: no supervisor",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "TRUSTED_PROXIES",
        "networks (CIDR, comma-separated) of the proxies whose X-Forwarded-For is believed; empty: none",
    )

    def validate(self) -> None:
        """Also refuse a trusted proxy that is not a network, at start-up and by name, not at the first request."""
        super().validate()
        if self.workers < 1:
            raise ConfigError(f"LEADLINE_COLLECTOR_WORKERS={self.workers!r}: must be ≥ 1")
        for name, kb in (
            ("LEADLINE_BATCH_MAX_KB", self.batch_max_kb),
            ("LEADLINE_BODY_MAX_KB", self.body_max_kb),
        ):
            if not 1 <= kb <= MAX_RECORD_BODY_KB:  # a Segment batch or a beacon travels as one Kafka record
                raise ConfigError(
                    f"{name}={kb}: must be 1 to {MAX_RECORD_BODY_KB} (the body is stored as one Kafka record, "
                    "and Kafka takes at most 1 MB a record by default)"
                )
        for value in self.trusted_proxies:
            try:
                ip_network(value)
            except ValueError:
                raise ConfigError(
                    f"LEADLINE_TRUSTED_PROXIES: {value!r} is not a network (CIDR, e.g. 10.0.0.0/8 or fd00::/8)"
                ) from None
