"""The repository on real file systems: another one than $TMPDIR's, and one that fills up.

Each file system here is a small tmpfs of its own (root only), so that a rename between it and
the rest is a real cross-device one and a full disk is really full.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmpkg.build.workspace import free_bytes
from mmpkg.mattermost.release import Edition
from mmpkg.repo import Repository
from mmpkg.repo.journal import JOURNAL, PRIVATE
from tests.support import harness
from tests.support.cli_runner import runner
from tests.support.packages import PackageFactory
from tests.test_repo import KEY, TOOLS, V1, V2, gnupghome, repo
from tests.test_repo_atomic import served_files

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
        assert {e.name for e in added.added} == {
            "mattermost",
            "mattermost-archive-keyring",
            "mattermost-omnibus",
        }
        assert repo.check() == []


def _use_up(directory: Path, leave: int) -> None:
    """Fill the file system of `directory` but for about `leave` bytes."""
    free = free_bytes(directory)
    with open(directory / "filler", "ab", buffering=0) as out, contextlib.suppress(OSError):
        out.write(b"\0" * max(0, free - leave))


def _left(tree: Path) -> list[str]:
    """What a change left in the repository's private state: staging, an unfinished journal."""
    private = tree / PRIVATE
    return sorted(str(p.relative_to(private)) for p in (private / "tmp").rglob("*")) + [
        JOURNAL for _ in [0] if (private / JOURNAL).exists()
    ]


def test_a_full_disk_is_one_line_and_exit_6_whenever_it_strikes(
    gnupghome: Path,
    packages: PackageFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same add on a file system with less and less room left: it fails in our writes, in
    rpmsign, gpg or createrepo_c, wherever the room runs out. Each time it is exit 6 and one
    line, the served tree is the old one and no staging is left; with room made, it works."""
    monkeypatch.setenv("GNUPGHOME", str(gnupghome))
    mmpkg = runner(capsys)
    v1, v2 = packages.build(V1), packages.build(V2)
    team = packages.build(V2, edition=Edition.TEAM)
    with tmpfs(tmp_path / "disk", "16m") as disk:
        base = Repository(disk / "base", gnupghome=gnupghome)
        base.add([v1.deb, v1.rpm], "stable", KEY)
        # What the add below keeps, measured on the same file system; while it runs, it also
        # needs room for the generations it replaces, so it fails up to somewhat more than that.
        probe = disk / "probe"
        shutil.copytree(base.path, probe, symlinks=True)
        before = free_bytes(disk)
        assert mmpkg("repo", "add", probe, v2.deb, v2.rpm, team.rpm, "--sign-key", KEY)[0] == 0
        kept = before - free_bytes(disk)
        shutil.rmtree(probe)
        # Coarse steps, then two pages at a time over the end, where the indices are written and
        # signed, until the add succeeds.
        coarse = range(0, kept - kept // 8, kept // 8)
        fine = range(kept - kept // 8, 3 * kept, 8192)
        outcomes, errors = set(), []
        for leave in [*coarse, *fine]:
            if 0 in outcomes:
                break
            tree = disk / "repo"
            shutil.copytree(base.path, tree, symlinks=True)
            served = served_files(tree)
            _use_up(disk, leave)
            code, out, err = mmpkg("repo", "add", tree, v2.deb, v2.rpm, team.rpm, "--sign-key", KEY)
            outcomes.add(code)
            if code != 0:
                errors.append(err)
                assert (code, out) == (6, ""), (leave, err)
                # It names the file system that is full, not one a package was read from.
                assert err.count("\n") == 1 and f"no space left on {tree}:" in err, (leave, err)
                assert served_files(tree) == served, leave
                assert _left(tree) == [], leave
                (disk / "filler").unlink()
                assert mmpkg("repo", "add", tree, v2.deb, v2.rpm, team.rpm, "--sign-key", KEY)[0] == 0
            assert Repository(tree, gnupghome=gnupghome).check() == [], leave
            (disk / "filler").unlink(missing_ok=True)
            shutil.rmtree(tree)
        assert outcomes == {0, 6}
        # Where the room ran out: our own writes, and each tool that writes into the tree. Not
        # rpmsign: rpmbuild reserves room in an rpm's signature header (rpm >= 4.14,
        # RPMSIGTAG_RESERVEDSPACE), and rpmsign writes the signature into it in place.
        for who in ("error: no space left on", "gpg failed", "createrepo_c failed"):
            assert any(who in err for err in errors), (who, errors)


def test_a_full_tmpdir_is_exit_6(
    gnupghome: Path,
    packages: PackageFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The throw-away GnuPG homes live in $TMPDIR: gpg cannot import a key into a full one."""
    monkeypatch.setenv("GNUPGHOME", str(gnupghome))
    mmpkg = runner(capsys)
    v1 = packages.build(V1)
    tree = tmp_path / "repo"
    Repository(tree, gnupghome=gnupghome).add([v1.deb], "stable", KEY)
    served = served_files(tree)
    with tmpfs(tmp_path / "tmpdir", "1m") as tmp:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        _use_up(tmp, 0)
        code, out, err = mmpkg("repo", "add", tree, v1.rpm, "--sign-key", KEY)
    assert (code, out) == (6, ""), err
    assert err.count("\n") == 1 and "no space left on" in err, err
    assert served_files(tree) == served
