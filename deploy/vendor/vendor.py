"""Fetch the pinned browser libraries (deploy/vendor/assets.json) into crm-core's static/vendor.

Run by ``make vendor`` when a pinned version changes; the copies are committed, so the app and its tests never
reach the network. Each npm tarball must match the sha256 pinned in assets.json, and the file list records the
sha256 of every copy so a test can prove the served files are the pinned ones. A package with a ``target``
(a directory relative to the repository) goes there instead, with its own SHA256SUMS: test assets such as
Segment's analytics.js, which crm-core does not serve.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "vendor" / "assets.json"
TARGET = ROOT / "services" / "crm-core" / "src" / "leadline_crm" / "http" / "static" / "vendor"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(name: str, version: str, workdir: Path) -> Path:
    """``npm pack`` the package into workdir and return the tarball's path."""
    out = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--silent"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    return workdir / out.stdout.strip().splitlines()[-1]


def main() -> int:
    manifest = json.loads(MANIFEST.read_text())
    sums: dict[Path, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in manifest["packages"]:
            tarball = fetch(pkg["name"], pkg["version"], Path(tmp))
            if sha256(tarball.read_bytes()) != pkg["sha256"]:
                print(
                    f"{pkg['name']}@{pkg['version']}: tarball sha256 differs from assets.json",
                    file=sys.stderr,
                )
                return 1
            target = ROOT / pkg["target"] if "target" in pkg else TARGET
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball) as tar:
                for member, dest in pkg["files"].items():
                    extracted = tar.extractfile(member)
                    if extracted is None:
                        raise SystemExit(f"{member} is not a file in {tarball.name}")
                    data = extracted.read()
                    (target / dest).write_bytes(data)
                    sums.setdefault(target, {})[dest] = sha256(data)
    for target, files in sums.items():
        (target / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(files.items())))
        print(f"vendored {len(files)} files into {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
