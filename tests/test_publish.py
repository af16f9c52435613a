"""`mmpkg repo publish REPO DEST` to a directory (the rsync backend, as to a mirror): what
readers of DEST find after each publish, what a publish sends, in what order, what it deletes
and when, and a publish killed at each of its steps. The object store (S3 API) is
tests/test_publish_s3.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmpkg.repo import Repository
from mmpkg.repo.remote.objects import Kind, kind_of
from tests.support import harness, repo_reader
from tests.support.cli_runner import Mmpkg, runner
from tests.support.packages import PackageFactory
from tests.test_repo import KEY, V1, gnupghome

__all__ = ["gnupghome"]

V3 = "10.11.2"
STATE = ".mmpkg-publish.json"


@pytest.fixture
def mmpkg(capsys: pytest.CaptureFixture[str]) -> Mmpkg:
    return runner(capsys)


@pytest.fixture
def repo(tmp_path: Path, gnupghome: Path, packages: PackageFactory) -> Repository:
    harness.require("rsync", root=False)
    tree = Repository(tmp_path / "repo", gnupghome=gnupghome)
    built = packages.build(V1)
    tree.add([built.deb, built.rpm], "stable", KEY)
    return tree


def _add(repo: Repository, packages: PackageFactory, version: str) -> None:
    built = packages.build(version)
    repo.add([built.deb, built.rpm], "stable", KEY)


def _ring(repo: Repository, where: Path) -> Path:
    return repo_reader.keyring(repo.export_key(), where)


def _reader_problems(repo: Repository, dest: Path, tmp_path: Path) -> list[str]:
    """What apt and dnf, reading DEST's files, would find wrong: nothing, when it is whole."""
    ring = _ring(repo, tmp_path)
    return repo_reader.problems(repo_reader.file_fetch(dest), ring, "stable", ("x86_64", "aarch64"))


def _files(dest: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dest)): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}


def _served(repo: Repository) -> dict[str, bytes]:
    """The tree as a destination holds it: through the links, without the hidden names."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(repo.path, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath, name)
            found[str(path.relative_to(repo.path))] = path.read_bytes()
    return found


def test_a_publish_carries_the_live_generation_and_readers_find_it_whole(
    repo: Repository, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror" / "mattermost"
    code, out, err = mmpkg("repo", "publish", repo.path, dest)
    assert code == 0, err
    assert "sent" in out and "publish 1" in out
    assert _reader_problems(repo, dest, tmp_path) == []
    held = _files(dest)
    # No generation directory, no link, no private state: what readers fetch, and mmpkg's record.
    assert {k: v for k, v in held.items() if k != STATE} == _served(repo)
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    code, out, _ = mmpkg("repo", "check", dest)
    assert code == 0 and out == ""


def test_only_what_changed_is_sent_compared_by_hash_not_by_time(
    repo: Repository, packages: PackageFactory, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror"
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    # Times changed everywhere, content nowhere: nothing is sent.
    for path in repo.path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (1, 1))
    code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--json")
    assert code == 0
    assert json.loads(out)["sent"] == []
    # A new release: its packages and the new indices, nothing of the release before.
    _add(repo, packages, V3)
    code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--json")
    sent = {f["key"] for f in json.loads(out)["sent"]}
    assert {k for k in sent if k.startswith("pool/")} == {
        f"pool/main/m/mattermost/mattermost_{V3}-1_amd64.deb",
        f"pool/main/m/mattermost/mattermost-{V3}-1.x86_64.rpm",
    }
    assert "dists/stable/InRelease" in sent and all(
        kind_of(k) is not Kind.CONTENT or "pool/" not in k or V3 in k for k in sent
    )
    assert _reader_problems(repo, dest, tmp_path) == []
    # A file at DEST whose content differs, with the size and time of the right one, is not
    # what the state records; the state is what is compared, so it must say so: a check does.
    deb = dest / f"pool/main/m/mattermost/mattermost_{V3}-1_amd64.deb"
    original = deb.read_bytes()
    mtime = deb.stat().st_mtime
    deb.write_bytes(bytes(len(original)))
    os.utime(deb, (mtime, mtime))
    code, out, _ = mmpkg("repo", "check", dest, "--deep")
    assert code == 7 and f"{deb.relative_to(dest)}: SHA-256" in out


def test_the_order_is_content_then_named_then_the_signed_top_files(
    repo: Repository, packages: PackageFactory, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror"
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    _add(repo, packages, V3)
    code, out, _ = mmpkg("repo", "publish", repo.path, dest)
    assert code == 0
    sent = [line.split()[1] for line in out.splitlines() if line.startswith("sent ") and "(" in line]
    kinds = [kind_of(k) for k in sent]
    assert kinds == sorted(kinds, key=[Kind.CONTENT, Kind.NAMED, Kind.TOP].index)
    assert sent.index("dists/stable/InRelease") > sent.index("dists/stable/Release")
    assert sent[-1] == "rpm/stable/x86_64/repodata/repomd.xml" or sent[-1].endswith("repodata/repomd.xml")


def test_what_the_tree_drops_stays_at_dest_for_the_generations_kept(
    repo: Repository, packages: PackageFactory, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror"
    old = f"pool/main/m/mattermost/mattermost_{V1}-1_amd64.deb"
    assert mmpkg("repo", "publish", repo.path, dest, "--keep-generations", "2")[0] == 0
    repo.remove("mattermost", f"{V1}-1", "stable", KEY)
    # The tree itself keeps the withdrawn file for its own clients for a while; drop it there
    # at once to see DEST's own grace.
    (repo.path / old).unlink()
    code, out, err = mmpkg("repo", "publish", repo.path, dest, "--keep-generations", "2", "--json")
    assert code == 0, err
    facts = json.loads(out)
    assert facts["deleted"] == [] and facts["waiting"] >= 1
    assert (dest / old).is_file()  # a client of the previous InRelease still finds it
    assert _reader_problems(repo, dest, tmp_path) == []
    _add(repo, packages, V3)
    code, out, err = mmpkg("repo", "publish", repo.path, dest, "--keep-generations", "2", "--json")
    assert code == 0, err + out
    assert old in json.loads(out)["deleted"]
    assert not (dest / old).exists()
    assert _reader_problems(repo, dest, tmp_path) == []


def test_a_publish_that_changes_nothing_is_no_generation(
    repo: Repository, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror"
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    for _ in range(3):
        code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--json")
        assert code == 0 and json.loads(out)["publish"] == 1 and json.loads(out)["sent"] == []


def test_a_dry_run_says_what_would_move_and_moves_nothing(
    repo: Repository, packages: PackageFactory, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror"
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    before = _files(dest)
    _add(repo, packages, V3)
    code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--dry-run")
    assert code == 0
    assert f"would send pool/main/m/mattermost/mattermost_{V3}-1_amd64.deb (content," in out
    assert "would send dists/stable/InRelease (top," in out
    assert _files(dest) == before
    code, out, _ = mmpkg("repo", "publish", repo.path, tmp_path / "never", "--dry-run")
    assert code == 0 and not (tmp_path / "never").exists()


def test_check_names_what_an_index_names_and_dest_lacks(
    repo: Repository, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror"
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    rpm = next(dest.glob("pool/main/m/mattermost/*.rpm"))
    rpm.unlink()
    by_hash = next(dest.glob("dists/stable/main/binary-amd64/by-hash/SHA256/*"))
    by_hash.write_bytes(b"not the index")
    code, out, err = mmpkg("repo", "check", dest)
    assert code == 7
    assert f"{rpm.relative_to(dest)}: named by an index, missing" in out
    assert "problem(s) found" in err


def test_bad_destinations_are_one_line_each(repo: Repository, tmp_path: Path, mmpkg: Mmpkg) -> None:
    code, _, err = mmpkg("repo", "publish", repo.path, repo.path)
    assert code == 2 and "that is the tree itself" in err
    code, _, err = mmpkg("repo", "publish", repo.path, "ftp://example.invalid/x")
    assert code == 2 and "not a destination mmpkg publishes to" in err and len(err.splitlines()) == 1
    code, _, err = mmpkg("repo", "publish", repo.path, "s3://")
    assert code == 2 and "name the bucket" in err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / STATE).write_text("{}")
    code, _, err = mmpkg("repo", "publish", repo.path, foreign)
    assert code == 10 and "not mmpkg's publish state" in err and len(err.splitlines()) == 1
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() != 0:  # root writes anywhere
        code, _, err = mmpkg("repo", "publish", repo.path, readonly)
        assert code == 10 and "rsync failed" in err


# -- killed at each step -----------------------------------------------------------------------

_KILLER = """#!/bin/sh
# rsync, counted; call number {at} kills the publish calling it with SIGKILL, after this call
# did its work ({after}=1) or before it. mmpkg gives tools a clean environment: all is written here.
n=$(($(cat {count} 2>/dev/null || echo 0) + 1))
echo "$n" > {count}
pid=$(cat {pidfile})
if [ "$n" = {at} ] && [ {after} != 1 ]; then kill -KILL "$pid"; exit 1; fi
/usr/bin/rsync "$@"; rc=$?
if [ "$n" = {at} ]; then kill -KILL "$pid"; fi
exit $rc
"""


def _publish_killed(tree: Path, dest: Path, tmp_path: Path, at: int, after: bool) -> tuple[int, int]:
    """`mmpkg repo publish` in its own process, killed at its `at`-th rsync; (its exit status,
    the number of rsync calls it made)."""
    bindir = tmp_path / "killer-bin"
    bindir.mkdir(exist_ok=True)
    count, pidfile = tmp_path / "count", tmp_path / "pid"
    count.unlink(missing_ok=True)
    (bindir / "rsync").write_text(_KILLER.format(at=at, after=int(after), count=count, pidfile=pidfile))
    (bindir / "rsync").chmod(0o755)
    script = (
        f"import os, sys; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
        "from mmpkg.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-c", script, "repo", "publish", str(tree), str(dest)],
        env=env,
        capture_output=True,
        text=True,
    )
    return proc.returncode, int(count.read_text()) if count.exists() else 0


def test_a_publish_killed_at_any_step_leaves_dest_readable_and_the_next_finishes(
    repo: Repository, packages: PackageFactory, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest = tmp_path / "mirror"
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    baseline = _files(dest)
    _add(repo, packages, V3)
    # How many rsync calls a whole publish makes: the kill sweep goes through every one.
    code, calls = _publish_killed(repo.path, tmp_path / "probe", tmp_path, at=10_000, after=True)
    assert code == 0 and calls >= 5
    killed = 0
    for at in range(1, calls + 1):
        for after in (False, True):
            sweep = tmp_path / f"sweep-{at}-{int(after)}"
            subprocess.run(["cp", "-a", str(dest), str(sweep)], check=True)
            code, _ = _publish_killed(repo.path, sweep, tmp_path, at=at, after=after)
            killed += code == -signal.SIGKILL
            # Readable as it stands: the old generation whole, or the new one.
            assert _reader_problems(repo, sweep, tmp_path) == [], (at, after)
            code, _, err = mmpkg("repo", "publish", repo.path, sweep)
            assert code == 0, err
            assert _reader_problems(repo, sweep, tmp_path) == []
            assert {k: v for k, v in _files(sweep).items() if k != STATE} == {
                **{k: v for k, v in baseline.items() if k != STATE and k in _files(sweep)},
                **_served(repo),
            }
            assert mmpkg("repo", "check", sweep)[0] == 0
    assert killed == 2 * calls


@pytest.fixture
def rsync_daemon(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An rsync daemon on a loopback port with one writable module, as a mirror runs one;
    (its rsync:// URL, the module's directory)."""
    harness.require("rsync", root=False)
    module = tmp_path / "module"
    module.mkdir()
    conf = tmp_path / "rsyncd.conf"
    conf.write_text(
        f"use chroot = no\nuid = {os.geteuid()}\ngid = {os.getegid()}\n"
        f"[mirror]\npath = {module}\nread only = false\n"
    )
    for _ in range(3):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proc = subprocess.Popen(
            ["rsync", "--daemon", "--no-detach", f"--config={conf}", "--address=127.0.0.1", f"--port={port}",
             f"--log-file={tmp_path / 'rsyncd.log'}"],
            start_new_session=True,
        )  # fmt: skip
        for _ in range(100):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            break
    try:
        yield f"rsync://127.0.0.1:{port}/mirror", module
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_publish_to_an_rsync_daemon_is_a_mirror_readers_find_whole(
    repo: Repository, packages: PackageFactory, rsync_daemon: tuple[str, Path], tmp_path: Path, mmpkg: Mmpkg
) -> None:
    url, module = rsync_daemon
    dest = f"{url}/mattermost"
    code, _, err = mmpkg("repo", "publish", repo.path, dest)
    assert code == 0, err
    assert _reader_problems(repo, module / "mattermost", tmp_path) == []
    assert mmpkg("repo", "check", dest, "--deep")[0] == 0
    _add(repo, packages, V3)
    code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--json")
    sent = {f["key"] for f in json.loads(out)["sent"]}
    assert f"pool/main/m/mattermost/mattermost_{V3}-1_amd64.deb" in sent
    assert f"pool/main/m/mattermost/mattermost_{V1}-1_amd64.deb" not in sent
    assert _reader_problems(repo, module / "mattermost", tmp_path) == []
    (module / "mattermost" / f"pool/main/m/mattermost/mattermost_{V3}-1_amd64.deb").unlink()
    code, out, _ = mmpkg("repo", "check", dest)
    assert code == 7 and f"mattermost_{V3}-1_amd64.deb: named by an index, missing" in out


def test_a_publish_over_a_remote_shell_reaches_host_path_mirrors(
    repo: Repository, tmp_path: Path, mmpkg: Mmpkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEST as HOST:PATH: rsync on both ends, talking over the remote shell $RSYNC_RSH names (ssh
    by default). The shell here is a stand-in for ssh that runs the remote command on this
    machine (no sshd runs in the tests), so what is shown is mmpkg's HOST:PATH path and rsync's
    remote-shell protocol, with the user's RSYNC_RSH carried through to rsync."""
    shell = tmp_path / "fake-ssh"
    log = tmp_path / "fake-ssh.log"
    shell.write_text(f'#!/bin/sh\necho "$1" >> {log}\nshift\nexec sh -c "$*"\n')
    shell.chmod(0o755)
    monkeypatch.setenv("RSYNC_RSH", str(shell))
    mirror = tmp_path / "mirror"
    dest = f"mirror.example.invalid:{mirror}"
    code, _, err = mmpkg("repo", "publish", repo.path, dest)
    assert code == 0, err
    assert set(log.read_text().split()) == {"mirror.example.invalid"}
    assert _reader_problems(repo, mirror, tmp_path) == []
    assert mmpkg("repo", "check", dest, "--deep")[0] == 0
    code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--json")
    assert code == 0 and json.loads(out)["sent"] == []
