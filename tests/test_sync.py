"""`mmpkg sync` end to end: a loopback upstream, an empty repository, real apt installing from it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmpkg.cli import main
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo import Repository, keyring
from mmpkg.repo.clients import ClientFormat, client_config
from mmpkg.sync.pipeline import SyncResult, Wanted, sync
from mmpkg.sync.pipeline import Upstream as Source
from mmpkg.upstream import Http
from tests.support import harness
from tests.support.cli_runner import Mmpkg, runner
from tests.support.fake_upstream import SigningKeys, Upstream, serve
from tests.support.packages import PackageFactory
from tests.test_repo import _serve, tree_hash

FIRST, BAD, NEWEST, FOURTH = "10.5.2", "10.11.1", "10.12.0", "10.12.1"
REPO_KEY = "sync@example.invalid"
MAINTAINER = "Sync Test <sync@example.com>"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    harness.require("gpg", "gpgv", "apt-ftparchive", "createrepo_c", "rpmsign", "rpm", "dpkg-deb", root=False)
    return SigningKeys.make(tmp_path_factory.mktemp("sync-gnupg") / "home", also=(REPO_KEY,))


@pytest.fixture(scope="module")
def world(keys: SigningKeys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, Path]]:
    """Three releases upstream, one of them changed after signing; an empty repository."""
    work = tmp_path_factory.mktemp("sync")
    with serve() as up:
        for version in (FIRST, BAD, NEWEST):
            up.release(version, keys, work)
        up.files[Upstream.path_of(BAD)] += b"\0"
        (work / "key.asc").write_bytes(keys.public())
        yield up, work


@pytest.fixture
def mmpkg(keys: SigningKeys, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Mmpkg:
    monkeypatch.setenv("GNUPGHOME", str(keys.home))
    monkeypatch.delenv("MMPKG_SIGN_KEY", raising=False)

    return runner(capsys)


def _sync_args(up: Upstream, work: Path) -> list[object]:
    return [
        "sync", work / "repo", "--since", "10.0.0", "--api-url", up.api_url, "--base-url", up.url,
        "--keyring", work / "key.asc", "--cache", work / "cache", "--sign-key", REPO_KEY,
        "--maintainer", MAINTAINER, "--notify", f"{up.url}/hooks/abc", "--json",
    ]  # fmt: skip


def _debs(tree: Path, channel: str) -> list[str]:
    found = [
        e.version.split("-")[0]
        for e in Repository(tree).list(channel)
        if e.name == "mattermost" and e.format == "deb"
    ]
    return [str(v) for v in sorted(MattermostVersion.parse(v) for v in found)]


@pytest.fixture(scope="module")
def failing(keys: SigningKeys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, Path]]:
    """One release upstream, changed after signing: every sync fails it at once, and notifies."""
    work = tmp_path_factory.mktemp("sync-hooks")
    with serve() as up:
        up.release(BAD, keys, work)
        up.files[Upstream.path_of(BAD)] += b"\0"
        (work / "key.asc").write_bytes(keys.public())
        yield up, work


def _hook_sync(up: Upstream, work: Path, hook: str) -> list[object]:
    args = _sync_args(up, work)
    args[args.index("--notify") + 1] = hook
    args[args.index(work / "repo")] = work / "repo-hooks"
    return args


@pytest.mark.parametrize("fault", ["404", "refused"])
def test_the_hook_url_is_a_secret_no_message_shows(
    fault: str, failing: tuple[Upstream, Path], mmpkg: Mmpkg
) -> None:
    """A webhook's path and query are its key, and its user and password what they are: only
    its scheme and host are shown, in --json and on stderr alike."""
    up, work = failing
    port = up.url.rsplit(":", 1)[1] if fault == "404" else "1"
    hook = f"http://hookuser:hookpw@127.0.0.1:{port}/hooks/s3cr3t?token=t0k3n"
    up.faults["/hooks/s3cr3t?token=t0k3n"] = ["404"]
    code, out, err = mmpkg(*_hook_sync(up, work, hook))
    summary = json.loads(out)
    assert code == 9
    assert [f["version"] for f in summary["failed"]] == [BAD]
    assert summary["notify_error"].startswith("--notify: ") and f"http://127.0.0.1:{port}/..." in out
    for secret in ("s3cr3t", "t0k3n", "hookuser", "hookpw"):
        assert secret not in out and secret not in err


def test_a_hook_that_redirects_elsewhere_gets_nothing_sent_there(
    failing: tuple[Upstream, Path], mmpkg: Mmpkg
) -> None:
    up, work = failing
    port = up.url.rsplit(":", 1)[1]
    up.faults["/hooks/moved"] = ["redirect"]
    up.redirect_to = f"http://localhost:{port}/hooks/elsewhere"
    code, out, err = mmpkg(*_hook_sync(up, work, f"{up.url}/hooks/moved"))
    summary = json.loads(out)
    assert code == 9
    assert [f["version"] for f in summary["failed"]] == [BAD]
    assert "307" in summary["notify_error"] and "redirect" in summary["notify_error"]
    assert "elsewhere" not in out + err
    assert [path for path, _ in up.posts if path == "/hooks/elsewhere"] == []


def test_a_hook_that_trickles_is_given_up_and_the_run_still_says_what_it_did(
    failing: tuple[Upstream, Path], keys: SigningKeys
) -> None:
    up, work = failing
    up.faults["/hooks/slow"] = ["trickle-head"]
    source = Source(
        up.api_url, up.url, work / "key.asc", work / "cache", Http(read_timeout=0.5, deadline=1.0)
    )
    result = sync(
        work / "repo-hooks", Wanted(since=MattermostVersion.parse("10.0.0")), sign_key=REPO_KEY,
        maintainer=MAINTAINER, upstream=source, notify=f"{up.url}/hooks/slow",
    )  # fmt: skip
    assert [str(f.item.version) for f in result.failed] == [BAD]
    assert result.notify_error == f"--notify: {up.url}/...: no complete answer within 1 s"


@pytest.fixture(scope="module")
def first_runs(world: tuple[Upstream, Path], keys: SigningKeys) -> list[tuple[int, dict[str, Any]]]:
    """The first run (the bad release fails), then two at once once it is fixed, then one more."""
    up, work = world
    outcomes: list[tuple[int, dict[str, Any]]] = []
    mp = pytest.MonkeyPatch()
    mp.setenv("GNUPGHOME", str(keys.home))
    try:
        import io
        from contextlib import redirect_stdout

        def run() -> tuple[int, dict[str, Any]]:
            buf = io.StringIO()
            with redirect_stdout(buf):
                code = main([str(a) for a in _sync_args(up, work)])
            return code, json.loads(buf.getvalue())

        outcomes.append(run())
        up.files[Upstream.path_of(BAD)] = up.files[Upstream.path_of(BAD)][:-1]
        results: list[SyncResult] = []

        def at_once() -> None:
            source = Source(up.api_url, up.url, work / "key.asc", work / "cache", Http())
            results.append(
                sync(work / "repo", Wanted(since=MattermostVersion.parse("10.0.0")), sign_key=REPO_KEY,
                     maintainer=MAINTAINER, upstream=source)
            )  # fmt: skip

        threads = [threading.Thread(target=at_once) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes.append((0, {"published": sorted(str(i.version) for r in results for i in r.published)}))
        outcomes.append(run())
    finally:
        mp.undo()
    return outcomes


def test_a_bad_release_is_reported_skipped_and_retried(
    first_runs: list[tuple[int, dict[str, Any]]], world: tuple[Upstream, Path]
) -> None:
    up, work = world
    (code, first), (_, second), (third_code, third) = first_runs
    assert code != 0
    assert [(p["version"], p["channels"]) for p in first["published"]] == [
        (FIRST, ["stable", "esr"]),
        (NEWEST, ["stable"]),
    ]
    assert [(f["version"], "bad signature" in f["error"]) for f in first["failed"]] == [(BAD, True)]
    # Fixed upstream, two runs at once: the release is built and published once.
    assert second["published"] == [BAD]
    assert (third_code, third["published"], third["failed"]) == (0, [], [])
    tree = work / "repo"
    assert _debs(tree, "stable") == [FIRST, BAD, NEWEST]
    assert _debs(tree, "esr") == [FIRST, BAD]
    assert Repository(tree).check() == []
    # One message for the first run, none for the run that found nothing to do.
    texts = [body["text"] for path, body in up.posts if path == "/hooks/abc"]
    assert len(texts) == 1
    assert BAD in texts[0] and "bad signature" in texts[0] and NEWEST in texts[0]


# Before the install test below: it publishes FOURTH into the module's world.
def test_since_a_release_line_plans_from_its_first_release(
    world: tuple[Upstream, Path], mmpkg: Mmpkg, tmp_path: Path
) -> None:
    """`sync --since 10.11` is `--since 10.11.0`: what a line's releases are, not a refusal."""
    up, _ = world
    code, out, err = mmpkg(
        "sync", tmp_path / "repo", "--since", "10.11", "--plan", "--json", "--api-url", up.api_url
    )
    assert code == 0, err
    assert [i["version"] for i in json.loads(out)] == [BAD, NEWEST]


def test_quiet_says_only_what_failed(failing: tuple[Upstream, Path], mmpkg: Mmpkg, tmp_path: Path) -> None:
    """`mmpkg -q sync` from cron: no summary, and each failed release an error line of its own."""
    up, work = failing
    args = [a for a in _sync_args(up, work) if a not in ("--json", "--notify", f"{up.url}/hooks/abc")]
    args[args.index(work / "repo")] = tmp_path / "repo"
    code, out, err = mmpkg("-q", *args)
    assert code == 9, err
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"mmpkg: error: failed {BAD} (mattermost amd64): ") and "bad signature" in line


def test_a_dry_run_says_what_retention_would_withdraw_and_a_run_says_what_it_did(
    world: tuple[Upstream, Path], mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory
) -> None:
    """`sync --dry-run` (`--plan`) lists what retention would withdraw once each release is
    published; the run then withdraws it and says so; the channel's stored --keep is used."""
    up, work = world
    tree = tmp_path / "repo"
    old = packages.build(FIRST)
    assert mmpkg("repo", "add", tree, old.deb, old.rpm, "--sign-key", REPO_KEY, "--keep", "1")[0] == 0
    args = [a for a in _sync_args(up, work) if a not in ("--json", "--notify", f"{up.url}/hooks/abc")]
    args[args.index(work / "repo")] = tree
    args[args.index("10.0.0")] = "10.12"
    before = tree_hash(tree)
    code, out, err = mmpkg(*args, "--dry-run")
    assert (code, out) == (0, (
        f"{NEWEST} (mattermost amd64) for stable\n"
        "  would prune pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb\n"
        "  would prune pool/main/m/mattermost/mattermost-10.5.2-1.x86_64.rpm\n"
    )), err  # fmt: skip
    code, out, _ = mmpkg(*args, "--plan", "--json", "--keep", "2")
    assert [(i["version"], i["prunes"]) for i in json.loads(out)] == [(NEWEST, [])]
    assert tree_hash(tree) == before
    code, out, err = mmpkg(*args)
    assert (code, out) == (0, (
        f"published {NEWEST} (mattermost amd64) in stable\n"
        "pruned pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb\n"
        "pruned pool/main/m/mattermost/mattermost-10.5.2-1.x86_64.rpm\n"
    )), err  # fmt: skip


@pytest.mark.install
def test_apt_installs_the_newest_and_a_new_release_is_all_the_next_sync_does(
    first_runs: list[tuple[int, dict[str, Any]]],
    world: tuple[Upstream, Path],
    keys: SigningKeys,
    mmpkg: Mmpkg,
    root: harness.Root,
) -> None:
    up, work = world
    tree = work / "repo"
    with _serve(tree) as url:
        root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
        root.path(keyring.DEB_KEYRING).write_bytes((tree / "keys/archive-keyring.gpg").read_bytes())
        (snippet,) = client_config(url, "stable", ClientFormat.APT)
        root.write_text(snippet.path, snippet.text)
        root.run("apt-get", "update", "--error-on=any")
        root.apt_install("mattermost")
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{NEWEST}-1"
        up.release(FOURTH, keys, work)
        code, out, _ = mmpkg(*_sync_args(up, work))
        assert code == 0
        assert [p["version"] for p in json.loads(out)["published"]] == [FOURTH]
        root.run("apt-get", "update", "--error-on=any")
        root.run("apt-get", "upgrade", "-y", "-o", "Dpkg::Options::=--force-confold")
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{FOURTH}-1"


@pytest.fixture(scope="module")
def one_release(
    keys: SigningKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Upstream, Path]]:
    work = tmp_path_factory.mktemp("sync-publish")
    with serve() as up:
        up.release(FIRST, keys, work)
        (work / "key.asc").write_bytes(keys.public())
        yield up, work


def test_sync_publish_sends_what_it_published_and_a_failed_publish_keeps_the_tree(
    one_release: tuple[Upstream, Path], mmpkg: Mmpkg, tmp_path: Path
) -> None:
    up, work = one_release
    args = [a for a in _sync_args(up, work) if a not in ("--notify", f"{up.url}/hooks/abc")]
    # Somewhere rsync cannot write: the sync's own work stands, the publish is one error line.
    blocked = tmp_path / "file"
    blocked.write_text("")
    code, out, err = mmpkg(*args, "--publish", f"{blocked}/mirror")
    assert code == 10 and "rsync failed" in err
    assert [p["version"] for p in json.loads(out)["published"]] == [FIRST]
    assert "sent_to" not in json.loads(out)
    dest = tmp_path / "mirror"
    code, out, err = mmpkg(*args, "--publish", dest)
    assert code == 0, err
    facts = json.loads(out)
    assert facts["published"] == []
    sent = {f["key"] for f in facts["sent_to"]["sent"]}
    assert (
        f"pool/main/m/mattermost/mattermost_{FIRST}-1_amd64.deb" in sent and "dists/stable/InRelease" in sent
    )
    assert (dest / "dists/stable/InRelease").read_bytes() == (
        work / "repo/dists/stable/InRelease"
    ).read_bytes()
    code, out, _ = mmpkg(*args, "--publish", dest)
    assert code == 0 and json.loads(out)["sent_to"]["sent"] == []
    code, _, err = mmpkg(*args, "--publish", dest, "--plan")
    assert code == 2 and "--plan changes nothing" in err
