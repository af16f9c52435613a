"""Commands that check signatures in a throw-away GnuPG home leave no gpg-agent behind.

Each command runs under tests/support/outlivers.py, which is the subreaper of everything it starts: a
daemon left running (or ended only after the command) is found there, whatever its timing.
The signing key's own home is the user's: its agent is started before the command, as it runs
on a machine that signs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import harness
from tests.support.fake_upstream import SigningKeys, Upstream, serve
from tests.support.packages import PackageFactory

V1 = "10.5.2"
KEY = "agents@example.invalid"
OUTLIVERS = Path(__file__).parent / "support" / "outlivers.py"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    harness.require("gpg", "gpgv", "gpgconf", "apt-ftparchive", "createrepo_c", "rpmsign", "rpm", root=False)
    return SigningKeys.make(tmp_path_factory.mktemp("agents-gnupg") / "home", also=(KEY,))


@pytest.fixture(scope="module")
def upstream(keys: SigningKeys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    with serve() as up:
        up.release(V1, keys, tmp_path_factory.mktemp("agents-upstream"))
        yield up


def _left_by(tmp_path: Path, keys: SigningKeys, *args: object) -> tuple[int, list[list[object]]]:
    """(exit code, processes left) of `mmpkg ARGS...` in a process of its own."""
    subprocess.run(["gpgconf", "--homedir", keys.home, "--launch", "gpg-agent"], check=True)
    # A short TMPDIR: an agent's socket path in a home below pytest's long one would not fit
    # in a socket address, and such an agent fails to start instead of staying.
    with tempfile.TemporaryDirectory(prefix="mmpkg-agents-", dir="/tmp") as tmp:
        env = {**os.environ, "GNUPGHOME": str(keys.home), "TMPDIR": tmp}
        report = tmp_path / "left.json"
        cmd = [sys.executable, OUTLIVERS, report, sys.executable, "-m", "mmpkg", *args]
        proc = subprocess.run([str(a) for a in cmd], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    left: list[list[object]] = json.loads(report.read_text())
    return proc.returncode, left


def test_repo_add_and_check_leave_no_process(
    keys: SigningKeys, packages: PackageFactory, tmp_path: Path
) -> None:
    v1 = packages.build(V1)
    tree = tmp_path / "repo"
    add = _left_by(tmp_path, keys, "repo", "add", tree, v1.deb, v1.rpm, "--sign-key", KEY)
    check = _left_by(tmp_path, keys, "repo", "check", tree)
    assert (add, check) == ((0, []), (0, []))


def test_fetch_leaves_no_process(keys: SigningKeys, upstream: Upstream, tmp_path: Path) -> None:
    keyring = keys.keyring_file(tmp_path / "release-key.asc")
    args = ("fetch", V1, "--base-url", upstream.url, "--keyring", keyring, "--cache", tmp_path / "cache")
    assert _left_by(tmp_path, keys, *args, "--dest", tmp_path / "dest") == (0, [])


def test_a_throwaway_home_imports_keys_under_a_deep_tmpdir(
    keys: SigningKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpg connects to an agent even when told not to start one; in a home whose path leaves no
    room for the agent's socket name (a Unix socket's path holds 107 bytes) the connection fails
    with "File name too long", and so does the import."""
    from mmpkg.tools import gpg_home
    from mmpkg.tools.run import run

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    with gpg_home.throwaway() as home:
        out = run(["gpg", "--batch", "--import"], env={"GNUPGHOME": str(home)}, input=keys.public().decode())
        assert "imported: 1" in out.stderr
    assert list(deep.iterdir()) == []
