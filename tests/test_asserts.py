"""Shipped code has no ``assert`` statements (issue 11): ``python -O`` removes them, so a state they guard would
fail later with an AttributeError on None instead of a clear error. Tests may assert; services and shared/ raise."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED = [REPO / "shared" / "src", *sorted((REPO / "services").glob("*/src"))]


def test_no_assert_statements_in_shipped_code() -> None:
    found = []
    for root in SHIPPED:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Assert):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert SHIPPED
    assert not found, found
