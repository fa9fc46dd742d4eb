"""The image installs exactly the versions the tests ran: its runtime lock agrees with requirements.lock."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)", re.MULTILINE)


def pinned(path: Path) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(path.read_text())}


def test_every_runtime_pin_is_the_version_requirements_lock_pins() -> None:
    full = pinned(REPO / "requirements.lock")
    runtime = pinned(REPO / "deploy" / "docker" / "requirements-runtime.lock")
    assert {"aiohttp", "aiokafka", "asyncpg", "httptools", "phonenumbers"} <= set(runtime)
    assert {name: v for name, v in runtime.items() if full.get(name) != v} == {}


def test_the_image_leaves_the_test_tools_out() -> None:
    runtime = pinned(REPO / "deploy" / "docker" / "requirements-runtime.lock")
    assert not {"pytest", "mypy", "ruff", "playwright", "hypothesis", "schemathesis"} & set(runtime)
