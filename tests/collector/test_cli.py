"""`leadline links sign` mints links the collector accepts, and refuses what it would not."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadline_collector import main as collector_main
from leadline_shared.cli import main
from leadline_shared.signing import KeyRing
from sites import LINK_KEYS


def test_signed_links_verify_with_the_same_key_ring(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADLINE_LINK_KEYS", LINK_KEYS)
    assert (
        main(
            [
                "links",
                "sign",
                "--target",
                "https://shop.example/x",
                "--campaign",
                "c1",
                "--send",
                "s1",
                "--recipient",
                "r1",
                "--base-url",
                "https://t.shop.example/ll",
            ]
        )
        == 0
    )
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://t.shop.example/ll/c/")
    payload = KeyRing.parse(LINK_KEYS).verify(url.rsplit("/", 1)[1])
    assert payload["target"] == "https://shop.example/x"
    assert (payload["campaign_id"], payload["send_id"], payload["recipient_token"]) == ("c1", "s1", "r1")
    assert main(["links", "sign", "--open", "--campaign", "c1", "--recipient", "r1"]) == 0
    assert capsys.readouterr().out.strip().endswith(".gif")


@pytest.mark.parametrize(
    ("keys", "target"), [("", "https://shop.example/"), (LINK_KEYS, "javascript:alert(1)")]
)
def test_refuses_without_keys_or_with_a_non_http_target(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], keys: str, target: str
) -> None:
    monkeypatch.setenv("LEADLINE_LINK_KEYS", keys)
    assert main(["links", "sign", "--target", target, "--campaign", "c", "--recipient", "r"]) == 2
    assert "leadline links sign:" in capsys.readouterr().err


def test_without_the_variable_it_signs_with_the_keys_make_up_wrote(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """On a `make up` stack the command works as is: the collector verifies with .run/link.keys, so it signs
    with them too, found from the working directory (the repository or below it)."""
    monkeypatch.delenv("LEADLINE_LINK_KEYS", raising=False)
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "link.keys").write_text(f"{LINK_KEYS}\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    args = ["links", "sign", "--target", "https://shop.example/x", "--campaign", "c1", "--recipient", "r1"]
    assert main(args) == 0
    out = capsys.readouterr()
    payload = KeyRing.parse(LINK_KEYS).verify(out.out.strip().rsplit("/", 1)[1])
    assert payload["target"] == "https://shop.example/x"
    assert str(tmp_path / ".run" / "link.keys") in out.err  # says where the keys came from


def test_without_the_variable_or_a_make_up_key_file_it_says_to_set_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Outside a `make up` checkout the error names what to set, instead of a bare failure."""
    monkeypatch.delenv("LEADLINE_LINK_KEYS", raising=False)
    monkeypatch.setattr(collector_main, "key_file_roots", lambda: (tmp_path,))
    args = ["links", "sign", "--target", "https://shop.example/x", "--campaign", "c1", "--recipient", "r1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "LEADLINE_LINK_KEYS" in err
    assert ".run/link.keys" in err
