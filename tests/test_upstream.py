"""`mmpkg releases`, `mmpkg fetch` and `mmpkg build VERSION` against a loopback upstream: the
GitHub API's pages and limits, and every way a download can fail, with gpgv as the judge."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmpkg.errors import OutputError, ReleaseError, UpstreamError, UsageError
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.upstream import Http, fetch, releases, signature, trusted_keys
from mmpkg.upstream.download import Progress
from mmpkg.upstream.github import sends_token
from mmpkg.upstream.release_keys import FINGERPRINTS
from tests.support import harness
from tests.support.cli_runner import Mmpkg, runner
from tests.support.fake_upstream import API_PATH, OTHER_KEY, SigningKeys, Upstream, serve
from tests.test_output import small_disk

V1, V2 = "10.5.2", "10.11.1"
# Quick to give up: the failure tests wait for timeouts and retries.
FAST: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 0.5, "attempts": 2, "backoff": 0.0}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    harness.require("gpg", "gpgv", root=False)
    return SigningKeys.make(tmp_path_factory.mktemp("upstream-gnupg") / "home")


@pytest.fixture(scope="module")
def upstream(keys: SigningKeys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """Five releases on three pages: a draft, a release candidate, and three finals."""
    work = tmp_path_factory.mktemp("upstream")
    with serve() as up:
        up.release("10.4.0", keys, work)
        up.release(V1, keys, work)
        up.release("10.6.0-rc1", keys, work, prerelease=True)
        up.release(V2, keys, work)
        up.release("10.12.0", keys, work, draft=True)
        up.files["/pubkey.gpg"] = keys.public()
        yield up


@pytest.fixture(autouse=True)
def _reset(upstream: Upstream) -> None:
    upstream.faults.clear()
    upstream.rate_limited = False
    upstream.link_url = ""


@pytest.fixture
def keyring(keys: SigningKeys, tmp_path: Path) -> Path:
    return keys.keyring_file(tmp_path / "release-key.asc")


@pytest.fixture
def mmpkg(capsys: pytest.CaptureFixture[str]) -> Mmpkg:
    return runner(capsys)


def _files(folder: Path) -> list[str]:
    """What a later run could take: every file that is not a temporary (dot) one."""
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


def test_releases_follow_the_pages_newest_first(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    before = len(upstream.api_requests())
    found = releases(api_url=upstream.api_url)
    assert [str(r.version) for r in found] == [V2, V1, "10.4.0"]
    asked = upstream.api_requests()[before:]
    assert len(asked) == 3  # five releases, two a page
    assert all(h["Authorization"] == "Bearer t0ken" for h in asked)
    with_rc = releases(api_url=upstream.api_url, include_rc=True, since=MattermostVersion.parse(V1))
    assert [str(r.version) for r in with_rc] == [V2, "10.6.0-rc1", V1]


def test_releases_command_prints_json_and_sends_no_token_unless_set(
    upstream: Upstream, mmpkg: Mmpkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    before = len(upstream.api_requests())
    code, out, _ = mmpkg("releases", "--api-url", upstream.api_url, "--since", V1, "--json")
    assert code == 0
    assert [r["version"] for r in json.loads(out)] == [V2, V1]
    assert all("Authorization" not in h for h in upstream.api_requests()[before:])


def test_the_token_goes_to_the_api_host_only(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `Link` to the next page on another host (here the same server, as localhost) is not
    followed, least of all with the token; nor is the token sent over plain http but to a
    loopback address."""
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    port = upstream.url.rsplit(":", 1)[1]
    upstream.link_url = f"http://localhost:{port}/api"
    before = len(upstream.requests)
    with pytest.raises(UpstreamError, match=rf"next page is at http://localhost:{port}/.*not followed"):
        releases(api_url=upstream.api_url, http=Http(**FAST))
    elsewhere = [h for _, h in upstream.requests[before:] if h["Host"] != f"127.0.0.1:{port}"]
    assert all("Authorization" not in h for h in elsewhere)
    assert sends_token("https://api.github.com/repos/x?page=2", "https://api.github.com")
    assert not sends_token("http://api.github.com/repos/x?page=2", "http://api.github.com")
    assert not sends_token("https://api.github.com.example/repos", "https://api.github.com")
    assert sends_token(f"{upstream.api_url}/repos", upstream.api_url)


def test_a_token_is_never_shown(upstream: Upstream, mmpkg: Mmpkg, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token that cannot be sent (a newline from the file it was read from) is an error that
    does not show it."""
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken-s3cret\n")
    code, _, err = mmpkg("releases", "--api-url", upstream.api_url)
    assert code == UpstreamError.exit_code
    assert len(err.splitlines()) == 1 and "t0ken-s3cret" not in err


def test_a_password_in_a_url_is_never_shown(
    upstream: Upstream, keyring: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A mirror's user and password in --base-url go to the mirror, not into messages."""
    base = upstream.url.replace("http://", "http://mirroruser:mirrorpw@")
    upstream.faults[Upstream.path_of(V1)] = ["cut"] * FAST["attempts"]
    with caplog.at_level(logging.INFO, logger="mmpkg"), pytest.raises(UpstreamError) as caught:
        fetch(
            MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=base,
            cache=tmp_path / "cache", http=Http(**FAST),
        )  # fmt: skip
    assert f"{upstream.url}/{V1}/" in str(caught.value)
    for text in (str(caught.value), caplog.text):
        assert "mirroruser" not in text and "mirrorpw" not in text


def test_a_rate_limit_is_one_line_with_the_reset_time(upstream: Upstream, mmpkg: Mmpkg) -> None:
    upstream.rate_limited = True
    code, out, err = mmpkg("releases", "--api-url", upstream.api_url)
    assert code == UpstreamError.exit_code
    assert out == ""
    assert len(err.splitlines()) == 1
    assert time.strftime("%H:%M:%S UTC", time.gmtime(upstream.rate_reset)) in err
    assert "GITHUB_TOKEN" in err


@pytest.mark.parametrize("fault", ["trickle", "trickle-head"])
def test_an_api_that_trickles_is_given_up_at_the_deadline(fault: str, upstream: Upstream) -> None:
    """A byte every 50 ms never meets the read timeout; the deadline for the whole answer, from
    its status line or from its body on, ends the exchange all the same."""
    upstream.faults[API_PATH] = [fault] * FAST["attempts"]
    with pytest.raises(UpstreamError, match=r"no complete answer within 1 s") as caught:
        releases(api_url=upstream.api_url, http=Http(**FAST, deadline=1.0))
    assert "\n" not in str(caught.value)


def test_an_endless_signature_is_refused_before_it_is_read_whole(
    upstream: Upstream, keyring: Path, tmp_path: Path
) -> None:
    path = Upstream.path_of(V1) + ".sig"
    upstream.faults[path] = ["endless"]
    before = upstream.sent[path]
    with pytest.raises(UpstreamError, match=r"signature of .*: .* sends more than 65536 bytes"):
        fetch(
            MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=upstream.url,
            cache=tmp_path / "cache", http=Http(**FAST),
        )  # fmt: skip
    # The client hung up at its limit: the server's writes failed long before its 64 MiB.
    assert upstream.sent[path] - before < upstream.endless_bytes // 2
    assert _files(tmp_path / "cache") == []


def test_a_tarball_that_trickles_is_given_up_at_the_deadline_of_each_attempt(
    upstream: Upstream, keyring: Path, tmp_path: Path
) -> None:
    """Each attempt has its deadline, and the next resumes; a server that trickles every one
    is a failed download, not a sync that never ends (the thread's join is only a bound)."""
    path = Upstream.path_of(V1)
    upstream.faults[path] = ["trickle"] * FAST["attempts"]
    caught: list[BaseException] = []

    def attempt() -> None:
        try:
            fetch(
                MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=upstream.url,
                cache=tmp_path / "cache", http=Http(**FAST, download_deadline=1.0),
            )  # fmt: skip
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the download still runs"
    (error,) = caught
    assert isinstance(error, UpstreamError)
    assert f"download failed after {FAST['attempts']} attempts: the download took longer than 1 s" in str(
        error
    )
    assert _files(tmp_path / "cache") == []


def test_an_endless_tarball_stops_at_the_limit_and_leaves_no_partial_file(
    upstream: Upstream, keyring: Path, tmp_path: Path
) -> None:
    path, cache = Upstream.path_of(V1), tmp_path / "cache"
    upstream.faults[path] = ["endless"]
    before = upstream.sent[path]
    with pytest.raises(UpstreamError, match=r"more than 1048576 bytes.*MMPKG_MAX_TARBALL_MIB") as caught:
        fetch(
            MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=upstream.url,
            cache=cache, http=Http(**FAST, max_tarball=1 << 20),
        )  # fmt: skip
    assert "cut short" not in str(caught.value)
    # The client hung up at its limit: the server's writes failed long before its 64 MiB.
    assert upstream.sent[path] - before < upstream.endless_bytes // 2
    assert [p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []
    # A length over the limit is refused before the body is read.
    with pytest.raises(UpstreamError, match=r"more than 1000 bytes"):
        fetch(
            MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=upstream.url,
            cache=cache, http=Http(**FAST, max_tarball=1000),
        )  # fmt: skip
    assert [p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []


def test_a_cache_with_no_room_left_is_said_to_be_full(
    upstream: Upstream, keyring: Path, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    """A full disk is no download cut short: it is not retried, and no partial file stays."""
    with small_disk(tmp_path, 8) as disk:
        code, _, err = mmpkg(
            "fetch", V1, "--base-url", upstream.url, "--keyring", keyring, "--cache", disk / "cache",
            "--dest", tmp_path / "dest",
        )  # fmt: skip
        parts = list((disk / "cache").rglob("*.part"))
    assert code == OutputError.exit_code, err
    assert err.startswith(f"mmpkg: error: cannot write {Path(Upstream.path_of(V1)).name} into the cache ")
    assert "No space left on device" in err and len(err.splitlines()) == 1
    assert parts == []


def test_fetch_verifies_and_a_second_fetch_downloads_nothing(
    upstream: Upstream, keyring: Path, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    path = Upstream.path_of(V1)
    data = upstream.files[path]
    before = upstream.sent[path]
    args = ("fetch", V1, "--base-url", upstream.url, "--keyring", keyring, "--cache", tmp_path / "cache")
    code, out, _ = mmpkg(*args, "--dest", tmp_path / "a", "--sha256", hashlib.sha256(data).hexdigest())
    assert code == 0
    assert Path(out.strip()).read_bytes() == data
    assert upstream.sent[path] - before == len(data)
    code, out, _ = mmpkg(*args, "--dest", tmp_path / "b", "--json")
    assert code == 0
    assert '"downloaded": 0' in out
    assert upstream.sent[path] - before == len(data)
    assert (tmp_path / "b" / Path(path).name).read_bytes() == data


def test_a_cut_download_resumes_where_it_stopped(
    upstream: Upstream, keys: SigningKeys, keyring: Path, tmp_path: Path
) -> None:
    path = Upstream.path_of(V2)
    upstream.faults[path] = ["cut", "500"]
    before, asked = upstream.sent[path], len(upstream.requests)
    seen: list[int] = []
    progress: Progress = lambda name, done, total: seen.append(done)  # noqa: E731
    got = fetch(
        MattermostVersion.parse(V2), keys=trusted_keys(keyring), base_url=upstream.url,
        cache=tmp_path / "cache", http=Http(**FAST), progress=progress,
    )  # fmt: skip
    data = upstream.files[path]
    assert got.path.read_bytes() == data
    ranges = [h.get("Range") for p, h in upstream.requests[asked:] if p == path]
    # Half, then a 500, then the other half only: no byte sent twice.
    assert upstream.sent[path] - before == len(data)
    assert ranges == [None, f"bytes={len(data) // 2}-", f"bytes={len(data) // 2}-"]
    assert seen[-1] == len(data)


def test_the_key_from_upstream_is_used_only_if_its_fingerprint_is_pinned(
    upstream: Upstream, keys: SigningKeys
) -> None:
    http = Http(**FAST)
    key_url = f"{upstream.url}/pubkey.gpg"
    assert trusted_keys(key_url=key_url, trusted=(keys.fingerprint(),), http=http)
    # By default only the table's fingerprints are trusted: the test key is none of them.
    with pytest.raises(UpstreamError, match="not among the trusted fingerprints"):
        trusted_keys(key_url=key_url, http=http)
    assert keys.fingerprint() not in FINGERPRINTS
    upstream.files["/pubkey.gpg"] = keys.public(OTHER_KEY)
    try:
        with pytest.raises(UpstreamError, match=keys.fingerprint(OTHER_KEY)):
            trusted_keys(key_url=key_url, trusted=(keys.fingerprint(),), http=http)
    finally:
        upstream.files["/pubkey.gpg"] = keys.public()


@pytest.mark.parametrize("unsafe", ["world-writable", "group-writable", "someone else's", "version folder"])
def test_a_cache_another_user_can_write_is_refused(
    unsafe: str, upstream: Upstream, keyring: Path, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    """Whoever can write the cache can swap a tarball between its check and its use, or plant a
    link where a download goes: such a cache is not used."""
    cache = tmp_path / "cache"
    unsafe_dir = cache / V1 if unsafe == "version folder" else cache
    unsafe_dir.mkdir(parents=True)
    if unsafe == "someone else's":
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root")
        os.chown(cache, 65534, 65534)
    else:
        unsafe_dir.chmod(0o775 if unsafe == "group-writable" else 0o1777)
    code, out, err = mmpkg(
        "fetch", V1, "--base-url", upstream.url, "--keyring", keyring, "--cache", cache, "--dest", tmp_path / "dest"
    )  # fmt: skip
    assert code == UsageError.exit_code, err
    assert out == "" and len(err.splitlines()) == 1
    assert f"cache directory {unsafe_dir} " in err
    assert ("--cache" in err) and ("chmod go-w" in err or "of your own" in err)
    assert _files(cache) == []


def test_a_link_planted_where_a_download_goes_is_not_followed(
    upstream: Upstream, keyring: Path, tmp_path: Path
) -> None:
    """A stale .part (or .sig.part) that is a symbolic link is removed, not written through."""
    name = Path(Upstream.path_of(V1)).name
    folder = tmp_path / "cache" / V1
    folder.mkdir(parents=True)
    victims = {}
    for planted in (f".{name}.part", f".{name}.sig.part"):
        victim = tmp_path / f"root-only-{planted}"
        victim.write_bytes(b"root:secret\n")
        victim.chmod(0o600)
        (folder / planted).symlink_to(victim)
        victims[victim] = victim.read_bytes()
    got = fetch(
        MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=upstream.url,
        cache=tmp_path / "cache", http=Http(**FAST),
    )  # fmt: skip
    assert got.path.read_bytes() == upstream.files[Upstream.path_of(V1)]
    assert {victim: victim.read_bytes() for victim in victims} == victims
    assert not any(p.is_symlink() for p in folder.iterdir())


def _with_mmctl(data: bytes, mmctl: bytes) -> bytes:
    """The release `data` with another bin/mmctl: what a swap slips in."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as src,
        tarfile.open(fileobj=out, mode="w:gz") as dst,
    ):
        for member in src:
            body = src.extractfile(member) if member.isfile() else None
            if member.name == "mattermost/bin/mmctl":
                member.size, body = len(mmctl), io.BytesIO(mmctl)
            dst.addfile(member, body)
    return out.getvalue()


def _deb_member(deb: Path, name: str) -> bytes:
    payload = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


@pytest.mark.tools
def test_a_tarball_swapped_after_its_verification_is_not_what_is_built(
    upstream: Upstream, keyring: Path, tmp_path: Path, mmpkg: Mmpkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build reads the very file that was verified, whatever the cache's path names once
    its signature has been checked."""
    harness.require("dpkg-deb", root=False)
    cache = tmp_path / "cache"
    where = ("--base-url", upstream.url, "--keyring", keyring, "--cache", cache)
    assert mmpkg("fetch", V1, *where, "--dest", tmp_path / "fetched")[0] == 0
    cached = cache / V1 / Path(Upstream.path_of(V1)).name
    with tarfile.open(cached) as tar:
        member = tar.extractfile("mattermost/bin/mmctl")
        assert member is not None
        mmctl = member.read()
    swapped = tmp_path / "swapped.tar.gz"
    swapped.write_bytes(_with_mmctl(cached.read_bytes(), b"#!/bin/sh\necho backdoor\n"))
    verify = signature.verify

    def verify_then_swap(*args: Any, **kwargs: Any) -> str:
        signer = verify(*args, **kwargs)
        if swapped.exists():
            os.replace(swapped, cached)
        return signer

    monkeypatch.setattr(signature, "verify", verify_then_swap)
    code, out, err = mmpkg(
        "build", V1, *where, "--out", tmp_path / "out", "--formats", "deb", "--maintainer", "T <t@example.com>"
    )  # fmt: skip
    assert code == 0, err
    assert not swapped.exists()  # the swap happened
    assert _deb_member(Path(out.strip()), "./opt/mattermost/bin/mmctl") == mmctl


def test_a_cached_tarball_with_another_sha256_is_not_kept(
    upstream: Upstream, keys: SigningKeys, keyring: Path, tmp_path: Path
) -> None:
    """Upstream signed a wrong file, and fixed it: the wrong one, in the cache and validly
    signed, no longer stands in the way of the sha256 published for the release."""
    path, cache = Upstream.path_of(V1), tmp_path / "cache"
    original = dict(upstream.files)
    wrong = upstream.files[path] + b"\0" * 512
    upstream.files[path] = wrong
    _resign(upstream, keys, path, key="release@mattermost.test")
    try:
        first = fetch(
            MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=upstream.url, cache=cache
        )
    finally:
        upstream.files.update(original)
    assert first.path.read_bytes() == wrong
    good = hashlib.sha256(upstream.files[path]).hexdigest()
    again = fetch(
        MattermostVersion.parse(V1), keys=trusted_keys(keyring), base_url=upstream.url, cache=cache, sha256=good
    )  # fmt: skip
    assert again.sha256 == good and again.downloaded == again.size
    assert again.path.read_bytes() == upstream.files[path]


@pytest.mark.tools
def test_a_cached_tarball_of_another_release_is_not_kept(
    upstream: Upstream, keys: SigningKeys, keyring: Path, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    """Validly signed, but another version inside: the build refuses it, and the cache lets it
    go, so that the next run downloads the release again instead of failing for ever."""
    harness.require("dpkg-deb", root=False)
    path = Upstream.path_of(V1)
    original = dict(upstream.files)
    upstream.files[path] = upstream.files[Upstream.path_of(V2)]
    _resign(upstream, keys, path, key="release@mattermost.test")
    build = ("build", V1, "--base-url", upstream.url, "--keyring", keyring, "--cache", tmp_path / "cache",
             "--formats", "deb", "--maintainer", "T <t@example.com>")  # fmt: skip
    try:
        code, _, err = mmpkg(*build, "--out", tmp_path / "out")
    finally:
        upstream.files.update(original)
    assert code == ReleaseError.exit_code, err
    assert f"the file name says version {V1} but bin/mattermost is {V2}" in err
    assert _files(tmp_path / "cache") == []
    code, out, err = mmpkg(*build, "--out", tmp_path / "out")
    assert code == 0, err
    assert Path(out.strip()).name == f"mattermost_{V1}-1_amd64.deb"


def _resign(upstream: Upstream, keys: SigningKeys, path: str, *, data: bytes | None = None, key: str) -> None:
    upstream.files[path + ".sig"] = keys.sign(data or upstream.files[path], key)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("404", "not found"),
        ("sig-404", "signature of .* not found"),
        ("other-key", "not a trusted Mattermost release key"),
        ("changed", "bad signature"),
        ("sha256", "sha256 is"),
        ("stall", "stopped sending"),
        ("cut", "cut short"),
    ],
)
def test_a_failed_fetch_is_one_line_and_leaves_nothing_to_trust(
    fault: str,
    message: str,
    upstream: Upstream,
    keys: SigningKeys,
    keyring: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = Upstream.path_of(V1)
    original = dict(upstream.files)
    sha = None
    if fault == "404":
        upstream.faults[path] = ["404"] * 4
    elif fault == "sig-404":
        upstream.faults[path + ".sig"] = ["404"]
    elif fault == "other-key":
        _resign(upstream, keys, path, key=OTHER_KEY)
    elif fault == "changed":
        upstream.files[path] = upstream.files[path][:-1] + bytes([upstream.files[path][-1] ^ 1])
    elif fault == "sha256":
        sha = "0" * 64
    else:
        upstream.faults[path] = [fault] * FAST["attempts"]
    upstream.stall_seconds = 3 * FAST["read_timeout"]
    dest, cache = tmp_path / "dest", tmp_path / "cache"
    try:
        with pytest.raises(UpstreamError, match=message) as caught:
            fetch(
                MattermostVersion.parse(V1), keys=trusted_keys(keyring), dest=dest, base_url=upstream.url,
                sha256=sha, cache=cache, http=Http(**FAST),
            )  # fmt: skip
    finally:
        upstream.files.update(original)
    assert "\n" not in str(caught.value)
    assert not dest.exists() or _files(dest) == []
    assert _files(cache) == []
    # Once upstream is right again, the same cache serves a verified tarball.
    upstream.faults.clear()
    got = fetch(
        MattermostVersion.parse(V1), keys=trusted_keys(keyring), dest=dest, base_url=upstream.url,
        cache=cache, http=Http(**FAST),
    )  # fmt: skip
    assert got.path.read_bytes() == upstream.files[path]


def test_a_tampered_cache_is_fetched_again(upstream: Upstream, keyring: Path, tmp_path: Path) -> None:
    version, cache = MattermostVersion.parse(V1), tmp_path / "cache"
    first = fetch(version, keys=trusted_keys(keyring), base_url=upstream.url, cache=cache)
    first.path.write_bytes(first.path.read_bytes() + b"x")
    again = fetch(version, keys=trusted_keys(keyring), base_url=upstream.url, cache=cache)
    assert again.downloaded == again.size
    assert again.path.read_bytes() == upstream.files[Upstream.path_of(V1)]


@pytest.mark.tools
def test_build_version_fetches_verifies_and_builds(
    upstream: Upstream, keyring: Path, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    harness.require("dpkg-deb", root=False)
    code, out, err = mmpkg(
        "build", V1, "--base-url", upstream.url, "--keyring", keyring, "--cache", tmp_path / "cache",
        "--out", tmp_path / "out", "--formats", "deb", "--maintainer", "T <t@example.com>",
    )  # fmt: skip
    assert code == 0, err
    assert Path(out.strip()).name == f"mattermost_{V1}-1_amd64.deb"
    info = harness.run_host(["dpkg-deb", "--field", out.strip(), "Version"]).stdout.strip()
    assert info == f"{V1}-1"
    upstream.files[Upstream.path_of(V2)] += b"tampered"
    try:
        code, _, err = mmpkg(
            "build", V2, "--base-url", upstream.url, "--keyring", keyring, "--cache", tmp_path / "cache",
            "--out", tmp_path / "out2", "--maintainer", "T <t@example.com>",
        )  # fmt: skip
    finally:
        upstream.files[Upstream.path_of(V2)] = upstream.files[Upstream.path_of(V2)][: -len(b"tampered")]
    assert code == UpstreamError.exit_code
    assert "bad signature" in err
    assert not (tmp_path / "out2").exists() or list((tmp_path / "out2").iterdir()) == []


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--cache", "--cache /proc/nope: cannot create /proc/nope: No such file or directory"),
        ("--dest", "--dest /proc/nope: cannot create /proc/nope: No such file or directory"),
    ],
)
def test_a_directory_that_cannot_be_made_is_one_line(
    flag: str, message: str, upstream: Upstream, keyring: Path, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    """A --cache or --dest that cannot be made is the argument's fault: a usage error, one line."""
    args = {"--cache": tmp_path / "cache", "--dest": tmp_path / "dest", flag: "/proc/nope"}
    code, out, err = mmpkg(
        "fetch",
        V1,
        "--base-url",
        upstream.url,
        "--keyring",
        keyring,
        *(str(a) for kv in args.items() for a in kv),
    )
    assert (code, out) == (UsageError.exit_code, "")
    assert err.startswith(f"mmpkg: error: {message}; choose another directory") and err.count("\n") == 1, err
    assert not (tmp_path / "dest").exists()


def test_a_missing_keyring_is_a_usage_error(tmp_path: Path, mmpkg: Mmpkg) -> None:
    code, out, err = mmpkg("fetch", V1, "--keyring", tmp_path / "none.asc", "--cache", tmp_path / "cache")
    assert (code, out) == (UsageError.exit_code, "")
    assert err == f"mmpkg: error: --keyring {tmp_path / 'none.asc'}: no such file\n"


def test_since_a_release_line_is_its_first_release(upstream: Upstream, mmpkg: Mmpkg) -> None:
    """`--since 10.5` means 10.5.0 and later, as "since 10.5" says."""
    code, out, err = mmpkg("releases", "--api-url", upstream.api_url, "--since", "10.5", "--json")
    assert code == 0, err
    assert [r["version"] for r in json.loads(out)] == [V2, V1]
    code, out, err = mmpkg("releases", "--api-url", upstream.api_url, "--since", "10.4", "--json")
    assert [r["version"] for r in json.loads(out)] == [V2, V1, "10.4.0"]


def test_quiet_fetch_prints_nothing_unless_json_asks(
    upstream: Upstream, keyring: Path, tmp_path: Path, mmpkg: Mmpkg
) -> None:
    args = ("fetch", V1, "--base-url", upstream.url, "--keyring", keyring, "--cache", tmp_path / "cache")
    assert mmpkg("-q", *args, "--dest", tmp_path / "dest") == (0, "", "")
    assert (tmp_path / "dest" / Path(Upstream.path_of(V1)).name).is_file()
    code, out, _ = mmpkg("-q", *args, "--dest", tmp_path / "again", "--json")
    assert code == 0 and json.loads(out)["downloaded"] == 0  # from the cache
