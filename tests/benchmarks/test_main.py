"""`python -m benchmarks --only …` (make bench BENCH_ONLY=…): a subset of modules, a typo refused."""

from __future__ import annotations

import pytest
from benchmarks.__main__ import build_parser

from benchmarks import harness


def test_only_keeps_the_named_modules_in_the_given_order() -> None:
    args = build_parser().parse_args(["--only", "webhooks_bench, collector_bench"])
    assert args.only == ("webhooks_bench", "collector_bench")
    assert build_parser().parse_args([]).only == ()


def test_only_refuses_an_unknown_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--only", "colector_bench"])
    assert harness.MODULES[0] in capsys.readouterr().err
