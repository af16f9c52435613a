"""Builds that are stopped, killed or run side by side: real `mmpkg build` processes, real signals.

A build works in a private directory beside --out (never inside it), locked while it runs; it
removes only what it wrote; SIGINT and SIGTERM stop dpkg-deb and rpmbuild at once; what SIGKILL
leaves is out of --out's way and cleared by the next build.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from mmpkg.build.options import BuildOptions
from mmpkg.build.pipeline import build
from tests.support.harness import require
from tests.support.packages import MAINTAINER, PackageFactory

pytestmark = pytest.mark.tools

T = TypeVar("T")
TOOLS = {"dpkg-deb", "rpmbuild"}
# Generous: only reached when the behaviour under test is broken (a build that waits forever).
PATIENCE = 60.0


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    require("dpkg-deb", "rpmbuild", root=False)


@contextlib.contextmanager
def started(tarball: Path, out: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """A `mmpkg build` process, killed and reaped at the end whatever the test did to it."""
    argv = [sys.executable, "-m", "mmpkg", "build", str(tarball), "--out", str(out)]
    argv += ["--maintainer", MAINTAINER, *extra]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def wait_for(what: Callable[[], T], proc: subprocess.Popen[str]) -> T:
    deadline = time.monotonic() + PATIENCE
    while not (found := what()):
        assert proc.poll() is None, f"the build ended first: {proc.communicate()}"
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.002)
    return found


def staging(top: Path) -> list[Path]:
    return sorted(top.rglob(".mmpkg-build-*"))


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state_and_ppid = stat[stat.rindex(")") + 2 :].split()
        if state_and_ppid[0] != "Z":
            yield int(entry.name), int(state_and_ppid[1]), name


def descendants(pid: int) -> dict[int, str]:
    table = list(_processes())
    found: dict[int, str] = {}
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent, _ in table if parent in frontier and p not in found}
        found.update({p: name for p, _, name in table if p in frontier})
    return found


def alive(pids: Iterator[int] | list[int]) -> list[int]:
    living = {p for p, _, _ in _processes()}
    return [p for p in pids if p in living]


def slow_release(packages: PackageFactory, dest: Path) -> Path:
    """The sample release with 8 MiB that does not compress: xz takes seconds over it."""
    src = packages.tarball("10.5.2")
    noise = random.Random(0).randbytes(8 << 20)
    with (
        tarfile.open(src) as old,
        gzip.open(dest / src.name, "wb", compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w") as new,
    ):
        for info in old.getmembers():
            new.addfile(info, old.extractfile(info) if info.isfile() else None)
        info = tarfile.TarInfo("mattermost/client/noise.bin")
        info.size, info.mode, info.mtime = len(noise), 0o644, max(m.mtime for m in old.getmembers())
        new.addfile(info, io.BytesIO(noise))
    return dest / src.name


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_stops_the_tools_at_once_and_leaves_nothing(
    packages: PackageFactory, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    tarball = slow_release(packages, tmp_path)
    out = tmp_path / "dist"
    with started(tarball, out, "--compression", "xz") as proc:
        tools = wait_for(lambda: {p: n for p, n in descendants(proc.pid).items() if n in TOOLS}, proc)
        # Frozen tools never finish on their own: the build can only end by stopping them.
        frozen = list(descendants(proc.pid))
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=PATIENCE)
        finally:
            for pid in alive(frozen):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == code, err
    assert err == f"mmpkg: stopped by {signum.name}\n"
    assert alive(list(tools)) == []
    assert not out.exists()
    assert staging(tmp_path) == []


def test_a_failed_build_leaves_the_other_builds_packages(packages: PackageFactory, tmp_path: Path) -> None:
    """Two builds start into one fresh dist/ (a CI matrix); the one that fails removes only its own."""
    tarball = packages.tarball("10.5.2")
    dist = tmp_path / "dist"
    with started(tarball, dist) as failing:
        wait_for(lambda: staging(tmp_path), failing)
        failing.send_signal(signal.SIGSTOP)
        try:
            good = build(tarball, BuildOptions(maintainer=MAINTAINER, out=dist, revision=2))
        finally:
            failing.send_signal(signal.SIGINT)
            failing.send_signal(signal.SIGCONT)
            failing.communicate(timeout=PATIENCE)
    assert failing.returncode == 130
    assert sorted(dist.iterdir()) == sorted(p.path for p in good)


def test_builds_side_by_side_keep_each_others_work(packages: PackageFactory, tmp_path: Path) -> None:
    """A build clears stale staging next to --out, never the staging of a build still running."""
    tarball = packages.tarball("10.5.2")
    dist = tmp_path / "dist"
    with started(tarball, dist) as first:
        (theirs,) = wait_for(lambda: staging(tmp_path), first)
        first.send_signal(signal.SIGSTOP)
        try:
            mine = build(tarball, BuildOptions(maintainer=MAINTAINER, out=dist, revision=2))
            assert theirs.is_dir()
        finally:
            first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=PATIENCE)
    assert first.returncode == 0, err
    assert sorted(dist.iterdir()) == sorted([*(p.path for p in mine), *(Path(p) for p in out.split())])
    assert staging(tmp_path) == []


def test_after_sigkill_the_output_is_clean_and_the_next_build_clears_up(
    packages: PackageFactory, tmp_path: Path
) -> None:
    tarball = packages.tarball("10.5.2")
    dist = tmp_path / "dist"
    with started(tarball, dist) as proc:
        wait_for(lambda: staging(tmp_path), proc)
        orphans = list(descendants(proc.pid))
        proc.kill()
        proc.communicate()
    for pid in alive(orphans):
        os.kill(pid, signal.SIGKILL)
    # Nothing of it is where a scan of the output directory would find it.
    assert not dist.exists() or list(dist.rglob("*")) == []
    assert staging(tmp_path) != []
    built = build(tarball, BuildOptions(maintainer=MAINTAINER, out=dist))
    assert sorted(dist.iterdir()) == sorted(p.path for p in built)
    assert staging(tmp_path) == []


def test_staging_an_older_mmpkg_left_inside_the_output_is_cleared(
    packages: PackageFactory, tmp_path: Path
) -> None:
    """mmpkg 0.1 worked inside --out; what its killed builds left there goes with the next build."""
    dist = tmp_path / "dist"
    left = dist / ".mmpkg-build-k3x9q1"
    (left / "deb").mkdir(parents=True)
    (left / "deb/mattermost_10.5.2-1_amd64.deb").write_bytes(b"half a package")
    built = build(packages.tarball("10.5.2"), BuildOptions(maintainer=MAINTAINER, out=dist))
    assert sorted(dist.iterdir()) == sorted(p.path for p in built)
