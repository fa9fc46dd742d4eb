"""Settings read once from ``LEADLINE_*`` environment variables into frozen dataclasses.

Each service declares one frozen dataclass whose fields are made with :func:`setting`; :func:`load` fills it
from the environment, parsing by the field's type, and fails with a message naming the variable and the bad
value. Defaults live in the dataclasses, so the README's variable table is generated from them
(``leadline config``) and never drifts.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from leadline_shared import identifiers

PREFIX = "LEADLINE_"
T = TypeVar("T")


class ConfigError(ValueError):
    """A variable is set to a value its setting cannot take."""


def setting(default: Any, env: str, help: str, secret: bool = False) -> Any:
    """Declare a dataclass field read from ``LEADLINE_<env>``; ``secret`` keeps it out of logs."""
    meta = {"env": PREFIX + env, "help": help, "secret": secret}
    if isinstance(default, list | dict | set):
        raise TypeError("use a tuple default for a list setting")
    return dataclasses.field(default=default, metadata=meta)


def _parse(raw: str, kind: Any, var: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):  # X | None: empty means None
        inner = next(a for a in typing.get_args(kind) if a is not type(None))
        return None if raw == "" else _parse(raw, inner, var)
    if kind is str:
        return raw
    if kind is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{var}={raw!r}: expected a boolean (true/false)")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r}: expected {kind.__name__}") from None
    if kind is Path:
        return Path(raw)
    if origin is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    raise TypeError(f"unsupported setting type {kind!r} for {var}")


def load(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from the environment; unset variables keep the dataclass defaults."""
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        var = field.metadata.get("env")
        if var and var in env:
            values[field.name] = _parse(env[var], hints[field.name], var)
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate()
    return instance


def describe(obj: Any) -> dict[str, Any]:
    """The settings as a dict fit for a log line: secrets masked."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.metadata.get("secret") and value:
            value = "***"
        elif isinstance(value, str) and "://" in value and "@" in value:
            value = _mask_dsn(value)
        out[field.name] = str(value) if isinstance(value, Path) else value
    return out


def _mask_dsn(dsn: str) -> str:
    """Hide a password in a URL-style DSN."""
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"


def markdown_table(*classes: type[Any]) -> str:
    """Every variable of the given settings classes as a Markdown table (for README.md)."""
    rows: dict[str, tuple[str, str]] = {}
    for cls in classes:
        for field in dataclasses.fields(cls):
            var = field.metadata.get("env")
            if not var or var in rows:
                continue
            default = field.default
            shown = ",".join(default) if isinstance(default, tuple) else default
            rows[var] = (f"`{shown}`" if shown not in ("", None) else "(empty)", field.metadata["help"])
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{var}` | {d} | {h} |" for var, (d, h) in sorted(rows.items())]
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class CommonSettings:
    """What every service needs: Kafka, topic names, logging, shutdown."""

    kafka_bootstrap: str = setting(
        "127.0.0.1:9092", "KAFKA_BOOTSTRAP", "Kafka bootstrap servers (host:port,…)"
    )
    topic_prefix: str = setting("", "TOPIC_PREFIX", "prefix for every topic name (tests use one per test)")
    topic_partitions: int = setting(6, "TOPIC_PARTITIONS", "partitions for topics the service creates")
    create_topics: bool = setting(True, "CREATE_TOPICS", "create missing topics at start-up")
    log_level: str = setting("INFO", "LOG_LEVEL", "log level: DEBUG, INFO, WARNING, ERROR")
    drain_seconds: float = setting(
        0.0, "DRAIN_SECONDS", "after SIGTERM keep serving this long (load balancer drain), then stop"
    )
    pg_dsn: str = setting(
        "postgresql://postgres@127.0.0.1:5432/leadline", "PG_DSN", "default PostgreSQL DSN for all services"
    )
    migrate_on_start: bool = setting(
        True,
        "MIGRATE_ON_START",
        "apply the service's database migrations at start-up; false where `leadline migrate` runs them first"
        " (the Helm chart's hook Job)",
    )
    phone_region: str = setting(
        "US",
        "PHONE_REGION",
        "region in which every service reads phone numbers written without +country code, e.g. DE",
    )
    uvloop: bool = setting(True, "UVLOOP", "run the service on uvloop (libuv) instead of asyncio's own loop")
    link_keys: str = setting(
        "",
        "LINK_KEYS",
        "email-link signing keys `kid:secret,…`; the first signs, all verify (rotation)",
        secret=True,
    )

    def validate(self) -> None:
        """Reject values that would only fail later, far from their cause."""
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(
                f"LEADLINE_LOG_LEVEL={self.log_level!r}: expected DEBUG, INFO, WARNING or ERROR"
            )
        if self.topic_partitions < 1:
            raise ConfigError(f"LEADLINE_TOPIC_PARTITIONS={self.topic_partitions!r}: must be ≥ 1")
        if not identifiers.valid_region(self.phone_region):
            raise ConfigError(f"LEADLINE_PHONE_REGION={self.phone_region!r}: not a region, e.g. US, GB or DE")
        if self.drain_seconds < 0:
            raise ConfigError(f"LEADLINE_DRAIN_SECONDS={self.drain_seconds!r}: must be ≥ 0")
