"""Moving from Mattermost's own `mattermost` deb (deb.packages.mattermost.com) to this package,
with real apt between two served repositories: upstream's (a replica built from its published
scripts, tests/support/official_deb.py) and this project's.

One way only: official -> mmpkg keeps everything; mmpkg -> official never happens by itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmpkg.backends import deb as deb_backend
from mmpkg.build import omnibus
from mmpkg.repo import Repository
from mmpkg.repo.clients import ClientFormat, client_config, setup_command
from mmpkg.repo.keyring import DEB_KEYRING, LEGACY_DEB_KEYRING, NAME
from tests.support import harness
from tests.support import minimal_packages as minimal
from tests.support.aptrepo import flat_repo
from tests.support.official_deb import (
    BLOBS,
    HERE,
    OMNIBUS_DATA,
    OMNIBUS_ENV,
    OMNIBUS_LOGS,
    OMNIBUS_SETTINGS,
    build_official_deb,
    build_omnibus_deb,
    git_blob_id,
    omnibus_reconfigure,
)
from tests.support.packages import PackageFactory
from tests.support.pgserver import PgServer
from tests.support.repo_client import CONF
from tests.support.scenario import BACKUPS, CONFIG_DIR, DB_DIR, ENV_FILE, Site
from tests.test_hostile import SECRET_DIR, VAULT, make_vault, sentinel_state
from tests.test_lifecycle import (
    PREFIX,
    WANTS,
    active_config,
    db_schema,
    has_pending,
    is_admins,
    schema,
    snapshots,
    tree_digest,
)
from tests.test_repo import KEY, _serve, gnupghome
from tests.test_repo_keys import _gen

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


def _install_from_upstream(root: harness.Root, url: str, keyring: bytes, package: str = "mattermost") -> None:
    """A server set up from upstream's repository alone, as its guide does: its key, its
    source, `apt-get install mattermost` (or mattermost-omnibus, its debconf questions skipped
    as upstream's cloud images skip them)."""
    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
    root.path(LEGACY_DEB_KEYRING).write_bytes(keyring)
    root.write_text(OFFICIAL_SOURCE, _official_source(url))
    _apt(root, "update", "--error-on=any")
    root.run("env", "MMO_SKIP_INITIAL_CONF=1", "apt-get", "-y", *CONF, "install", package)


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
        # --commands says, and installs (here apt-get is told to keep changed configuration files,
        # which a person at the command's dpkg prompt would answer).
        root.sh(setup_command(our_url, "stable", ClientFormat.APT, install=False))
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


# ---- mattermost-omnibus ------------------------------------------------------------------------


def _install_omnibus_from_upstream(root: harness.Root, url: str, keyring: bytes, dsn: str) -> dict[str, str]:
    """Upstream's omnibus guide: its repository, `apt install mattermost-omnibus` (its debconf
    questions skipped as its cloud images skip them), then what `mmomni reconfigure` writes, and
    the server run once: it stores its default configuration in the database MM_CONFIG names.
    Then a site's worth of files in its file store, plugins and logs. Returns its environment."""
    _install_from_upstream(root, url, keyring, omnibus.NAME)
    env = omnibus_reconfigure(root, dsn)
    with Site(root).serve(env=env) as url:
        assert Site(root).ping_version(url) == OFFICIAL_OLD
    script = f"""
        set -e
        mkdir -p {OMNIBUS_DATA}/teams/t1 {PREFIX}/plugins/com.example.omni {PREFIX}/client/plugins/com.example.omni
        printf 'minutes' > {OMNIBUS_DATA}/teams/t1/minutes.txt
        printf '{{"id": "com.example.omni"}}' > {PREFIX}/plugins/com.example.omni/plugin.json
        printf 'bundle' > {PREFIX}/client/plugins/com.example.omni/main.js
        printf 'a line of the old server' >> {OMNIBUS_LOGS}/mattermost.log
    """
    root.run("runuser", "-u", "mattermost", "--", "sh", "-c", script)
    return env


def _kept_trees(root: harness.Root) -> dict[str, dict[str, str]]:
    """The file store, and the administrator's plugins, by digest (the server unpacks its
    prepackaged plugins again at each start; the logs only grow: _log_kept)."""
    trees = {d: tree_digest(root, d) for d in (OMNIBUS_DATA, f"{PREFIX}/plugins", f"{PREFIX}/client/plugins")}
    return {
        d: {p: h for p, h in files.items() if d == OMNIBUS_DATA or is_admins(p)} for d, files in trees.items()
    }


def _log_kept(root: harness.Root, before: str) -> bool:
    return root.read_text(f"{OMNIBUS_LOGS}/mattermost.log").startswith(before)


def _omnibus_upstream_and_ours(
    packages: PackageFactory, version: str, tmp_path: Path, gnupghome: Path
) -> tuple[list[Path], Repository]:
    """Upstream's mattermost and mattermost-omnibus debs of `version`, and this project's
    repository carrying OURS."""
    upstream = tmp_path / "official"
    debs = [
        build_official_deb(packages.tarball(version), version, upstream),
        build_omnibus_deb(version, upstream),
    ]
    ours = Repository(tmp_path / "repo", gnupghome=gnupghome)
    ours.add([packages.deb(OURS)], "stable", KEY)
    return debs, ours


def _omnibus_installed(root: harness.Root) -> str:
    return root.run("dpkg-query", "-W", "-f=${Version}", omnibus.NAME).stdout


@pytest.mark.install
def test_apt_moves_an_omnibus_server_to_the_package_and_no_purge_of_omnibus_undoes_it(
    root: harness.Root,
    packages: PackageFactory,
    gnupghome: Path,
    upstream_key: tuple[Path, bytes],
    postgres: PgServer,
    tmp_path: Path,
) -> None:
    db = postgres.new_database()
    official, ours = _omnibus_upstream_and_ours(packages, OFFICIAL_OLD, tmp_path, gnupghome)
    upstream = tmp_path / "official"
    # Every channel carries the transitional package.
    assert [(e.name, e.version) for e in ours.list("stable") if e.name == omnibus.NAME] == [
        (omnibus.NAME, omnibus.FULL_VERSION)
    ]
    with _official_repo(official, tmp_path, upstream_key) as official_url, _serve(ours.path) as our_url:
        env = _install_omnibus_from_upstream(root, official_url, upstream_key[1], db.dsn())
        assert _omnibus_installed(root) == f"{OFFICIAL_OLD}-0"
        assert root.exists(omnibus.DROP_IN) and not root.exists(f"{PREFIX}/config/config.json")
        config = active_config(db)
        kept = _kept_trees(root)
        assert all(kept.values())
        log = root.read_text(f"{OMNIBUS_LOGS}/mattermost.log")
        assert log.endswith("a line of the old server")

        root.sh(setup_command(our_url, "stable", ClientFormat.APT, install=False))
        _apt(root, "update", "--error-on=any")
        moved = _apt(root, "install", NAME, "mattermost")
        output = moved.stdout + moved.stderr

        # apt replaced omnibus by the transitional package: upstream's scripts ran for no
        # removal, and its files went with it, the drop-in among them.
        assert _installed(root) == f"{OURS}-1"
        assert _omnibus_installed(root) == omnibus.FULL_VERSION
        assert not root.exists(omnibus.DROP_IN) and not root.exists(f"{PREFIX}/mmomni")
        assert "taking over the Mattermost server of the installed package mattermost 10.5.2-0" in output
        assert (
            "mattermost: warning: mattermost-omnibus set this server up: its nginx, PostgreSQL and certbot are "
            f"left as they are, and so is its {OMNIBUS_SETTINGS}; the server's environment ({OMNIBUS_ENV}) "
            f"goes into {ENV_FILE}" in output
        )
        # Its environment is the package's now: the configuration stays in the database, the
        # file store and logs where omnibus put them. Its file, world-readable with the
        # database password, left /etc/mattermost for the adoption's snapshot.
        site = Site(root)
        carried = site.env_vars()
        for key in (
            "MM_CONFIG",
            "MM_SQLSETTINGS_DATASOURCE",
            "MM_FILESETTINGS_DIRECTORY",
            "MM_SERVICESETTINGS_SITEURL",
        ):
            assert carried[key] == env[key], key
        assert not root.exists(OMNIBUS_ENV)
        [snapshot] = [s for s in snapshots(root) if "_handmade_to_" in s]
        assert root.read_text(f"{BACKUPS}/{snapshot}/omnibus/{OMNIBUS_ENV.rsplit('/', 1)[1]}").startswith(
            "####"
        )
        assert root.exists(OMNIBUS_SETTINGS)
        assert os.readlink(root.path(f"{PREFIX}/config", follow_symlinks=False)) == CONFIG_DIR
        assert db_schema(db) == schema(OURS)
        assert active_config(db)["TeamSettings"] == config["TeamSettings"]
        assert not has_pending(root)
        with site.serve() as url:
            assert site.ping_version(url) == OURS

        # Purging mattermost-omnibus now removes the transitional package alone: upstream's
        # postrm, which deleted /etc/mattermost, the logs, the file store and the service user
        # with its home, is no longer there to run.
        _apt(root, "purge", omnibus.NAME)
        assert root.run("dpkg-query", "-W", "-f=${Status}", omnibus.NAME, check=False).stdout in (
            "",
            "unknown ok not-installed",
        )
        for path in (*omnibus.PURGED, CONFIG_DIR, ENV_FILE, f"{PREFIX}/bin/mattermost"):
            assert root.exists(path), path
        assert root.run("id", "-u", "mattermost").returncode == 0
        for d, digest in kept.items():
            assert digest.items() <= tree_digest(root, d).items(), d
        assert _log_kept(root, log)
        with site.serve() as url:
            assert site.ping_version(url) == OURS

    # Upstream publishes a newer omnibus; the administrator still has its repository: neither
    # it nor its mattermost ever comes back.
    newer = [
        build_official_deb(packages.tarball(OFFICIAL_NEWER), OFFICIAL_NEWER, upstream),
        build_omnibus_deb(OFFICIAL_NEWER, upstream),
    ]
    with (
        _official_repo([*official, *newer], tmp_path, upstream_key) as official_url,
        _serve(ours.path) as our_url,
    ):
        root.write_text(OFFICIAL_SOURCE, _official_source(official_url))
        [source] = client_config(our_url, "stable", ClientFormat.APT)
        root.write_text(source.path, source.text)
        _apt(root, "update", "--error-on=any")
        _apt(root, "dist-upgrade")
        _apt(root, "install", omnibus.NAME)
        assert _installed(root) == f"{OURS}-1"
        assert _omnibus_installed(root) == omnibus.FULL_VERSION


@pytest.mark.install
def test_an_omnibus_removed_but_not_purged_is_refused_until_the_transitional_package_replaces_it(
    root: harness.Root, packages: PackageFactory, postgres: PgServer, tmp_path: Path
) -> None:
    db = postgres.new_database()
    upstream = tmp_path / "official"
    debs = [
        build_official_deb(packages.tarball(OFFICIAL_OLD), OFFICIAL_OLD, upstream),
        build_omnibus_deb(OFFICIAL_OLD, upstream),
    ]
    root.run(
        "env",
        "MMO_SKIP_INITIAL_CONF=1",
        "DEBIAN_FRONTEND=noninteractive",
        "dpkg",
        "-i",
        *(root.copy_in(d) for d in debs),
    )
    env = omnibus_reconfigure(root, db.dsn())
    with Site(root).serve(env=env):
        pass
    ours = root.copy_in(packages.deb(OURS))

    # dpkg alone: our package Breaks the installed omnibus.
    refused = root.run("dpkg", "-i", ours, check=False)
    assert refused.returncode != 0
    assert f"mattermost breaks {omnibus.NAME} (<< {omnibus.FULL_VERSION})" in refused.stdout + refused.stderr
    assert _installed(root) == f"{OFFICIAL_OLD}-0"

    # Removed, its purge (and its postrm with it) still waits: the takeover refuses.
    root.run("dpkg", "-r", omnibus.NAME)
    before = {p: tree_digest(root, p) for p in ("/etc/mattermost", PREFIX)}
    refused = root.run("dpkg", "-i", ours, check=False)
    assert refused.returncode != 0
    assert (
        f"mattermost: error: Mattermost's mattermost-omnibus {OFFICIAL_OLD}-0 is still registered with dpkg, and "
        "its purge would delete /etc/mattermost, /var/log/mattermost, /var/opt/mattermost and the mattermost "
        f"user with its home {PREFIX}: replace it first with this repository's transitional package (apt-get "
        "install mattermost-omnibus), then install this package again; nothing was changed"
    ) in refused.stdout + refused.stderr
    assert _installed(root) == f"{OFFICIAL_OLD}-0"
    assert {p: tree_digest(root, p) for p in before} == before
    assert root.exists(OMNIBUS_ENV)

    # The transitional package in its place: the move goes ahead.
    transitional = omnibus.package(maintainer="Test <test@example.invalid>")
    work = tmp_path / "transitional"
    deb_backend.stage_package(transitional, work / "root")
    root.run("dpkg", "-i", root.copy_in(deb_backend.build_package(transitional, work / "root", work)))
    root.run("dpkg", "-i", ours)
    assert _installed(root) == f"{OURS}-1"
    assert db_schema(db) == schema(OURS)
    root.run("dpkg", "--purge", omnibus.NAME)
    for path in (*omnibus.PURGED, CONFIG_DIR, ENV_FILE):
        assert root.exists(path), path


@pytest.mark.install
def _omnibus_then_transitional(
    root: harness.Root, packages: PackageFactory, postgres: PgServer, tmp_path: Path
) -> None:
    """Upstream's mattermost and mattermost-omnibus installed and reconfigured, then the
    repository's transitional mattermost-omnibus installed over it with dpkg."""
    upstream = tmp_path / "official"
    debs = [
        build_official_deb(packages.tarball(OFFICIAL_OLD), OFFICIAL_OLD, upstream),
        build_omnibus_deb(OFFICIAL_OLD, upstream),
    ]
    root.run("env", "MMO_SKIP_INITIAL_CONF=1", "dpkg", "-i", *(root.copy_in(d) for d in debs))
    omnibus_reconfigure(root, postgres.new_database().dsn())
    transitional = omnibus.package(maintainer="Test <test@example.invalid>")
    work = tmp_path / "transitional"
    deb_backend.stage_package(transitional, work / "root")
    root.run("dpkg", "-i", root.copy_in(deb_backend.build_package(transitional, work / "root", work)))


def test_an_omnibus_server_whose_mattermost_deb_was_removed_is_refused_not_replaced(
    root: harness.Root, packages: PackageFactory, postgres: PgServer, tmp_path: Path
) -> None:
    _omnibus_then_transitional(root, packages, postgres, tmp_path)
    # Upstream's prerm calls systemctl, which a root without systemd running fails.
    root.wrap("systemctl", lambda real: "#!/bin/sh\nexit 0\n")
    root.run("dpkg", "-r", "mattermost")
    root.unwrap("systemctl")
    settings = root.read_text(OMNIBUS_ENV)

    refused = root.run("dpkg", "-i", root.copy_in(packages.deb(OURS)), check=False)

    assert refused.returncode != 0
    assert (
        f"mattermost: error: {OMNIBUS_ENV} holds the settings of a server that mattermost-omnibus set up, and "
        "Mattermost's mattermost package, which this package takes such a server over from, is no longer "
        "installed: install that again (the version that was removed, from Mattermost's repository), then this "
        f"package; to start afresh instead, move {OMNIBUS_ENV} aside"
    ) in refused.stdout + refused.stderr
    assert root.read_text(OMNIBUS_ENV) == settings
    assert not root.exists(ENV_FILE) and not root.exists(CONFIG_DIR)


@pytest.mark.install
def test_an_omnibus_environment_file_the_service_user_replaced_by_a_link_is_never_followed_by_root(
    root: harness.Root, packages: PackageFactory, postgres: PgServer, tmp_path: Path
) -> None:
    """A service user that could write /etc/mattermost puts a link to root's secret in the
    place of omnibus's environment file: root neither reads, copies nor deletes through it."""
    _omnibus_then_transitional(root, packages, postgres, tmp_path)
    make_vault(root)
    root.run("chown", "mattermost", "/etc/mattermost")
    root.run(
        "runuser", "-u", "mattermost", "--", "sh", "-c", f"rm -f {OMNIBUS_ENV} && ln -s {VAULT} {OMNIBUS_ENV}"
    )
    before = _unchanged_by_links(root)

    refused = root.run("dpkg", "-i", root.copy_in(packages.deb(OURS)), check=False)

    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    # The link is moved aside unfollowed, and the takeover then refuses: the unit names a file
    # that is not there.
    assert f"mattermost: warning: moved {OMNIBUS_ENV} to {BACKUPS}/quarantine/" in output
    assert f"{OMNIBUS_ENV} does not exist" in output
    assert _unchanged_by_links(root) == before
    assert not root.exists(OMNIBUS_ENV, follow_symlinks=False)
    assert _installed(root) == f"{OFFICIAL_OLD}-0"
