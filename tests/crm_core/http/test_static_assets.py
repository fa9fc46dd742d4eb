"""The browser libraries crm-core serves are the pinned npm releases (deploy/vendor/assets.json), committed so
nothing is fetched at run time, and the templates load nothing from another origin."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "services" / "crm-core" / "src" / "leadline_crm" / "http" / "static"


def test_every_vendored_file_matches_its_recorded_sha256() -> None:
    manifest = json.loads((ROOT / "deploy" / "vendor" / "assets.json").read_text())
    listed = {dest for pkg in manifest["packages"] if "target" not in pkg for dest in pkg["files"].values()}
    sums = dict(
        reversed(line.split("  ", 1)) for line in (STATIC / "vendor" / "SHA256SUMS").read_text().splitlines()
    )
    assert set(sums) == listed
    for name, digest in sums.items():
        assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest, name


def test_no_template_loads_anything_from_another_origin_or_inline() -> None:
    templates = list((ROOT / "services" / "crm-core" / "src" / "leadline_crm").rglob("templates/**/*.html"))
    assert templates
    for path in templates:
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        for inline in ("<script>", " style=", " onclick="):
            assert inline not in text, path
