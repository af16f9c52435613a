"""`mmpkg repo publish REPO s3://BUCKET/PREFIX` against a real object store: OpenStack Swift
with its S3 API (tests/support/swift.py), read anonymously over HTTP as a CDN or a fleet reads
it. What arrives, with which headers; that only what changed is sent; a publish killed before
or after each of its requests; real apt and dnf reading in a loop while publishes run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmpkg.repo import Repository
from mmpkg.repo.clients import ClientFormat, client_config
from mmpkg.repo.remote.objects import CACHE_CONTROL, Kind, kind_of
from tests.support import harness, repo_reader
from tests.support.cli_runner import Mmpkg, runner
from tests.support.packages import PackageFactory
from tests.support.swift import SwiftStore, swift_store
from tests.test_repo import KEY, KEYRING, RPM_KEY, V1, gnupghome

__all__ = ["gnupghome"]

V3 = "10.11.2"
ARCHES = ("x86_64", "aarch64")
_buckets = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def store() -> Iterator[SwiftStore]:
    with swift_store() as running:
        yield running


@pytest.fixture
def bucket(store: SwiftStore, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A new public bucket, and the S3 environment of the store's user; (s3:// DEST, public URL)."""
    name = f"mm-{os.getpid()}-{next(_buckets)}"
    url = store.make_public_bucket(name)
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{name}/apt-and-dnf", f"{url}/apt-and-dnf"


@pytest.fixture
def mmpkg(capsys: pytest.CaptureFixture[str]) -> Mmpkg:
    return runner(capsys)


@pytest.fixture
def repo(tmp_path: Path, gnupghome: Path, packages: PackageFactory) -> Repository:
    tree = Repository(tmp_path / "repo", gnupghome=gnupghome)
    _add(tree, packages, V1)
    return tree


def _add(repo: Repository, packages: PackageFactory, version: str) -> None:
    built = packages.build(version)
    repo.add([built.deb, built.rpm], "stable", KEY)


def _problems(repo: Repository, url: str, tmp_path: Path) -> list[str]:
    ring = repo_reader.keyring(repo.export_key(), tmp_path)
    return repo_reader.problems(repo_reader.http_fetch(url), ring, "stable", ARCHES)


def _head(url: str) -> dict[str, str]:
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=30) as response:
        return {k.lower(): v for k, v in response.headers.items()}


def test_a_publish_to_s3_is_read_whole_with_cache_headers_for_a_cdn(
    repo: Repository, packages: PackageFactory, bucket: tuple[str, str], tmp_path: Path, mmpkg: Mmpkg
) -> None:
    dest, url = bucket
    code, out, err = mmpkg("repo", "publish", repo.path, dest, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["publish"] == 1 and first["sent"]
    assert _problems(repo, url, tmp_path) == []
    deb = f"pool/main/m/mattermost/mattermost_{V1}-1_amd64.deb"
    headers = _head(f"{url}/{deb}")
    assert headers["cache-control"] == CACHE_CONTROL[Kind.CONTENT] and "immutable" in headers["cache-control"]
    assert headers["content-type"] == "application/vnd.debian.binary-package"
    for top in ("dists/stable/InRelease", "rpm/stable/x86_64/repodata/repomd.xml"):
        assert _head(f"{url}/{top}")["cache-control"] == CACHE_CONTROL[Kind.TOP]
    by_hash = next(f["key"] for f in first["sent"] if "/by-hash/" in f["key"])
    assert _head(f"{url}/{by_hash}")["cache-control"] == CACHE_CONTROL[Kind.CONTENT]
    # The state is mmpkg's, never cached.
    assert _head(f"{url}/.mmpkg-publish.json")["cache-control"] == "no-store"
    code, out, _ = mmpkg("repo", "check", dest)
    assert code == 0 and out == ""
    code, out, _ = mmpkg("repo", "check", dest, "--deep")
    assert code == 0 and out == ""
    # Nothing new: nothing sent. One new release: its packages, the indices, nothing else.
    code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--json")
    assert code == 0 and json.loads(out)["sent"] == []
    _add(repo, packages, V3)
    code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--json")
    second = json.loads(out)
    pool = {f["key"] for f in second["sent"] if f["key"].startswith("pool/")}
    assert pool == {
        f"pool/main/m/mattermost/mattermost_{V3}-1_amd64.deb",
        f"pool/main/m/mattermost/mattermost-{V3}-1.x86_64.rpm",
    }
    assert second["bytes"] < first["bytes"]
    assert _problems(repo, url, tmp_path) == []
    assert mmpkg("repo", "check", dest, "--deep")[0] == 0


def test_store_errors_are_one_line_and_exit_10(
    repo: Repository,
    store: SwiftStore,
    bucket: tuple[str, str],
    mmpkg: Mmpkg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest, _ = bucket
    code, _, err = mmpkg("repo", "publish", repo.path, "s3://no-such-bucket-here/x")
    assert code == 10 and "no bucket no-such-bucket-here" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    code, _, err = mmpkg("repo", "publish", repo.path, dest)
    assert code == 10 and "access denied" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", store.secret_key)
    code, _, err = mmpkg("repo", "publish", repo.path, dest, "--endpoint-url", "http://127.0.0.1:9")
    assert code == 10 and "127.0.0.1:9" in err and len(err.splitlines()) == 1


# -- killed before or after each request -------------------------------------------------------

# mmpkg's command, in a process of its own that SIGKILLs itself before (or after) its Nth
# request of one kind to the store (botocore's one place that sends, watched): "read", "state"
# (a write of mmpkg's state), "delete", or the kind of object it writes.
_KILLER = r"""
import os, signal, sys, threading
import botocore.endpoint
from mmpkg.repo.remote.objects import kind_of
kind, at, after, log = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "after", sys.argv[4]
lock, seen = threading.Lock(), {}
send = botocore.endpoint.Endpoint._send
def kind_of_request(request):
    key = request.url.split("/apt-and-dnf/", 1)[-1].split("?")[0]
    if request.method == "GET":
        return "read"
    if request.method == "DELETE":
        return "delete"
    return "state" if key == ".mmpkg-publish.json" else kind_of(key).value
def watched(self, request):
    mine = kind_of_request(request)
    with lock:
        seen[mine] = seen.get(mine, 0) + 1
        hit = mine == kind and seen[mine] == at
        with open(log, "a") as fh:
            fh.write(f"{mine} {request.method} {request.url}\n")
    if hit and not after:
        os.kill(os.getpid(), signal.SIGKILL)
    response = send(self, request)
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
    return response
botocore.endpoint.Endpoint._send = watched
from mmpkg.cli import main
sys.exit(main(sys.argv[5:]))
"""

Point = tuple[str, int, bool]  # the kind of request, its number among those, killed after it


def _killed(tree: Path, dest: str, log: Path, point: Point) -> tuple[int, list[str]]:
    """(exit status, the requests it made, each "KIND METHOD URL")."""
    kind, at, after = point
    log.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, kind, str(at), "after" if after else "before", str(log),
         "repo", "publish", str(tree), dest, "--jobs", "1"],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300,
    )  # fmt: skip
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr[-3000:]
    return proc.returncode, log.read_text().splitlines() if log.exists() else []


def _points(plan: dict[str, object]) -> list[Point]:
    """Where to kill a publish of `plan` (its --dry-run --json): before each request, but only
    the first and last of the new content's (one more of them sent or not, with no index naming
    them yet, changes nothing a reader sees); after the last. Killed after one request is killed
    before the next, but for mmpkg's own work between them."""
    sent = plan["sent"]
    assert isinstance(sent, list)
    count = Counter(str(f["kind"]) for f in sent)
    deletes = len(plan["deleted"])  # type: ignore[arg-type]
    steps = sum(1 for kind in ("content", "named", "top") if count[kind])
    writes = 1 + steps + 1 + (1 if deletes else 0)  # the content step's first, each step's, the last
    points: list[Point] = [("read", 1, False)]
    points += [("state", n, False) for n in range(1, writes + 1)]
    points += [("content", n, False) for n in sorted({1, count["content"]}) if count["content"]]
    points += [("named", n, False) for n in range(1, count["named"] + 1)]
    points += [("top", n, False) for n in range(1, count["top"] + 1)]
    points += [("delete", n, False) for n in range(1, deletes + 1)]
    return [*points, ("state", writes, True)]


def _is_content(request: str) -> bool:
    key = request.split()[-1].split("/apt-and-dnf/", 1)[-1]
    return kind_of(key) is Kind.CONTENT


def _pair_split(last: str, *, after: bool) -> str | None:
    """The architecture whose repomd.xml and its signature the killed publish left from two
    publishes, when it was killed between the two: S3 writes one object at a time, and dnf's
    format has two signed top files. None otherwise."""
    found = re.search(r"/rpm/stable/([^/]+)/repodata/(repomd\.xml(?:\.asc)?)$", last.split()[-1])
    if found and last.split()[1] == "PUT":
        arch, name = found.groups()
        # The signature goes first: killed after it, or before its repomd.xml.
        if (after and name == "repomd.xml.asc") or (not after and name == "repomd.xml"):
            return arch
    return None


def test_a_publish_killed_before_or_after_any_request_leaves_the_store_readable(
    repo: Repository, packages: PackageFactory, bucket: tuple[str, str], tmp_path: Path, mmpkg: Mmpkg,
    terminal_summary: Callable[[str], None],
) -> None:  # fmt: skip
    dest, url = bucket
    repo.set_keep("stable", 2)  # withdrawals, and so deletes at DEST, from the third release on
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    versions = iter(f"10.11.{n}" for n in range(2, 100))
    # Releases until a publish has every step, deletes included: files the tree withdrew
    # (after its own grace) and DEST kept for as many publishes again.
    for _ in range(12):
        _add(repo, packages, next(versions))
        code, out, _ = mmpkg("repo", "publish", repo.path, dest, "--dry-run", "--json")
        if json.loads(out)["deleted"]:
            break
        assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    points = _points(json.loads(out))
    assert {kind for kind, _, _ in points} == {"read", "state", "content", "named", "top", "delete"}
    split, kills = Counter[str](), 0
    for point in points:
        code, sent = _killed(repo.path, dest, tmp_path / "log", point)
        assert code == -signal.SIGKILL, (point, sent)
        kills += 1
        arch = _pair_split(sent[-1], after=point[2])
        expected = (
            []
            if arch is None
            else [f"rpm/stable/{arch}/repodata/repomd.xml is missing or its signature does not verify"]
        )
        assert _problems(repo, url, tmp_path) == expected, (point, sent[-1])
        if arch:
            split[arch] += 1
        code, _, err = mmpkg("repo", "publish", repo.path, dest)
        assert code == 0, err
        assert _problems(repo, url, tmp_path) == []
        _add(repo, packages, next(versions))
    assert split == {arch: 1 for arch in ARCHES}
    assert mmpkg("repo", "check", dest, "--deep")[0] == 0
    terminal_summary(
        f"publish to Swift killed at {kills} points, before each request of every step and after the last: "
        f"apt readable after every one; dnf's repomd.xml and signature split by {sum(split.values())} "
        "(killed between its two objects), whole again after the next publish"
    )


# -- real clients reading while publishes run --------------------------------------------------

# What apt and dnf say when an index or a package is not the one the file naming it describes.
_MISMATCH = re.compile(
    r"Hash Sum mismatch|checksum doesn't match|Checksum mismatch|[Cc]hecksum.*does not match"
)
_SIZE = re.compile(r"unexpected size|Size mismatch|size doesn't match")
# dnf's repomd.xml and its signature are two objects, written one after the other: a client
# reading one of each publish is refused it, and reads the pair again at its next run.
_PAIR = re.compile(r"repomd\.xml GPG signature verification error")


class Loop:
    """A real client in `root` running `command` again and again from start() to stop(), as a
    server's timer would while a publish runs: each run's outcome counted."""

    def __init__(self, run: Callable[[], subprocess.CompletedProcess[str]]) -> None:
        self.run = run
        self.counts = Counter[str]()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            proc = self.run()
            out = proc.stdout + proc.stderr
            kind = (
                "ok" if proc.returncode == 0 and not _PAIR.search(out) else
                "hash mismatch" if _MISMATCH.search(out) else
                "unexpected size" if _SIZE.search(out) else
                "signature pair" if _PAIR.search(out) else
                "other"
            )  # fmt: skip
            self.counts[kind] += 1
            if kind != "ok":
                self.failures.append(out[-2000:])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=300)


@pytest.mark.install
def test_apt_and_dnf_reading_in_a_loop_while_publishes_run_see_one_generation(
    repo: Repository, packages: PackageFactory, bucket: tuple[str, str], root: harness.Root,
    mmpkg: Mmpkg, terminal_summary: Callable[[str], None],
) -> None:  # fmt: skip
    harness.require(*harness.DNF_TOOLS)
    dest, url = bucket
    repo.set_keep("stable", 2)  # withdrawals, and so deletes at DEST, as the publishes go on
    assert mmpkg("repo", "publish", repo.path, dest)[0] == 0
    root.sh(
        "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings /etc/yum.repos.d /srv/get"
    )
    root.path(KEYRING).write_bytes((repo.path / "keys/archive-keyring.gpg").read_bytes())
    [apt_source] = client_config(url, "stable", ClientFormat.APT)
    root.write_text(apt_source.path, apt_source.text)
    root.path(RPM_KEY).parent.mkdir(parents=True, exist_ok=True)
    root.write_text(RPM_KEY, repo.export_key())
    [dnf_source] = client_config(url, "stable", ClientFormat.DNF)
    root.write_text("/etc/yum.repos.d/mattermost.repo", dnf_source.text)
    root.dnf("--setopt=reposdir=/etc/yum.repos.d", "makecache", repo_dir=None)  # the key, imported once

    def apt() -> subprocess.CompletedProcess[str]:
        # The indices, then the newest package they name: index and pool from one generation.
        return root.sh(
            "apt-get update --error-on=any && cd /srv/get && apt-get download mattermost && rm -f ./*.deb",
            check=False,
        )

    def dnf() -> subprocess.CompletedProcess[str]:
        return root.dnf("--setopt=reposdir=/etc/yum.repos.d", "makecache", repo_dir=None, check=False)

    readers = {"apt": Loop(apt), "dnf": Loop(dnf)}
    for reader in readers.values():
        reader.start()
    versions = iter(f"10.11.{n}" for n in range(2, 100))
    publishes = 0
    try:
        # Publishes one after the other, until each reader has read through at least ten.
        while publishes < 8 or min(sum(r.counts.values()) for r in readers.values()) < 10:
            _add(repo, packages, next(versions))
            code, _, err = mmpkg("repo", "publish", repo.path, dest)
            assert code == 0, err
            publishes += 1
            assert publishes < 40, {name: r.counts for name, r in readers.items()}
    finally:
        for reader in readers.values():
            reader.stop()
    counts = {name: dict(r.counts) for name, r in readers.items()}
    terminal_summary(f"apt and dnf reading Swift in a loop through {publishes} publishes: {counts}")
    for name, reader in readers.items():
        assert reader.counts["ok"] >= 5, (name, reader.failures[:3])
        wrong = {k: v for k, v in reader.counts.items() if k not in ("ok", "signature pair")}
        assert wrong == {}, (name, wrong, reader.failures[:3])
    # Once the publishes are over, every reader is served whole.
    assert apt().returncode == 0
    assert _problems(repo, url, tmp_path=root.path("/srv")) == []
    out = dnf()
    assert out.returncode == 0 and not _PAIR.search(out.stdout + out.stderr)
    installed = root.dnf("--setopt=reposdir=/etc/yum.repos.d", "install", "mattermost", repo_dir=None)
    assert installed.returncode == 0
