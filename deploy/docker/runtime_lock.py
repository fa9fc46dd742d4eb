"""Write deploy/docker/requirements-runtime.lock: what the image installs, and nothing for tests.

requirements.lock holds the whole workspace with its dev group (pytest, mypy, Playwright, schemathesis…): 613 MB
in a venv. The image needs only what the four runtime packages import. This resolves their declared
dependencies again, constrained to the versions requirements.lock pins (so the image runs exactly what the tests
ran), with hashes. Run by `make lock` after requirements.lock; tests/deploy/test_image_lock.py checks the two
agree.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME = ("shared", "services/collector", "services/enricher", "services/crm-core")
OUT = REPO / "deploy" / "docker" / "requirements-runtime.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*(?:\[[^\]]*\])?)==([^\s;\\]+)(\s*;[^\\]*)?")


def runtime_requirements() -> list[str]:
    """The runtime packages' declared dependencies, their own workspace packages left out."""
    deps: set[str] = set()
    for member in RUNTIME:
        project = tomllib.loads((REPO / member / "pyproject.toml").read_text())["project"]
        deps.update(d for d in project["dependencies"] if not d.startswith("leadline-"))
    return sorted(deps)


def pins(lock: Path) -> list[str]:
    """``name==version[; marker]`` of every package requirements.lock pins (hashes dropped: constraints only)."""
    out = []
    for line in lock.read_text().splitlines():
        if m := PIN.match(line):
            out.append(f"{m.group(1)}=={m.group(2)}{(m.group(3) or '').rstrip()}")
    return out


def main() -> int:
    uv = sys.argv[1] if len(sys.argv) > 1 else "uv"
    with tempfile.TemporaryDirectory() as tmp:
        reqs, constraints = Path(tmp, "runtime.in"), Path(tmp, "constraints.txt")
        reqs.write_text("\n".join(runtime_requirements()) + "\n")
        constraints.write_text("\n".join(pins(REPO / "requirements.lock")) + "\n")
        cmd = [uv, "pip", "compile", str(reqs), "-c", str(constraints), "--generate-hashes",
               "--python-version", "3.11", "--no-header", "--no-annotate", "--quiet", "-o", str(OUT)]  # fmt: skip
        subprocess.run(cmd, check=True)
    text = OUT.read_text()
    header = "# The image's dependencies: written by deploy/docker/runtime_lock.py from requirements.lock.\n"
    OUT.write_text(
        header + "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
