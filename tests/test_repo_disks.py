"""The repository on real file systems: another one than $TMPDIR's, and one that fills up.

Each file system here is a small tmpfs of its own (root only), so that a rename between it and
the rest is a real cross-device one and a full disk is really full.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
from packages import PackageFactory
from test_repo import KEY, TOOLS, V1, gnupghome, repo

from mmpkg.repo import Repository

__all__ = ["gnupghome", "repo"]  # fixtures shared with test_repo.py


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `where` (made) for the block, unmounted afterwards."""
    harness.require("mount", "umount", *TOOLS)
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", where], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", where], check=True)


@pytest.mark.parametrize("on_tmpfs", ["repository", "TMPDIR"])
def test_a_repository_on_another_file_system_than_tmpdir(
    on_tmpfs: str,
    gnupghome: Path,
    packages: PackageFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1 = packages.build(V1)
    with tmpfs(tmp_path / "tmpfs", "64m") as other:
        if on_tmpfs == "TMPDIR":
            monkeypatch.setattr(tempfile, "tempdir", str(other))
            tree = tmp_path / "repo"
        else:
            tree = other / "repo"
        repo = Repository(tree, gnupghome=gnupghome)
        added = repo.add([v1.deb, v1.rpm], "stable", KEY)
        assert {e.name for e in added.added} == {"mattermost", "mattermost-archive-keyring"}
        assert repo.check() == []
