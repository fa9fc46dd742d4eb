"""`leadline links sign` mints links the collector accepts, and refuses what it would not."""

from __future__ import annotations

import pytest

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
