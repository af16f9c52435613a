"""What a build says while it runs: each stage on a terminal, nothing when stderr is not one."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import require
from tests.support.packages import MAINTAINER, PackageFactory

pytestmark = pytest.mark.tools


def build(tarball: Path, out: Path, *flags: str, terminal: bool) -> tuple[str, str]:
    """Run `mmpkg build`, its stderr a terminal (a pty) or a pipe; return stdout and stderr."""
    require("dpkg-deb", "rpmbuild", root=False)
    argv = [
        sys.executable,
        "-m",
        "mmpkg",
        "build",
        str(tarball),
        "--out",
        str(out),
        "--maintainer",
        MAINTAINER,
    ]
    if not terminal:
        done = subprocess.run([*argv, *flags], capture_output=True, text=True, check=True)
        return done.stdout, done.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*argv, *flags], stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    stdout, _ = proc.communicate()
    assert proc.returncode == 0
    return stdout, b"".join(chunks).decode().replace("\r\n", "\n")


def test_a_terminal_shows_each_stage(packages: PackageFactory, tmp_path: Path) -> None:
    tarball = packages.tarball("10.5.2")
    stdout, stderr = build(tarball, tmp_path / "out", terminal=True)
    lines = stderr.splitlines()
    assert lines[0] == f"mmpkg: reading {tarball.name}"
    assert lines[1] == "mmpkg: staging mattermost 10.5.2 (amd64)"
    for name in ("mattermost_10.5.2-1_amd64.deb", "mattermost-10.5.2-1.x86_64.rpm"):
        assert f"mmpkg: building {name}" in lines
        assert f"mmpkg: built {name}" in [line.split(" (")[0] for line in lines]
    # The paths, and only they, go to stdout, for scripts.
    assert stdout.split() == [
        str(tmp_path / "out" / n) for n in ("mattermost_10.5.2-1_amd64.deb", "mattermost-10.5.2-1.x86_64.rpm")
    ]


def test_quiet_when_not_a_terminal_or_asked(packages: PackageFactory, tmp_path: Path) -> None:
    tarball = packages.tarball("10.5.2")
    assert build(tarball, tmp_path / "a", terminal=False)[1] == ""
    assert build(tarball, tmp_path / "b", "-q", terminal=True)[1] == ""


def test_verbose_shows_the_tools_anywhere(packages: PackageFactory, tmp_path: Path) -> None:
    stderr = build(packages.tarball("10.5.2"), tmp_path / "out", "-v", terminal=False)[1]
    assert "mmpkg: reading" in stderr and "mmpkg: + dpkg-deb" in stderr and "mmpkg: + rpmbuild" in stderr
