"""`mmpkg sync URL --plan`: the plan from the served indices alone, over HTTP, the same as the
plan from the tree, and never a package downloaded for it."""

from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import json
import lzma
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mmpkg.errors import UpstreamError
from mmpkg.repo import Entry, Repository
from mmpkg.repo.retention import KEEP
from mmpkg.repo.served import (
    Served,
    decompress,
    packages_entries,
    primary_entries,
    primary_of,
    release_indices,
)
from tests.support.cli_runner import Mmpkg, runner
from tests.support.fake_upstream import Upstream, serve
from tests.support.packages import PackageFactory
from tests.test_repo import KEY, _Handler, gnupghome

__all__ = ["gnupghome"]  # the signing key's fixture, shared with test_repo.py

FIRST, SECOND, NEWEST, RC = "10.5.2", "10.11.1", "10.12.0", "10.12.1-rc1"
CHANNELS = ("stable", "esr", "rc")


@dataclass
class _Log:
    """What a served tree was asked for, and the body bytes it sent for each request."""

    requested: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.sent.values())


class _Recording(_Handler):
    """The static server of test_repo.py that records each request, and answers some paths
    with another file (`swapped`): a mirror or cache that mixes two publishes."""

    def __init__(self, *args: Any, log: _Log, swapped: dict[str, Path], **kwargs: Any) -> None:
        self.log, self.swapped = log, swapped
        super().__init__(*args, **kwargs)

    def send_head(self) -> Any:
        self.log.requested.append(self.path)
        return super().send_head()

    def translate_path(self, path: str) -> str:
        return str(self.swapped[path]) if path in self.swapped else super().translate_path(path)

    def copyfile(self, source: Any, outputfile: Any) -> None:
        data = source.read()
        outputfile.write(data)
        self.log.sent[self.path] = self.log.sent.get(self.path, 0) + len(data)


@contextlib.contextmanager
def _recording(tree: Path, swapped: dict[str, Path] | None = None) -> Iterator[tuple[str, _Log]]:
    log = _Log()
    handler = functools.partial(_Recording, directory=str(tree), log=log, swapped=swapped or {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", log
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def tree(gnupghome: Path, packages: PackageFactory, tmp_path_factory: pytest.TempPathFactory) -> Repository:
    """FIRST in stable and esr, SECOND then in stable; no rc channel."""
    repo = Repository(tmp_path_factory.mktemp("served") / "repo", gnupghome=gnupghome)
    first, second = packages.build(FIRST), packages.build(SECOND)
    repo.add([first.deb, first.rpm], "stable", KEY)
    repo.add([first.deb, first.rpm], "esr", KEY)
    repo.add([second.deb, second.rpm], "stable", KEY)
    return repo


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """Upstream's releases API listing four releases (the plan fetches no tarball)."""
    with serve() as up:
        for day, version in enumerate((FIRST, SECOND, NEWEST, RC), 1):
            up.releases.insert(
                0,
                {"tag_name": f"v{version}", "draft": False, "prerelease": "rc" in version,
                 "published_at": f"2025-01-{day:02}T12:00:00Z"},
            )  # fmt: skip
        yield up


@pytest.fixture
def mmpkg(gnupghome: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Mmpkg:
    monkeypatch.setenv("GNUPGHOME", str(gnupghome))
    return runner(capsys)


def _plan(mmpkg: Mmpkg, where: object, up: Upstream, *extra: str) -> tuple[int, str, str]:
    return mmpkg(
        "sync",
        where,
        "--since",
        "10.0.0",
        "--include-rc",
        "--api-url",
        up.api_url,
        "--plan",
        "--json",
        *extra,
    )


def _tree_bytes(tree: Path) -> int:
    return sum(f.stat().st_size for f in tree.rglob("*") if f.is_file() and not f.is_symlink())


def _package_bytes(tree: Path) -> int:
    # The shared pool, and the channels' own directories of trees published before it.
    files = [
        *tree.glob("pool/main/*/*/*.[dr][ep][bm]"),
        *tree.glob("pool/*/*.deb"),
        *tree.glob("rpm/*/*/Packages/*.rpm"),
    ]
    return sum(f.stat().st_size for f in files)


@pytest.mark.parametrize("keep", [[], ["--keep", "1"]], ids=["default-keep", "keep-1"])
def test_the_plan_from_the_url_is_the_plan_from_the_tree_and_fetches_no_package(
    keep: list[str], tree: Repository, upstream: Upstream, mmpkg: Mmpkg
) -> None:
    code, local, err = _plan(mmpkg, tree.path, upstream, *keep)
    assert code == 0, err
    with _recording(tree.path) as (url, log):
        code, remote, err = _plan(mmpkg, url, upstream, *keep)
        assert code == 0, err
        sent, requested = log.total, list(log.requested)
        # The listing itself, channel by channel, is the tree's.
        served = Served(url, CHANNELS)
        for channel in CHANNELS:
            assert served.list(channel) == tree.list(channel), channel
        assert served.channels() == tree.channels() == ["esr", "stable"]
    plan = json.loads(remote)
    assert plan == json.loads(local)
    assert [(i["version"], i["channels"], i["previous"]) for i in plan] == [
        (SECOND, ["esr"], FIRST),
        (NEWEST, ["stable"], SECOND),
        (RC, ["rc"], None),  # the absent channel (404) lacks everything
    ]
    if keep:
        assert any(i["prunes"] for i in plan), plan
    # Only indices: no pool/, no rpm/CHANNEL/ARCH/Packages/; the rc channel answered 404.
    assert not [p for p in log.requested if p.startswith("/pool/") or "/Packages/" in p], log.requested
    assert {"/dists/rc/InRelease", "/dists/rc/Release", "/rpm/rc/x86_64/repodata/repomd.xml"} <= set(
        log.requested
    )
    # The plan's own requests: the indices, a small part of the packages.
    assert all(p.startswith(("/dists/", "/rpm/")) for p in requested), requested
    packages, whole = _package_bytes(tree.path), _tree_bytes(tree.path)
    assert sent < packages / 10, f"the plan read {sent} bytes; the packages are {packages}, the tree {whole}"


@pytest.mark.parametrize("half", ["apt", "dnf"])
def test_an_index_of_another_publish_is_one_error_line(
    half: str, tree: Repository, upstream: Upstream, mmpkg: Mmpkg
) -> None:
    """Read while it is published (or from a mirror that mixes two publishes), an index is not
    the one its Release or repomd.xml lists: exit 9 and one line naming it, not a wrong plan.
    The index served instead is an earlier publish's, which each generation still carries."""
    if half == "apt":
        _, listed = release_indices((tree.path / "dists/stable/Release").read_text(), "Release")
        digest = listed["main/binary-amd64/Packages.xz"][0]
        current = tree.path / f"dists/stable/main/binary-amd64/by-hash/SHA256/{digest}"
        old = next(f for f in sorted(current.parent.iterdir()) if f.name != digest and _is_xz(f))
    else:
        repodata = tree.path / "rpm/stable/x86_64/repodata"
        href, *_ = primary_of((repodata / "repomd.xml").read_bytes(), "repomd.xml")
        current = tree.path / "rpm/stable/x86_64" / href
        old = next(f for f in sorted(repodata.glob("*-primary.xml.*")) if f.name != current.name)
    swapped = f"/{current.relative_to(tree.path)}"
    with _recording(tree.path, {swapped: old}) as (url, _):
        code, out, err = _plan(mmpkg, url, upstream)
    assert code == UpstreamError.exit_code == 9
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"mmpkg: error: sync --plan: {url.rstrip('/')}{swapped} is not the file "), line
    assert "run again" in line


def _is_xz(path: Path) -> bool:
    return path.read_bytes()[:6] == b"\xfd7zXZ\x00"


def test_a_url_that_serves_nothing_lacks_everything(upstream: Upstream, mmpkg: Mmpkg, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, local, err = _plan(mmpkg, tmp_path / "nothing", upstream)
    assert code == 0, err
    with _recording(tmp_path / "empty") as (url, log):
        code, remote, err = _plan(mmpkg, url, upstream)
    assert code == 0, err
    assert (
        err == f"mmpkg: {url} serves none of the channels the rules name: is it the repository's root URL?\n"
    )
    assert json.loads(remote) == json.loads(local)
    assert [(i["version"], i["channels"]) for i in json.loads(remote)] == [
        (FIRST, ["stable", "esr"]), (SECOND, ["stable", "esr"]), (NEWEST, ["stable"]), (RC, ["rc"]),
    ]  # fmt: skip
    assert log.total < 4096  # 404 pages only


def test_sync_from_a_url_publishes_nothing_and_says_why(upstream: Upstream, mmpkg: Mmpkg) -> None:
    with _recording(Path("/nonexistent")) as (url, log):
        where = url.replace("http://", "http://user:s3cret@")
        code, out, err = mmpkg("sync", where, "--since", "10.0.0", "--api-url", upstream.api_url)
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(f"mmpkg: error: sync {url}: only --plan reads a repository from its URL"), line
    assert "tree on disk" in line and "s3cret" not in line
    assert log.requested == []


# -- the formats, on small inputs -------------------------------------------------------------

INRELEASE = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: mmpkg
Acquire-By-Hash: yes
SHA256:
 aaaa 10 main/binary-amd64/Packages
 bbbb 20 main/binary-amd64/Packages.xz
-----BEGIN PGP SIGNATURE-----

iQ==
-----END PGP SIGNATURE-----
"""

PACKAGES = """\
Package: mattermost
Version: 10.5.2-1
Architecture: amd64
Filename: pool/stable/mattermost_10.5.2-1_amd64.deb
Description: a server
 over two lines

Package: mattermost-archive-keyring
Version: 1:3-1
Architecture: all
Filename: pool/stable/mattermost-archive-keyring_1%3a3-1_all.deb
"""

REPOMD = b"""<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <data type="filelists"><checksum type="sha256">ffff</checksum>
    <location href="repodata/ffff-filelists.xml.gz"/><size>9</size></data>
  <data type="primary"><checksum type="sha256">abcd</checksum><open-checksum type="sha256">0</open-checksum>
    <location href="repodata/abcd-primary.xml.zst"/><size>123</size><open-size>456</open-size></data>
</repomd>
"""

PRIMARY = b"""<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">
<package type="rpm"><name>mattermost</name><arch>x86_64</arch>
  <version epoch="0" ver="10.12.0~rc1" rel="1"/><checksum type="sha256" pkgid="YES">00</checksum>
  <location href="Packages/mattermost-10.12.0~rc1-1.x86_64.rpm"/></package>
<package type="rpm"><name>mattermost</name><arch>x86_64</arch>
  <version epoch="0" ver="10.12.0~rc2" rel="1"/><checksum type="sha256" pkgid="YES">00</checksum>
  <location href="../../../pool/main/m/mattermost/mattermost-10.12.0~rc2-1.x86_64.rpm"/></package>
</metadata>
"""


def test_release_packages_repomd_and_primary_read_as_the_repository_names_them() -> None:
    by_hash, listed = release_indices(INRELEASE, "InRelease")
    assert by_hash
    assert listed == {
        "main/binary-amd64/Packages": ("aaaa", 10),
        "main/binary-amd64/Packages.xz": ("bbbb", 20),
    }
    assert packages_entries(PACKAGES, "Packages") == [
        Entry("mattermost", "10.5.2-1", "amd64", "deb", Path("pool/stable/mattermost_10.5.2-1_amd64.deb")),
        Entry("mattermost-archive-keyring", "1:3-1", "all", "deb",
              Path("pool/stable/mattermost-archive-keyring_1%3a3-1_all.deb")),
    ]  # fmt: skip
    assert primary_of(REPOMD, "repomd.xml") == ("repodata/abcd-primary.xml.zst", "sha256", "abcd", 123)
    assert primary_entries(PRIMARY, "rpm/rc/x86_64", "primary") == [
        Entry("mattermost", "10.12.0~rc1-1", "x86_64", "rpm",
              Path("rpm/rc/x86_64/Packages/mattermost-10.12.0~rc1-1.x86_64.rpm")),
        Entry("mattermost", "10.12.0~rc2-1", "x86_64", "rpm",
              Path("pool/main/m/mattermost/mattermost-10.12.0~rc2-1.x86_64.rpm")),
    ]  # fmt: skip


def test_an_href_out_of_the_tree_is_refused() -> None:
    out = PRIMARY.replace(b"../../../pool", b"../../../../pool")
    with pytest.raises(UpstreamError, match="leads out of the repository"):
        primary_entries(out, "rpm/rc/x86_64", "primary")


@pytest.mark.parametrize(
    "bad",
    [
        lambda: packages_entries("Package: mattermost\nVersion: 1-1\n", "P"),
        lambda: primary_of(b"<repomd/>", "R"),
        lambda: primary_of(b"<html>not found", "R"),
        lambda: primary_entries(PRIMARY.replace(b' rel="1"', b""), "b", "P"),
        lambda: release_indices("SHA256:\n aaaa ten main/binary-amd64/Packages\n", "R"),
        lambda: decompress("Packages.xz", lzma.compress(b"x" * 1000)[:-8], "P"),
        lambda: decompress("primary.xml.gz", b"not gzip", "P"),
    ],
    ids=["stanza", "no-primary", "not-xml", "no-rel", "sha256-field", "cut-short", "not-gzip"],
)
def test_a_malformed_index_is_an_upstream_error(bad: Any) -> None:
    with pytest.raises(UpstreamError):
        bad()


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2", ".zst", ""])
def test_each_compression_createrepo_c_and_apt_ftparchive_write_is_read(suffix: str) -> None:
    text = b"<metadata/>\n" * 100
    if suffix == ".zst":
        if not shutil.which("zstd"):
            pytest.skip("zstd is not installed")
        data = subprocess.run(["zstd", "-q", "-c"], input=text, capture_output=True, check=True).stdout
    else:
        compressions: dict[str, Callable[[bytes], bytes]] = {
            ".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress, "": bytes
        }  # fmt: skip
        data = compressions[suffix](text)
    assert decompress(f"primary.xml{suffix}", data, "here") == text


def test_over_http_the_keep_is_the_given_one_else_the_default() -> None:
    """The channel's stored --keep is in the private state, which is not served."""
    served = Served("http://127.0.0.1:1/repo", ["stable"])
    assert (served.keep("stable"), served.keep("stable", 2)) == (KEEP, 2)
