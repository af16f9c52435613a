"""Moving from Mattermost's own `mattermost` deb (deb.packages.mattermost.com) to this package,
with real apt between two served repositories: upstream's (a replica built from its published
scripts, tests/official_deb.py) and this project's.

One way only: official -> mmpkg keeps everything; mmpkg -> official never happens by itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import harness
import minimal_packages as minimal
import pytest
from aptrepo import flat_repo
from official_deb import BLOBS, HERE, build_official_deb, git_blob_id
from packages import PackageFactory
from repo_client import CONF
from scenario import DB_DIR, Site
from test_hostile import SECRET_DIR, VAULT, make_vault, sentinel_state
from test_lifecycle import (
    PREFIX,
    WANTS,
    has_pending,
    is_admins,
    schema,
    snapshots,
    tree_digest,
)
from test_repo import KEY, _serve, gnupghome
from test_repo_keys import _gen

from mmpkg.repo import Repository
from mmpkg.repo.clients import ClientFormat, client_config, setup_commands
from mmpkg.repo.keyring import DEB_KEYRING, LEGACY_DEB_KEYRING, NAME

__all__ = ["gnupghome"]  # the signing key, shared with test_repo.py

OFFICIAL_OLD = "10.5.2"  # what the administrator runs from upstream's repository
OURS = "10.11.1"  # this project's package they move to
OFFICIAL_NEWER = "10.11.3"  # upstream's next release, offered while they are on ours
OFFICIAL_SOURCE = "/etc/apt/sources.list.d/mattermost.list"
KEPT = ("data", "plugins", "client/plugins", "logs")


def test_the_replica_carries_upstreams_files_byte_for_byte() -> None:
    for local, (_, blob) in BLOBS.items():
        assert git_blob_id((HERE / local).read_bytes()) == blob, local
    assert sorted(p.relative_to(HERE).as_posix() for p in HERE.rglob("*") if p.is_file()) == sorted(BLOBS)


@pytest.fixture(scope="module")
def upstream_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A key standing for upstream's (deb.packages.mattermost.com/pubkey.gpg): its GNUPGHOME,
    and the binary keyring its install guide makes of it (`gpg --dearmor`)."""
    home = tmp_path_factory.mktemp("upstream-gnupg")
    home.chmod(0o700)
    fpr = _gen(home, "upstream@example.invalid")
    env = {**os.environ, "GNUPGHOME": str(home)}
    armoured = subprocess.run(
        ["gpg", "--batch", "--armor", "--export", fpr], env=env, capture_output=True, check=True
    )
    dearmoured = subprocess.run(["gpg", "--dearmor"], input=armoured.stdout, capture_output=True, check=True)
    return home, dearmoured.stdout


@contextlib.contextmanager
def _official_repo(debs: list[Path], tmp: Path, key: tuple[Path, bytes]) -> Iterator[str]:
    """Upstream's repository, served over HTTP, its Release signed with upstream's key."""
    repo = flat_repo(debs, tmp / "official-repo")
    inrelease = repo.path / "InRelease"
    inrelease.unlink(missing_ok=True)
    subprocess.run(
        ["gpg", "--batch", "--clearsign", "--output", str(inrelease), str(repo.path / "Release")],
        env={**os.environ, "GNUPGHOME": str(key[0])},
        capture_output=True,
        check=True,
    )
    with _serve(repo.path) as url:
        yield url


def _official_source(url: str) -> str:
    """The source upstream's repo-setup.sh writes, naming the key file its guide writes."""
    return f"deb [signed-by={LEGACY_DEB_KEYRING}] {url}/ ./\n"


def _install_from_upstream(root: harness.Root, url: str, keyring: bytes) -> None:
    """A server set up from upstream's repository alone, as its guide does: its key, its
    source, `apt-get install mattermost`."""
    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
    root.path(LEGACY_DEB_KEYRING).write_bytes(keyring)
    root.write_text(OFFICIAL_SOURCE, _official_source(url))
    _apt(root, "update", "--error-on=any")
    _apt(root, "install", "mattermost")


def _apt(root: harness.Root, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return root.run("apt-get", "-y", *CONF, *args, check=check)


def _installed(root: harness.Root) -> str:
    return root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout


def _unchanged_by_links(root: harness.Root) -> dict[str, object]:
    """Root's files the planted links lead to, as a link followed would change them: owner, group
    and mode of each; the vault's contents too (the package adds its user to /etc/passwd)."""
    state = sentinel_state(root)
    return {
        path: meta if meta is None or path.startswith(VAULT) else (meta.uid, meta.gid, meta.mode)
        for path, meta in state.items()
    }


def _official_installed(root: harness.Root, packages: PackageFactory, tmp_path: Path) -> Site:
    """The replica of upstream's OFFICIAL_OLD deb installed with dpkg, its server set up."""
    official = build_official_deb(packages.tarball(OFFICIAL_OLD), OFFICIAL_OLD, tmp_path / "official")
    root.run("dpkg", "-i", root.copy_in(official))
    return _official_server(root)


def _official_server(root: harness.Root) -> Site:
    """Upstream's install guide after `apt install mattermost`: config.json from the defaults,
    then the server run once, and a site's worth of files in its data, plugins and logs."""
    root.run(
        "install", "-C", "-m", "600", "-o", "mattermost", "-g", "mattermost",
        f"{PREFIX}/config/config.defaults.json", f"{PREFIX}/config/config.json",
    )  # fmt: skip
    site = Site(root)
    site.create_database()
    with site.serve() as url:
        assert site.ping_version(url) == OFFICIAL_OLD
    script = f"""
        set -e
        cd {PREFIX}
        mkdir -p data/teams/t1 plugins/com.example.official client/plugins/com.example.official
        printf 'minutes' > data/teams/t1/minutes.txt
        printf '{{"id": "com.example.official"}}' > plugins/com.example.official/plugin.json
        printf 'bundle' > client/plugins/com.example.official/main.js
    """
    root.run("runuser", "-u", "mattermost", "--", "sh", "-c", script)
    return site


@pytest.mark.install
def test_apt_moves_an_official_install_to_the_package_and_never_back(
    root: harness.Root,
    packages: PackageFactory,
    gnupghome: Path,
    upstream_key: tuple[Path, bytes],
    tmp_path: Path,
) -> None:
    official = [
        build_official_deb(packages.tarball(v), v, tmp_path / "official")
        for v in (OFFICIAL_OLD, OFFICIAL_NEWER)
    ]
    ours = Repository(tmp_path / "repo", gnupghome=gnupghome)
    ours.add([packages.deb(OURS)], "stable", KEY)
    with _official_repo(official[:1], tmp_path, upstream_key) as official_url, _serve(ours.path) as our_url:
        _install_from_upstream(root, official_url, upstream_key[1])
        assert _installed(root) == f"{OFFICIAL_OLD}-0"
        site = _official_server(root)
        config = root.read_json(f"{PREFIX}/config/config.json")
        assert config["FileSettings"]["PublicLinkSalt"]  # the server generated its keys
        files = {d: tree_digest(root, f"{PREFIX}/{d}") for d in KEPT}

        # The administrator adds this project's repository beside upstream's, as client-config
        # --commands says, and installs.
        trust, install = setup_commands(our_url, "stable", ClientFormat.APT)
        root.sh(trust)
        assert install == f"apt-get update && apt-get install -y {NAME} mattermost"
        _apt(root, "update", "--error-on=any")
        moved = _apt(root, "install", NAME, "mattermost")
        # Upstream's key file is as its set-up wrote it, and both repositories still verify.
        assert root.path(LEGACY_DEB_KEYRING).read_bytes() == upstream_key[1]
        assert root.run("dpkg-query", "-S", LEGACY_DEB_KEYRING, check=False).returncode != 0
        assert root.run("dpkg-query", "-S", DEB_KEYRING).stdout.startswith(f"{NAME}: ")
        _apt(root, "update", "--error-on=any")

        assert _installed(root) == f"{OURS}-1"
        assert (
            "taking over the Mattermost server of the installed package mattermost 10.5.2-0"
            in moved.stdout + moved.stderr
        )
        # Its configuration, keys and all, is the package's now, behind the package's link.
        assert os.readlink(root.path(f"{PREFIX}/config", follow_symlinks=False)) == "/etc/mattermost/config"
        assert root.read_json("/etc/mattermost/config/config.json") == config
        for d in KEPT:
            kept = {p: h for p, h in files[d].items() if is_admins(p) or d == "logs"}
            assert kept and kept.items() <= tree_digest(root, f"{PREFIX}/{d}").items(), d
        assert site.schema() == schema(OURS)
        assert not has_pending(root)
        assert [s for s in snapshots(root) if "_handmade_to_" in s]
        # Upstream's unit and links are gone with its package; the unit is ours and enabled.
        assert "MM_INSTALL_TYPE=deb_package" not in root.read_text("/lib/systemd/system/mattermost.service")
        assert root.exists(WANTS, follow_symlinks=False)
        with site.serve() as url:
            assert site.ping_version(url) == OURS

    # Upstream publishes a newer release; the administrator still has its repository.
    with _official_repo(official, tmp_path, upstream_key) as official_url, _serve(ours.path) as our_url:
        root.write_text(OFFICIAL_SOURCE, _official_source(official_url))
        [source] = client_config(our_url, "stable", ClientFormat.APT)
        root.write_text(source.path, source.text)
        _apt(root, "update", "--error-on=any")
        policy = root.run("apt-cache", "policy", "mattermost").stdout
        assert f"{OFFICIAL_NEWER}-0" in policy and f"Candidate: {OURS}-1" in policy, policy
        _apt(root, "upgrade")
        _apt(root, "dist-upgrade")
        assert _installed(root) == f"{OURS}-1"
        assert os.readlink(root.path(f"{PREFIX}/config", follow_symlinks=False)) == "/etc/mattermost/config"
        _apt(root, "install", "mattermost")
        assert _installed(root) == f"{OURS}-1"
        # The package's pin is what keeps it: without it, apt would take upstream's newer one.
        assert root.exists("/etc/apt/preferences.d/mattermost")
        root.run("rm", "/etc/apt/preferences.d/mattermost")
        policy = root.run("apt-cache", "policy", "mattermost").stdout
        assert f"Candidate: {OFFICIAL_NEWER}-0" in policy, policy


@pytest.mark.install
def test_a_takeover_that_dpkg_cannot_unpack_leaves_the_official_package_working(
    root: harness.Root, packages: PackageFactory, tmp_path: Path
) -> None:
    site = _official_installed(root, packages, tmp_path)
    config = f"{PREFIX}/config/config.json"
    config_bytes = root.path(config).read_bytes()
    # Another package owns a file of ours: dpkg refuses it while unpacking, after the preinst
    # took the server over, and unwinds with postrm abort-upgrade.
    squatter = minimal.deb(
        tmp_path, "squatter", "1", arch="all", files={"/usr/sbin/mattermost-pkg": b"#!/bin/sh\n"}
    )
    root.run("dpkg", "-i", root.copy_in(squatter))

    result = root.run("dpkg", "-i", root.copy_in(packages.deb(OURS)), check=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "taking over the Mattermost server of the installed package mattermost 10.5.2-0" in output
    assert "trying to overwrite '/usr/sbin/mattermost-pkg'" in output
    assert "the hand-made installation in /opt/mattermost is back as it was" in output
    assert root.dpkg_status("mattermost") == "install ok installed"
    assert _installed(root) == f"{OFFICIAL_OLD}-0"
    assert root.stat(f"{PREFIX}/config", follow_symlinks=False).kind == "dir"
    assert root.path(config).read_bytes() == config_bytes
    assert root.stat(config).owner == "mattermost"
    assert not root.exists("/etc/mattermost")
    assert not has_pending(root)
    with site.serve() as url:
        assert site.ping_version(url) == OFFICIAL_OLD


@pytest.mark.install
@pytest.mark.parametrize("fmt", ["deb", "rpm"])
def test_a_package_installed_after_the_official_one_was_removed_adopts_what_it_left(
    root: harness.Root, packages: PackageFactory, tmp_path: Path, fmt: str
) -> None:
    """The leftover is upstream's deb's; the rpm's %pre of a first install decides the same way
    (a hand-made /opt/mattermost whose binary is gone looks the same to it)."""
    site = _official_installed(root, packages, tmp_path)
    config = root.read_json(f"{PREFIX}/config/config.json")
    files = {d: tree_digest(root, f"{PREFIX}/{d}") for d in KEPT}
    old_uid = root.run("id", "-u", "mattermost").stdout.strip()
    # Upstream's prerm and postrm call systemctl, which a root without systemd running fails.
    root.wrap("systemctl", lambda real: "#!/bin/sh\nexit 0\n")
    _apt(root, "remove", "mattermost")
    root.unwrap("systemctl")
    # Upstream's postrm remove deleted its user; its uid now belongs to nobody, and another
    # system user takes it before this package creates its own.
    assert root.run("id", "mattermost", check=False).returncode != 0
    assert root.stat(f"{PREFIX}/config", follow_symlinks=False).kind == "dir"
    assert not root.exists(f"{PREFIX}/bin/mattermost")
    root.run("useradd", "--system", "--uid", old_uid, "--no-create-home", "squatter")
    # The old uid's new owner is hostile: links in the tree root hands over, to root's files.
    make_vault(root)
    root.run(
        "runuser", "-u", "squatter", "--", "sh", "-c",
        f"ln -s /etc/shadow {PREFIX}/data/shadow && ln -s {VAULT} {PREFIX}/logs/vault && "
        f"ln -s /etc/passwd {PREFIX}/config/passwd && ln -s {SECRET_DIR}/keep {PREFIX}/plugins/keep",
    )  # fmt: skip
    sentinels = _unchanged_by_links(root)
    # The sample's database stands for a PostgreSQL server, which the server reaches whatever
    # its uid: its directory must not tie it to the deleted user's.
    root.run("chmod", "-R", "a+rwX", DB_DIR)

    built = packages.build(OURS)

    def install(env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if fmt == "deb":
            return root.run("dpkg", "-i", root.copy_in(built.deb), env=env, check=check)
        return root.rpm("-i", built.rpm, env=env, check=check)

    # No binary is left to tell the version the database was migrated by: refused, changing
    # nothing but the owner of the leftover files, until the administrator vouches for the jump.
    refused = install({}, check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert (
        "refusing to upgrade to 10.11.1: cannot read the installed version ('unknown' from "
        "/opt/mattermost/config, which a removed server left without its binary; to start afresh "
        "instead, move /opt/mattermost aside), so the upgrade path cannot be checked. If you know "
        "it is supported, set MMPKG_ALLOW_UNSUPPORTED_UPGRADE=1"
    ) in output, output
    assert root.read_json(f"{PREFIX}/config/config.json") == config
    assert not root.exists("/etc/mattermost/config")
    assert not has_pending(root)
    assert _unchanged_by_links(root) == sentinels
    if fmt == "deb":
        root.run("dpkg", "--purge", "mattermost")  # dpkg keeps a package whose preinst failed
    else:
        assert not root.rpm_installed("mattermost")

    result = install({"MMPKG_ALLOW_UNSUPPORTED_UPGRADE": "1"})

    output = result.stdout + result.stderr
    assert "adopting the configuration and data a removed Mattermost left in /opt/mattermost" in output
    assert "upgrading to 10.11.1 anyway (MMPKG_ALLOW_UNSUPPORTED_UPGRADE=1)" in output
    if fmt == "deb":
        assert _installed(root) == f"{OURS}-1"
    else:
        assert root.rpm_query("--qf", "%{VERSION}-%{RELEASE}", "mattermost") == f"{OURS}-1"
    assert root.run("id", "-u", "mattermost").stdout.strip() != old_uid
    assert os.readlink(root.path(f"{PREFIX}/config", follow_symlinks=False)) == "/etc/mattermost/config"
    assert root.read_json("/etc/mattermost/config/config.json") == config
    assert root.stat("/etc/mattermost/config/config.json").owner == "mattermost"
    for d in KEPT:
        kept = {p: h for p, h in files[d].items() if is_admins(p) or d == "logs"}
        assert kept and kept.items() <= tree_digest(root, f"{PREFIX}/{d}").items(), d
        assert root.stat(f"{PREFIX}/{d}").owner == "mattermost", d
    leftover = root.sh(f"find {PREFIX} /etc/mattermost -user squatter").stdout
    assert not leftover, leftover
    assert _unchanged_by_links(root) == sentinels
    assert not has_pending(root)
    with site.serve() as url:
        assert site.ping_version(url) == OURS
    assert site.schema() == schema(OURS)
