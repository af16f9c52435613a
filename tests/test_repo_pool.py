"""One pool for every channel: a package is stored once, whatever the number of channels that
list it; withdrawn from one, it stays for the others; trees published before the shared pool
keep working, with no migration."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmpkg.errors import RepoError
from mmpkg.packaging.formats import Compression
from mmpkg.repo import Repository, dnf, publish, repository
from mmpkg.repo.clients import ClientFormat, client_config
from mmpkg.repo.packages import Incoming, inspect
from mmpkg.repo.publish import KEEP_GENERATIONS
from mmpkg.repo.signing import Signer
from tests.support import harness
from tests.support.packages import PackageFactory
from tests.test_repo import KEY, KEYRING, RPM_KEY, V1, V2, _serve, gnupghome

__all__ = ["gnupghome"]  # the signing key's fixture, shared with test_repo.py

DEB = f"pool/main/m/mattermost/mattermost_{V1}-1_amd64.deb"
RPM = f"pool/main/m/mattermost/mattermost-{V1}-1.x86_64.rpm"


@pytest.fixture
def repo(tmp_path: Path, gnupghome: Path) -> Repository:
    return Repository(tmp_path / "repo", gnupghome=gnupghome)


def _package_files(tree: Path) -> list[str]:
    """Every package file stored in the tree, whichever pool holds it."""
    found = [*tree.glob("pool/**/*.deb"), *tree.glob("pool/**/*.rpm"), *tree.glob("rpm/*/*/Packages/*.rpm")]
    return sorted(str(f.relative_to(tree)) for f in found)


def _paths(repo: Repository, channel: str) -> set[str]:
    return {str(e.path) for e in repo.list(channel)}


@pytest.fixture
def both(repo: Repository, packages: PackageFactory) -> Repository:
    v1 = packages.build(V1)
    for channel in ("stable", "esr"):
        repo.add([v1.deb, v1.rpm], channel, KEY)
    return repo


def test_a_release_in_two_channels_is_stored_once(both: Repository) -> None:
    tree = both.path
    files = _package_files(tree)
    # One file each: the release, the keyring package (deb and noarch rpm) and the transitional deb.
    assert len(files) == len(set(files)) == 5, files
    assert DEB in files and RPM in files
    for channel in ("stable", "esr"):
        assert {DEB, RPM} <= _paths(both, channel)
        assert f"Filename: {DEB}\n" in (tree / f"dists/{channel}/main/binary-amd64/Packages").read_text()
        hrefs = dnf.primary_locations(tree / "rpm" / channel / "x86_64")
        assert f"../../../{RPM}" in hrefs
        # The keyring's one noarch rpm is in both architectures' repositories.
        for arch in dnf.ARCHES:
            assert any(
                "mattermost-archive-keyring" in h
                for h in dnf.primary_locations(tree / "rpm" / channel / arch)
            )
    assert not (tree / "pool/stable").exists() and not (tree / "rpm/esr/x86_64/Packages").exists()
    assert both.check() == []


def test_withdrawn_from_one_channel_the_file_stays_for_the_other(both: Repository) -> None:
    tree = both.path
    both.remove("mattermost", f"{V1}-1", "stable", KEY)
    for _ in range(KEEP_GENERATIONS):
        both.add([], "stable", KEY)  # publishes of stable: each a generation of its indices
    assert (tree / DEB).is_file() and (tree / RPM).is_file()
    assert not {DEB, RPM} & _paths(both, "stable")
    assert {DEB, RPM} <= _paths(both, "esr")
    assert both.check() == []


def test_withdrawn_from_every_channel_the_file_goes_after_the_grace_period(both: Repository) -> None:
    tree = both.path
    both.remove("mattermost", f"{V1}-1", "stable", KEY)
    both.remove("mattermost", f"{V1}-1", "esr", KEY)
    # Publishes of stable do not count for esr's clients, which may hold an index naming them.
    for _ in range(KEEP_GENERATIONS):
        both.add([], "stable", KEY)
    for _ in range(KEEP_GENERATIONS - 2):
        both.add([], "esr", KEY)
        assert (tree / DEB).is_file() and (tree / RPM).is_file()
        assert both.check() == []
    both.add([], "esr", KEY)
    assert not (tree / DEB).exists() and not (tree / RPM).exists()
    assert both.check() == []


def test_different_contents_under_a_stored_name_are_refused(
    both: Repository, packages: PackageFactory
) -> None:
    other = packages.build(V1, compression=Compression.GZIP)
    before = _package_files(both.path)
    with pytest.raises(RepoError, match="already published in esr, stable with different contents"):
        both.add([other.deb], "rc", KEY)
    assert _package_files(both.path) == before


# -- real clients, from either channel --------------------------------------------------------


def _source(root: harness.Root, repo: Repository, url: str, channel: str) -> None:
    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
    root.path(KEYRING).write_bytes((repo.path / "keys/archive-keyring.gpg").read_bytes())
    [snippet] = client_config(url, channel, ClientFormat.APT)
    root.write_text("/etc/apt/sources.list.d/mattermost.sources", snippet.text)
    root.run("apt-get", "update", "--error-on=any")


def _dnf(root: harness.Root, repo: Repository, url: str, channel: str, *args: str) -> str:
    if not root.exists(RPM_KEY):
        root.path(RPM_KEY).parent.mkdir(parents=True, exist_ok=True)
        root.write_text(RPM_KEY, repo.export_key())
    root.path("/etc/yum.repos.d").mkdir(parents=True, exist_ok=True)
    [snippet] = client_config(url, channel, ClientFormat.DNF)
    root.write_text("/etc/yum.repos.d/mattermost.repo", snippet.text)
    proc = root.dnf("--setopt=reposdir=/etc/yum.repos.d", *args, repo_dir=None)
    return proc.stdout + proc.stderr


@pytest.fixture
def served(both: Repository) -> Iterator[str]:
    with _serve(both.path) as url:
        yield url


@pytest.mark.install
def test_apt_installs_the_one_file_from_either_channel(
    both: Repository, served: str, root: harness.Root
) -> None:
    _source(root, both, served, "stable")
    root.run("apt-get", "install", "--download-only", "-y", "mattermost")
    root.sh("apt-get clean")
    both.remove("mattermost", f"{V1}-1", "stable", KEY)
    _source(root, both, served, "esr")
    root.apt_install("mattermost")
    assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V1}-1"


@pytest.mark.install
def test_dnf_installs_the_one_file_from_either_channel_over_http_and_file(
    both: Repository, served: str, root: harness.Root
) -> None:
    harness.require(*harness.DNF_TOOLS)
    _dnf(root, both, served, "stable", "install", "mattermost")
    assert root.rpm_query("--qf", "%{VERSION}", "mattermost") == V1
    both.remove("mattermost", f"{V1}-1", "stable", KEY)
    # The tree in the root, read through file://, which resolves ../../../ on the file system.
    inside = root.copy_in(both.path, "/srv/repo")
    out = _dnf(root, both, f"file://{inside}", "esr", "reinstall", "mattermost")
    assert "Reinstalled" in out or "Complete!" in out, out


# -- a tree published before the shared pool ----------------------------------------------------


def _old_place(channel: str, inc: Incoming) -> list[Path]:
    """Where the layout before the shared pool stored a package: in the channel's own directory,
    a noarch rpm in each architecture's."""
    e = inc.entry
    if e.format == "deb":
        return [Path("pool") / channel / e.path.name]
    arches = dnf.ARCHES if e.arch == dnf.NOARCH else (e.arch,)
    return [Path("rpm") / channel / a / "Packages" / e.path.name for a in arches]


def _old_metadata(repo: Repository, channel: str) -> None:
    """The dnf metadata as that layout wrote it: createrepo_c over rpm/CHANNEL/ARCH, hrefs
    Packages/FILE, into the live generation."""
    signer = Signer(KEY, repo.gnupghome)
    for arch in dnf.ARCHES:
        base = repo.path / "rpm" / channel / arch
        live = base / os.readlink(base / "repodata")
        out = repo.path / ".mmpkg" / "tmp" / f"old-{channel}-{arch}"
        out.mkdir(parents=True)
        subprocess.run(["createrepo_c", "--quiet", "--outputdir", str(out), str(base)], check=True)
        for f in live.iterdir():
            f.unlink()
        for f in (out / "repodata").iterdir():
            f.rename(live / f.name)
        signer.detach(live / "repomd.xml", live / "repomd.xml.asc")


@pytest.fixture
def old(repo: Repository, packages: PackageFactory, monkeypatch: pytest.MonkeyPatch) -> Repository:
    """`stable` as the layout before the shared pool published it: every file in its own
    directories, the Packages stanzas cached by file name, the dnf hrefs Packages/FILE."""
    v1 = packages.build(V1)
    channel = "stable"
    with monkeypatch.context() as m:

        def old_inspect(pkg: Path) -> list[Incoming]:
            return [
                dataclasses.replace(inc, entry=dataclasses.replace(inc.entry, path=p))
                for inc in inspect(pkg)
                for p in _old_place(channel, inc)
            ]

        m.setattr(repository, "inspect", old_inspect)
        m.setattr(repository, "place", lambda *a: Path("pool/none"))
        repo.add([v1.deb, v1.rpm], channel, KEY)
    _old_metadata(repo, channel)
    assert not (repo.path / "pool/main").exists()
    assert all(str(e.path).startswith(("pool/stable/", "rpm/stable/")) for e in repo.list(channel))
    assert (repo.path / ".mmpkg/stanzas/stable" / f"mattermost_{V1}-1_amd64.deb").is_file()
    assert all(
        "Packages/" in h and not h.startswith("..")
        for h in dnf.primary_locations(repo.path / "rpm/stable/x86_64")
    )
    assert repo.check() == []
    return repo


def test_an_old_tree_lists_takes_new_adds_into_the_shared_pool_and_prunes_its_own_files(
    old: Repository, packages: PackageFactory
) -> None:
    tree = old.path
    legacy_deb, legacy_rpm = (
        f"pool/stable/mattermost_{V1}-1_amd64.deb",
        f"rpm/stable/x86_64/Packages/mattermost-{V1}-1.x86_64.rpm",
    )
    assert {legacy_deb, legacy_rpm} <= _paths(old, "stable")
    v2 = packages.build(V2)
    old.add([v2.deb, v2.rpm], "stable", KEY)
    new_deb = f"pool/main/m/mattermost/mattermost_{V2}-1_amd64.deb"
    assert {legacy_deb, legacy_rpm, new_deb} <= _paths(old, "stable")
    assert old.check() == []
    # The same release added to another channel: stored once more at most, as a link to the
    # file the old channel lists (same contents), never a second copy.
    v1 = packages.build(V1)
    old.add([v1.deb, v1.rpm], "esr", KEY)
    assert os.stat(tree / DEB).st_ino == os.stat(tree / legacy_deb).st_ino
    assert os.stat(tree / RPM).st_ino == os.stat(tree / legacy_rpm).st_ino
    assert old.check() == []
    # Retention withdraws the old layout's files, and deletes them after the grace period.
    old.add([], "stable", KEY, keep=1)
    assert legacy_deb not in _paths(old, "stable") and (tree / legacy_deb).exists()
    for _ in range(KEEP_GENERATIONS - 1):
        old.add([], "stable", KEY)
    assert not (tree / legacy_deb).exists() and not (tree / legacy_rpm).exists()
    assert (tree / DEB).exists()  # esr lists it
    assert old.check() == []


@pytest.mark.install
def test_clients_of_an_old_tree_keep_installing_across_the_first_shared_add(
    old: Repository, packages: PackageFactory, root: harness.Root
) -> None:
    harness.require(*harness.DNF_TOOLS)
    with _serve(old.path) as url:
        _source(root, old, url, "stable")
        root.apt_install("mattermost")
        # dnf fetches (and checks) an rpm by its href, Packages/FILE here, ../../../ after.
        _dnf(root, old, url, "stable", "install", "--downloadonly", "mattermost")
        v2 = packages.build(V2)
        old.add([v2.deb, v2.rpm], "stable", KEY)
        root.run("apt-get", "update", "--error-on=any")
        root.run("apt-get", "install", "-y", "-o", "Dpkg::Options::=--force-confold", "mattermost")
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V2}-1"
        for version in (V1, V2):
            out = _dnf(root, old, url, "stable", "install", "--downloadonly", f"mattermost-{version}")
            assert f"mattermost-{version}-1.x86_64.rpm" in out, out


def test_a_withdrawal_recorded_before_the_shared_pool_still_counts_down(old: Repository) -> None:
    """The state of a tree withdrawn from then holds one number per file, its channel's."""
    tree = old.path
    legacy_deb = f"pool/stable/mattermost_{V1}-1_amd64.deb"
    old.remove("mattermost", f"{V1}-1", "stable", KEY)
    with publish.locked(tree) as tx:
        tx.state[publish.WITHDRAWN] = {k: 1 for k in tx.state[publish.WITHDRAWN]}
        tx.commit()
    assert (tree / legacy_deb).exists()
    old.add([], "stable", KEY)
    assert not (tree / legacy_deb).exists()
    assert old.check() == []
