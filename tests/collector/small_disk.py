"""A small disk of a test's own, so the collector's spool meets a real ENOSPC (issue 17).

A tmpfs mounted with the drill's own helper (``drills.stack``), or, where tmpfs is refused, a loop-mounted ext4
image. Mounting needs root (or CAP_SYS_ADMIN), which the test machine and CI have; where it cannot mount, the
test fails and says why rather than skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount_tmpfs(path: Path, megabytes: int) -> bool:
    """The drill's helper; ``drills`` is importable with the repository root on the path (tests/drills/conftest.py)."""
    repo = str(Path(__file__).resolve().parents[2])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from drills.stack import _mount_tmpfs as mount_tmpfs

    return mount_tmpfs(path, megabytes)


def _mount_loop_ext4(path: Path, image: Path, megabytes: int) -> bool:
    """The fallback where tmpfs is refused: a tiny ext4 image, loop-mounted."""
    if shutil.which("mkfs.ext4") is None:
        return False
    with image.open("wb") as fh:
        fh.truncate(megabytes * 1024 * 1024)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=False, capture_output=True)
    if made.returncode != 0:
        return False
    done = subprocess.run(["mount", "-o", "loop", str(image), str(path)], check=False, capture_output=True)
    return done.returncode == 0


@contextmanager
def small_disk_at(tmp_path: Path, megabytes: int) -> Iterator[Path]:
    """A directory under ``tmp_path`` on a disk of ``megabytes`` MiB of its own; unmounted afterwards."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if not _mount_tmpfs(mount, megabytes) and not _mount_loop_ext4(mount, tmp_path / "disk.img", megabytes):
        pytest.fail(
            f"could not mount a {megabytes} MiB tmpfs or loop ext4 image at {mount} (euid {os.geteuid()}): "
            "this test needs root (or CAP_SYS_ADMIN) to give the spool a disk that really fills up"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
