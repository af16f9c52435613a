"""The signed apt + dnf repository: refusals leave the tree unchanged; real clients install from it."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmpkg.build import omnibus
from mmpkg.errors import RepoError
from mmpkg.mattermost.release import Edition
from mmpkg.mattermost.upgrade_path import plan, refusal
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo import AddResult, Repository, keyring
from mmpkg.repo.clients import ClientFormat, client_config
from mmpkg.repo.retention import upstream_version
from tests.support import harness
from tests.support.official_deb import build_omnibus_deb
from tests.support.packages import PackageFactory

V1, V2 = "10.5.2", "10.11.1"
TOOLS = ("gpg", "apt-ftparchive", "createrepo_c", "rpmsign", "rpm", "dpkg-deb")


@pytest.fixture(scope="module")
def gnupghome(tmp_path_factory: pytest.TempPathFactory) -> Path:
    harness.require(*TOOLS, root=False)
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    params = "%no-protection\nKey-Type: RSA\nKey-Length: 3072\nKey-Usage: sign\nName-Real: mmpkg test\n"
    params += "Name-Email: repo@example.invalid\nExpire-Date: 0\n%commit\n"
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--gen-key"], input=params, text=True, env=env, check=True)
    return home


KEY = "repo@example.invalid"
KEYRING = keyring.DEB_KEYRING
RPM_KEY = "/etc/pki/rpm-gpg/RPM-GPG-KEY-mattermost"


def tree_hash(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        h.update(str(f.relative_to(path)).encode())
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def repo(tmp_path: Path, gnupghome: Path) -> Repository:
    return Repository(tmp_path / "repo", gnupghome=gnupghome)


@pytest.fixture
def published(repo: Repository, packages: PackageFactory) -> Repository:
    v1 = packages.build(V1)
    repo.add([v1.deb, v1.rpm], "stable", KEY)
    return repo


def test_dnf_metadata_is_gzip_whatever_the_hosts_createrepo_c_defaults_to(
    repo: Repository, packages: PackageFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """createrepo_c 1.0 (Debian 13, Ubuntu 24.04) writes zstd unless told otherwise, which older
    dnf and yum cannot read; mmpkg asks for gzip. The createrepo_c here (0.17) writes gzip by
    default, so the real one runs behind a wrapper that records what it was asked."""
    real = shutil.which("createrepo_c")
    assert real is not None
    wrapper, asked = tmp_path / "bin" / "createrepo_c", tmp_path / "asked"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {asked}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    v1 = packages.build(V1)
    repo.add([v1.deb, v1.rpm], "stable", KEY)
    args = asked.read_text().splitlines()
    assert "--general-compress-type=gz" in args and "--compress-type=gz" in args
    repomd = (repo.path / "rpm/stable/x86_64/repodata/repomd.xml").read_text()
    xml = [h for h in re.findall(r'<location href="repodata/([^"]+)"', repomd) if ".xml" in h]
    assert len(xml) == 3 and all(h.endswith(".xml.gz") for h in xml), xml
    assert repo.check() == []


def test_add_publishes_signed_indices_that_check_clean(published: Repository) -> None:
    tree = published.path
    assert (tree / "dists/stable/InRelease").exists()
    assert (tree / "dists/stable/Release.gpg").exists()
    release = (tree / "dists/stable/Release").read_text()
    assert "Acquire-By-Hash: yes" in release
    packages = (tree / "dists/stable/main/binary-amd64/Packages").read_bytes()
    digest = hashlib.sha256(packages).hexdigest()
    assert (tree / f"dists/stable/main/binary-amd64/by-hash/SHA256/{digest}").read_bytes() == packages
    assert b"Filename: pool/main/m/mattermost/mattermost_" in packages
    assert (tree / "rpm/stable/x86_64/repodata/repomd.xml.asc").exists()
    assert published.check() == []
    entries = published.list("stable")
    # The keyring package of the first key comes with the first add, its rpm (one file) in every
    # architecture's repository, and so does the transitional mattermost-omnibus deb.
    assert sorted((e.name, e.format, e.arch) for e in entries) == [
        ("mattermost", "deb", "amd64"),
        ("mattermost", "rpm", "x86_64"),
        ("mattermost-archive-keyring", "deb", "all"),
        ("mattermost-archive-keyring", "rpm", "noarch"),
        ("mattermost-omnibus", "deb", "all"),
    ]


def test_add_is_idempotent_and_list_is_newest_first(published: Repository, packages: PackageFactory) -> None:
    v1, v2 = packages.build(V1), packages.build(V2)
    # The published rpm is signed, the incoming one is not: still the same package.
    assert published.add([v1.deb, v1.rpm], "stable", KEY).added == []
    by_hash = published.path / "dists/stable/main/binary-amd64/by-hash/SHA256"
    first = {f.name for f in by_hash.iterdir()}
    published.add([v2.deb, v2.rpm], "stable", KEY)
    # Clients that read the previous Release can still fetch its indices.
    assert first < {f.name for f in by_hash.iterdir()}
    debs = [e.version for e in published.list("stable") if e.format == "deb" and e.name == "mattermost"]
    assert [v.split("-")[0] for v in debs] == [V2, V1]
    assert published.check() == []


def test_remove_withdraws_a_version(published: Repository, packages: PackageFactory) -> None:
    v1 = packages.build(V1)
    version = next(e.version for e in published.list("stable") if e.name == "mattermost")
    gone = published.remove("mattermost", version, "stable", KEY)
    assert sorted(e.format for e in gone) == ["deb", "rpm"]
    assert {e.name for e in published.list("stable")} == {"mattermost-archive-keyring", "mattermost-omnibus"}
    assert (
        "Package: mattermost\n"
        not in (published.path / "dists/stable/main/binary-amd64/Packages").read_text()
    )
    assert v1.rpm.name not in (published.path / "rpm/stable/x86_64/repodata/repomd.xml").read_text()
    assert published.check() == []


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("not-a-package", "is not a readable package"),
        ("bad-channel", "bad channel name"),
        ("missing-key", "is missing or cannot sign"),
        ("other-contents", "already published in stable with different contents"),
    ],
)
def test_refusals_leave_the_tree_unchanged(
    published: Repository, packages: PackageFactory, tmp_path: Path, what: str, message: str
) -> None:
    before = tree_hash(published.path)
    channel, key = "stable", KEY
    pkg = packages.build(V1).deb
    if what == "not-a-package":
        pkg = tmp_path / "mattermost_1.0_amd64.deb"
        pkg.write_text("not a deb\n")
    elif what == "bad-channel":
        channel = "../stable"
    elif what == "missing-key":
        key = "nobody@example.invalid"
    else:
        pkg = packages.build(V1, revision=1, settings=(("ServiceSettings.SiteURL", "https://x.invalid"),)).deb
    with pytest.raises(RepoError, match=message):
        published.add([pkg], channel, key)
    assert tree_hash(published.path) == before


def test_refuses_a_package_of_another_name(repo: Repository, tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: other\nVersion: 1.0\nArchitecture: amd64\nMaintainer: x <x@example.invalid>\nDescription: x\n"
    )
    deb = tmp_path / "other.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True
    )
    with pytest.raises(RepoError, match="is not mattermost or mattermost-team or mattermost-archive-keyring"):
        repo.add([deb], "stable", KEY)
    assert not repo.path.exists()


def test_refuses_upstreams_omnibus_and_publishes_its_own_transitional_package_once(
    published: Repository, packages: PackageFactory, tmp_path: Path
) -> None:
    upstream = build_omnibus_deb("10.12.0", tmp_path)
    before = published.list("stable")
    with pytest.raises(
        RepoError, match=r"carries the repository's own mattermost-omnibus 11\.0\.0-1, a transitional"
    ):
        published.add([upstream, packages.deb(V2)], "stable", KEY)
    assert published.list("stable") == before
    [transitional] = [e for e in before if e.name == omnibus.NAME]
    assert (transitional.version, transitional.arch) == (omnibus.FULL_VERSION, "all")
    # Its control says what it is, and it has no maintainer script that a purge could run.
    deb = published.path / transitional.path
    fields = subprocess.run(
        ["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "Section: oldlibs\n" in fields and "Depends" not in fields
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    names = (
        subprocess.run(["tar", "-t"], input=control, capture_output=True, check=True).stdout.decode().split()
    )
    assert sorted(names) == ["./", "./control", "./md5sums"]
    # A later add builds it no more.
    added = published.add([packages.deb(V2)], "stable", KEY)
    assert omnibus.NAME not in {e.name for e in added.added}


def test_check_reports_tampering(published: Repository) -> None:
    packages = published.path / "dists/stable/main/binary-amd64/Packages"
    packages.write_text(packages.read_text() + "\n")
    repomd = published.path / "rpm/stable/x86_64/repodata/repomd.xml"
    repomd.write_text(repomd.read_text().replace("<revision>", "<revision>1"))
    problems = published.check()
    assert "dists/stable/main/binary-amd64/Packages: does not match Release" in problems
    assert "rpm/stable/x86_64/repodata/repomd.xml.asc: signature does not verify" in problems


def test_check_reports_unindexed_files(published: Repository) -> None:
    (published.path / "pool/main/m/mattermost/stray.deb").write_text("x")
    (published.path / "pool/stable").mkdir()
    (published.path / "pool/stable/stray.deb").write_text("x")
    assert published.check() == [
        "pool/stable/stray.deb: not in any index",
        "pool/main/m/mattermost/stray.deb: not in any index",
    ]


def test_concurrent_adds_serialise(published: Repository, packages: PackageFactory) -> None:
    import threading

    v2, team = packages.build(V2), packages.build(V2, edition=Edition.TEAM)
    errors: list[BaseException] = []

    def add(pkgs: list[Path]) -> None:
        try:
            Repository(published.path, gnupghome=published.gnupghome).add(pkgs, "stable", KEY)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=([b.deb, b.rpm],)) for b in (v2, team)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {e.name for e in published.list("stable")} == {
        "mattermost",
        "mattermost-team",
        "mattermost-archive-keyring",
        "mattermost-omnibus",
    }
    assert published.check() == []


def test_refuses_another_key_once_published(published: Repository, gnupghome: Path) -> None:
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    other = "other@example.invalid"
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", other, "rsa3072", "sign", "never"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    before = tree_hash(published.path)
    with pytest.raises(RepoError, match="is not one of the repository's keys"):
        published.add([], "stable", other)
    assert tree_hash(published.path) == before


def _client_config(url: str, fmt: ClientFormat) -> str:
    """The apt source or dnf .repo that `mmpkg repo client-config URL` prints."""
    [snippet] = client_config(url, "stable", fmt)
    return snippet.text


class _Handler(http.server.SimpleHTTPRequestHandler):
    """A static server that always sends the file: its Last-Modified has whole seconds only, so
    an index replaced within the second of a client's previous fetch would answer 304."""

    def send_head(self) -> Any:
        del self.headers["If-Modified-Since"]
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serve(tree: Path, port: int = 0) -> Iterator[str]:
    """`tree` served at the URL given, on `port` (a free one by default)."""
    import functools
    import threading

    handler = functools.partial(_Handler, directory=str(tree))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(published: Repository) -> Iterator[str]:
    with _serve(published.path) as url:
        yield url


def _apt_client(root: harness.Root, repo: Repository, url: str) -> None:
    """Point the root at the served repository only, trusting its keys alone: the bootstrap
    download of keys/ into the place the keyring package will own."""
    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
    root.path(KEYRING).write_bytes((repo.path / "keys/archive-keyring.gpg").read_bytes())
    root.write_text("/etc/apt/sources.list.d/mattermost.sources", _client_config(url, ClientFormat.APT))


def _installed_deb(root: harness.Root) -> str:
    return root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout.split("-")[0]


@pytest.mark.generations
@pytest.mark.install
def test_apt_installs_and_upgrades_from_the_served_tree(
    published: Repository, served: str, root: harness.Root, packages: PackageFactory
) -> None:
    _apt_client(root, published, served)
    root.run("apt-get", "update", "--error-on=any")
    root.apt_install("mattermost")
    assert _installed_deb(root) == V1
    v2 = packages.build(V2)
    published.add([v2.deb, v2.rpm], "stable", KEY)
    root.run("apt-get", "update", "--error-on=any")
    root.run(
        "apt-get",
        "upgrade",
        "-y",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    )
    assert _installed_deb(root) == V2


@pytest.mark.generations
@pytest.mark.install
def test_apt_refuses_a_tampered_packages_index(
    published: Repository, served: str, root: harness.Root
) -> None:
    _apt_client(root, published, served)
    for index in (published.path / "dists/stable/main/binary-amd64").rglob("Packages*"):
        index.write_bytes(index.read_bytes() + b"\n")
    for index in (published.path / "dists/stable/main/binary-amd64/by-hash/SHA256").iterdir():
        index.write_bytes(index.read_bytes() + b"\n")
    proc = root.run("apt-get", "update", "--error-on=any", check=False)
    assert proc.returncode != 0
    assert (
        "Hash Sum mismatch" in proc.stdout + proc.stderr
        or "File has unexpected size" in proc.stdout + proc.stderr
    )


REPOS_DIR = "/etc/yum.repos.d"


def _dnf(root: harness.Root, repo: Repository, url: str, *args: str, check: bool = True) -> str:
    # The bootstrap: the served key set where the keyring package puts it, and the .repo that
    # names it, in the root, read by the root's own dnf.
    if not root.exists(RPM_KEY):
        root.path(RPM_KEY).parent.mkdir(parents=True, exist_ok=True)
        root.write_text(RPM_KEY, repo.export_key())
    root.path(REPOS_DIR).mkdir(parents=True, exist_ok=True)
    root.write_text(f"{REPOS_DIR}/mattermost.repo", _client_config(url, ClientFormat.DNF))
    proc = root.dnf(f"--setopt=reposdir={REPOS_DIR}", *args, repo_dir=None, check=check)
    return proc.stdout + proc.stderr


@pytest.mark.generations
@pytest.mark.install
def test_dnf_installs_and_upgrades_with_gpg_checks(
    published: Repository, served: str, root: harness.Root, packages: PackageFactory, tmp_path: Path
) -> None:
    harness.require(*harness.DNF_TOOLS)
    out = _dnf(root, published, served, "install", "mattermost", "mattermost-archive-keyring")
    # The key came from the .repo's gpgkey=, so gpgcheck and repo_gpgcheck were in force.
    assert "Importing GPG key" in out
    # From now on the keyring package owns the key the bootstrap put there.
    assert root.rpm_query("-qf", "--qf", "%{NAME}", RPM_KEY) == "mattermost-archive-keyring"
    assert root.read_text(RPM_KEY) == published.export_key()
    assert root.rpm_query("--qf", "%{VERSION}", "mattermost") == V1
    v2 = packages.build(V2)
    published.add([v2.deb, v2.rpm], "stable", KEY)
    _dnf(root, published, served, "upgrade", "mattermost")
    assert root.rpm_query("--qf", "%{VERSION}", "mattermost") == V2


@pytest.mark.install
def test_dnf_refuses_a_tampered_repomd(
    published: Repository, served: str, root: harness.Root, tmp_path: Path
) -> None:
    harness.require(*harness.DNF_TOOLS)
    repomd = published.path / "rpm/stable/x86_64/repodata/repomd.xml"
    repomd.write_text(repomd.read_text().replace("<revision>", "<revision>1"))
    out = _dnf(root, published, served, "install", "mattermost", check=False)
    assert not root.rpm_installed("mattermost")
    assert "repomd.xml GPG signature verification error" in out, out


# ---- retention: the newest versions and the upgrade path's stops stay ----

# Three ESR stops (5.37, 6.3, 7.1) between the oldest and the newest; the others are plain versions.
HISTORY = ("5.35.0", "5.37.10", "6.0.0", "6.3.10", "7.0.0", "7.1.8", "7.2.0", "7.3.0")


@pytest.fixture
def retained(repo: Repository, packages: PackageFactory) -> tuple[Repository, AddResult]:
    result = repo.add([packages.deb(v) for v in HISTORY], "stable", KEY, keep=2)
    return repo, result


def _indexed_versions(repo: Repository) -> list[str]:
    """The versions apt-ftparchive put into the channel's amd64 Packages index."""
    text = (repo.path / "dists/stable/main/binary-amd64/Packages").read_text()
    paras = [dict(line.split(": ", 1) for line in p.splitlines() if ": " in line) for p in text.split("\n\n")]
    return [p["Version"] for p in paras if p.get("Package") == "mattermost"]


def test_add_prunes_all_but_the_newest_and_the_upgrade_stops(retained: tuple[Repository, AddResult]) -> None:
    repo, result = retained
    assert sorted(e.version for e in result.pruned) == ["5.35.0-1", "6.0.0-1", "7.0.0-1"]
    # What retention drops at once is not published at all.
    servers = [e.version for e in result.added if e.name == "mattermost"]
    assert sorted(servers) == ["5.37.10-1", "6.3.10-1", "7.1.8-1", "7.2.0-1", "7.3.0-1"]
    for e in result.pruned:
        assert not (repo.path / e.path).exists()
    listed = [e.version for e in repo.list("stable") if e.name == "mattermost"]
    assert listed == ["7.3.0-1", "7.2.0-1", "7.1.8-1", "6.3.10-1", "5.37.10-1"]
    assert sorted(_indexed_versions(repo)) == sorted(listed)
    assert repo.check() == []


def test_add_refuses_keep_zero_and_changes_nothing(
    retained: tuple[Repository, AddResult], packages: PackageFactory
) -> None:
    repo, _ = retained
    before = tree_hash(repo.path)
    with pytest.raises(RepoError, match="keep must be at least 1"):
        repo.add([packages.deb(HISTORY[0])], "stable", KEY, keep=0)
    assert tree_hash(repo.path) == before


@pytest.mark.install
def test_apt_installs_a_kept_stop_but_not_a_pruned_version(
    retained: tuple[Repository, AddResult], root: harness.Root
) -> None:
    repo, _ = retained
    with _serve(repo.path) as url:
        _apt_client(root, repo, url)
        root.run("apt-get", "update", "--error-on=any")
        madison = root.run("apt-cache", "madison", "mattermost").stdout
        offered = sorted(line.split("|")[1].strip() for line in madison.splitlines())
        assert offered == sorted(e.version for e in repo.list("stable") if e.name == "mattermost")
        refused = root.run("apt-get", "install", "-s", "mattermost=6.0.0-1", check=False)
        assert refused.returncode != 0
        root.apt_install("mattermost=5.37.10-1")
        assert _installed_deb(root) == "5.37.10"
        # Straight to the newest, the package's guard refuses; the plan's stops are all there.
        old, newest = MattermostVersion.parse("5.37.10"), MattermostVersion.parse(HISTORY[-1])
        direct = root.apt_install(f"mattermost={newest}-1", check=False)
        assert direct.returncode != 0
        assert f"mattermost: error: {refusal(old, newest)}" in direct.stdout + direct.stderr
        assert _installed_deb(root) == str(old)
        kept = [upstream_version(e) for e in repo.list("stable") if e.name == "mattermost"]
        for stop in plan(old, newest, kept):
            root.apt_install(f"mattermost={stop}-1")
            assert _installed_deb(root) == str(stop)
