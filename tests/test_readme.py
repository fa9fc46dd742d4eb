"""README.md documents every LEADLINE_* variable with its real default, so operators can trust the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadline_collector.settings import CollectorSettings
from leadline_crm.settings import CrmSettings
from leadline_enricher.settings import EnricherSettings
from leadline_shared.config import markdown_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize(
    "line", markdown_table(CollectorSettings, EnricherSettings, CrmSettings).splitlines()[2:]
)
def test_every_variable_is_in_the_readme_with_its_default(line: str) -> None:
    assert line in README


def test_readme_gives_the_two_commands() -> None:
    assert "make up" in README
    assert "make test" in README
