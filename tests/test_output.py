"""Where the packages go: a bad --out is refused before the tarball is read, a full disk is said
to be one (exit 6, whichever step ran out), and nothing is left behind either way.

The read-only and full file systems are real mounts (a read-only bind mount, a small tmpfs),
made by the test as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmpkg.build.workspace import PREFIX
from mmpkg.cli import main
from tests.support.harness import require
from tests.support.packages import MAINTAINER, PackageFactory

pytestmark = pytest.mark.tools

# Only its name is read: every error here comes before the tarball is.
NO_TARBALL = "/nonexistent/mattermost-10.5.2-linux-amd64.tar.gz"


def build(*argv: str | Path) -> list[str]:
    return ["build", *(str(a) for a in argv), "--maintainer", MAINTAINER]


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.err.startswith("mmpkg: error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail("CI=true but not root: the test mounts file systems", pytrace=False)
        pytest.skip("needs root to mount a read-only or a small file system")


@contextlib.contextmanager
def mounted(*argv: str | Path) -> Iterator[None]:
    target = Path(argv[-1])
    subprocess.run(["mount", *(str(a) for a in argv)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    need_root()
    path.mkdir(parents=True, exist_ok=True)
    with mounted("--bind", path, path):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
        yield


def test_out_naming_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "dist"
    afile.write_text("not a directory")
    assert main(build(NO_TARBALL, "--out", afile)) == 2
    assert f"--out {afile} is a file, not a directory" in one_error(capsys)
    assert main(build(NO_TARBALL, "--out", afile / "sub" / "dist")) == 2
    assert f"{afile} is a file, not a directory" in one_error(capsys)
    assert afile.read_text() == "not a directory"


def test_out_that_is_a_broken_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dist").symlink_to(tmp_path / "gone")
    assert main(build(NO_TARBALL, "--out", tmp_path / "dist")) == 2
    assert "is a broken symbolic link" in one_error(capsys)


@pytest.mark.parametrize("exists", [True, False], ids=["out-read-only", "parent-read-only"])
def test_out_on_a_read_only_file_system(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exists: bool
) -> None:
    top = tmp_path / "ro"
    (top / "dist").mkdir(parents=True) if exists else top.mkdir()
    with read_only(top):
        assert main(build(NO_TARBALL, "--out", top / "dist")) == 2
        err = one_error(capsys)
    where = top / "dist" if exists else top
    assert f"{where} is on a read-only file system" in err


def test_out_not_writable_by_the_user(packages: PackageFactory, tmp_path: Path) -> None:
    """As nobody (the tests run as root, whom permissions do not stop)."""
    need_root()
    require("runuser", root=True)
    python = next(
        (
            p
            for p in (sys.executable, "/usr/bin/python3")
            if subprocess.run(["runuser", "-u", "nobody", "--", p, "-c", ""], capture_output=True).returncode
            == 0
            and subprocess.run(
                [p, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
            ).stdout
            == f"{sys.version_info[:2]}\n"
        ),
        None,
    )
    if python is None:
        pytest.skip(f"no Python {sys.version_info[:2]} that the user nobody may run")
    top = Path(os.environ.get("TMPDIR", "/tmp")) / f"mmpkg-nobody-{os.getpid()}"
    top.mkdir(mode=0o755)
    try:
        shutil.copy(packages.tarball("10.5.2"), top)
        os.chmod(top / packages.tarball("10.5.2").name, 0o644)
        mine = top / "root-only"
        mine.mkdir(mode=0o755)
        site = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{Path(__file__).parent.parent}:{site}"}
        argv = [python, "-m", "mmpkg", *build(top / packages.tarball("10.5.2").name, "--out", mine / "dist")]
        proc = subprocess.run(
            ["runuser", "-u", "nobody", "--", "env", *(f"{k}={v}" for k, v in env.items()), *argv],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2, proc.stderr
        assert (
            proc.stderr
            == f"mmpkg: error: --out {mine / 'dist'}: {mine} is not writable by you; choose another directory\n"
        )
        assert os.listdir(mine) == []
    finally:
        shutil.rmtree(top)


@contextlib.contextmanager
def small_disk(tmp_path: Path, free_kib: int) -> Iterator[Path]:
    """A file system with about `free_kib` KiB free."""
    need_root()
    disk = tmp_path / "disk"
    disk.mkdir(parents=True)
    with mounted("-t", "tmpfs", "-o", "size=4m", "tmpfs", disk):
        stat = os.statvfs(disk)
        filler = stat.f_bavail * stat.f_frsize - free_kib * 1024
        subprocess.run(["fallocate", "-l", str(filler), str(disk / "filler")], check=True)
        yield disk


# How much is free decides which step runs out: unpacking the tarball, staging, or rpmbuild.
@pytest.mark.parametrize("free_kib", [40, 160, 200, 280, 420])
def test_a_full_disk_is_said_to_be_one(
    packages: PackageFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_kib: int
) -> None:
    tarball = packages.tarball("10.5.2")
    with small_disk(tmp_path, free_kib) as disk:
        assert main(build(tarball, "--out", disk / "dist", "--formats", "rpm")) == 6
        err = one_error(capsys)
        assert "no space left" in err.lower() and f"on {disk}" in err, err
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_rpmbuilds_own_words_are_kept(
    packages: PackageFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Room for the payload but not for the header rpmbuild writes after it: somewhere between
    # what unpacking needs and what the whole build needs, found by trying, in 40 KiB steps.
    said = []
    for free_kib in range(400, 2000, 40):
        with small_disk(tmp_path / str(free_kib), free_kib) as disk:
            code = main(build(packages.tarball("10.5.2"), "--out", disk / "dist", "--formats", "rpm"))
        if code == 0:
            break
        assert code == 6
        said.append(one_error(capsys))
    assert any("rpmbuild failed with exit code 1: error: Unable to write header to" in s for s in said), said


def test_out_on_its_own_file_system(packages: PackageFactory, tmp_path: Path) -> None:
    """A mount point as --out: the workspace goes inside it (hidden), to rename the packages."""
    need_root()
    dist = tmp_path / "dist"
    dist.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=64m", "tmpfs", dist):
        assert main(build(packages.tarball("10.5.2"), "--out", dist)) == 0
        assert sorted(p.name for p in dist.iterdir()) == [
            "mattermost-10.5.2-1.x86_64.rpm",
            "mattermost_10.5.2-1_amd64.deb",
        ]
    assert not list(tmp_path.glob(f"{PREFIX}*"))
