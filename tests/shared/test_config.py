"""Settings: every service reads LEADLINE_* once, and a bad value names its variable."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest

from leadline_shared.config import CommonSettings, ConfigError, describe, load, markdown_table, setting


@dataclass(frozen=True)
class Sample(CommonSettings):
    port: int = setting(8080, "SAMPLE_PORT", "a port")
    ratio: float = setting(0.5, "SAMPLE_RATIO", "a ratio")
    origins: tuple[str, ...] = setting(("a",), "SAMPLE_ORIGINS", "a list")
    password: str = setting("", "SAMPLE_PASSWORD", "a secret", secret=True)
    flag: bool = setting(False, "SAMPLE_FLAG", "a flag")


def test_defaults_when_nothing_is_set() -> None:
    s = load(Sample, {})
    assert (s.port, s.ratio, s.origins, s.flag, s.kafka_bootstrap) == (
        8080,
        0.5,
        ("a",),
        False,
        "127.0.0.1:9092",
    )


def test_values_are_parsed_by_type() -> None:
    s = load(
        Sample,
        {
            "LEADLINE_SAMPLE_PORT": "9000",
            "LEADLINE_SAMPLE_RATIO": "0.25",
            "LEADLINE_SAMPLE_ORIGINS": "https://a.example, https://b.example",
            "LEADLINE_SAMPLE_FLAG": "yes",
            "LEADLINE_TOPIC_PREFIX": "x.",
        },
    )
    assert (s.port, s.ratio, s.flag, s.topic_prefix) == (9000, 0.25, True, "x.")
    assert s.origins == ("https://a.example", "https://b.example")


def test_settings_are_frozen() -> None:
    s = load(Sample, {})
    with pytest.raises(FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("LEADLINE_SAMPLE_PORT", "eighty"),
        ("LEADLINE_SAMPLE_FLAG", "maybe"),
        ("LEADLINE_LOG_LEVEL", "LOUD"),
        ("LEADLINE_TOPIC_PARTITIONS", "0"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(Sample, {var: value})
    assert var in str(err.value)
    assert value in str(err.value)


def test_describe_masks_secrets_and_dsn_passwords() -> None:
    s = load(
        Sample,
        {
            "LEADLINE_SAMPLE_PASSWORD": "hunter2",
            "LEADLINE_PG_DSN": "postgresql://app:s3cret@db:5432/leadline",
        },
    )
    text = str(describe(s))
    assert "hunter2" not in text
    assert "s3cret" not in text
    assert "postgresql://app:***@db:5432/leadline" in text


def test_markdown_table_lists_every_variable_once() -> None:
    table = markdown_table(Sample, Sample)
    assert table.count("`LEADLINE_SAMPLE_PORT`") == 1
    assert "`LEADLINE_KAFKA_BOOTSTRAP` | `127.0.0.1:9092`" in table
