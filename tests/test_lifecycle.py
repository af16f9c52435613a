"""Failure paths of the package lifecycle (docs/design.md: the configuration layers and the
lifecycle contract), each written once for .deb and .rpm.

Every scenario drives the real package managers (apt/dpkg in a chroot, the host's rpm/dnf on the
root) through a small adapter, `Manager`, and asserts on what those tools, the installed files and
the sample server's database say. No systemd runs in this tier, so the service is never running;
the booted tier is tests/test_systemd*.py's business.

The sections below are numbered rows: 5 unreachable database, 6 failed migration, 7 invalid
configuration, 8 downgrade and MySQL, 10 adoption, 11 interrupted upgrade, 12 switching editions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mmpkg.build.options import BuildOptions
from mmpkg.build.pipeline import build
from mmpkg.build.templates import environment
from mmpkg.mattermost.release import Edition
from mmpkg.mattermost.start_refusals import TABLE as START_REFUSALS
from mmpkg.mattermost.start_refusals import MinimumPostgres
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import PackageFormat
from tests.support import harness
from tests.support.harness import StrPath
from tests.support.packages import MAINTAINER, Built, PackageFactory
from tests.support.pgserver import PgDatabase, PgServer
from tests.support.scenario import (
    BACKUPS,
    CONFIG,
    CONFIG_DIR,
    DB_DIR,
    ENV_FILE,
    OVERRIDES,
    Site,
    State,
    assert_nothing_lost,
    free_port,
)

V = MattermostVersion.parse
ARCHIVED = next(row for row in START_REFUSALS.settings if row.key == "ExperimentalViewArchivedChannels")

pytestmark = pytest.mark.install

OLD = "10.5.2"
NEW = "10.11.1"
PENDING = f"{BACKUPS}/pending"
LAST_CONFIGURED = f"{BACKUPS}/last-configured-version"
MIGRATE_LOG = "/var/log/mattermost/package-upgrade.log"
VERSION_FILE = "/usr/share/mattermost/version"
PREFIX = "/opt/mattermost"
BINARY = f"{PREFIX}/bin/mattermost"
UNIT = "mattermost.service"
WANTS = f"/etc/systemd/system/multi-user.target.wants/{UNIT}"
HANDMADE_UNIT = f"/etc/systemd/system/{UNIT}"
# Where upstream's guides put the hand-made unit: the tarball guide (deploy-tar.rst), and its
# older guides and RHEL guide (deploy-rhel.rst), where the package's own unit goes; with the
# name the adoption snapshot keeps each under.
UNIT_PLACES = {"/etc/systemd/system": f"handmade-{UNIT}", "/lib/systemd/system": f"handmade-lib-{UNIT}"}
# An administrator's override (layer 3): a retry must re-apply it like a clean upgrade does.
OVERRIDE = ("50-admin.json", {"TeamSettings": {"SiteName": "Override from overrides.d"}})
OVERRIDDEN = frozenset({"TeamSettings.SiteName"})

# The product's own messages are part of its contract: one line each, prefixed like this.
ERROR_LINE = re.compile(r"^mattermost: error: .*$", re.MULTILINE)
WARNING_LINE = re.compile(r"^mattermost: warning: .*$", re.MULTILINE)

# The unit of upstream's tarball install guide (deploy-tar.rst), verbatim.
UPSTREAM_UNIT = """\
[Unit]
Description=Mattermost
After=network.target

[Service]
Type=notify
ExecStart=/opt/mattermost/bin/mattermost
TimeoutStartSec=3600
KillMode=mixed
Restart=always
RestartSec=10
WorkingDirectory=/opt/mattermost
User=mattermost
Group=mattermost
LimitNOFILE=49152

[Install]
WantedBy=multi-user.target
"""


def schema(version: str) -> int:
    """The sample server's schema for release X.Y.Z: X*10000 + Y*100 + Z."""
    major, minor, patch = (int(part) for part in version.split("."))
    return major * 10000 + minor * 100 + patch


@dataclass(frozen=True)
class Result:
    """What a package-manager run returned and printed (stdout and stderr together)."""

    argv: str
    returncode: int
    output: str

    @classmethod
    def of(cls, proc: subprocess.CompletedProcess[str]) -> Result:
        argv = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
        return cls(argv, proc.returncode, f"{proc.stdout}\n{proc.stderr}")

    def ok(self) -> Result:
        assert self.returncode == 0, f"{self.argv} failed with {self.returncode}:\n{self.output}"
        return self

    def refused(self) -> str:
        """The run failed with exactly one product error line; returns that line."""
        assert self.returncode != 0, f"{self.argv} succeeded but should have been refused:\n{self.output}"
        return self.one_error()

    def one_error(self) -> str:
        errors = ERROR_LINE.findall(self.output)
        assert len(errors) == 1, f"expected one clear error, got {errors}:\n{self.output}"
        return str(errors[0])


# ---- the two formats, driven by their real tools ---------------------------------------------


class Manager(ABC):
    """One package format's tools, as an administrator would use them on this root."""

    fmt: ClassVar[str]

    def __init__(self, root: harness.Root, packages: PackageFactory) -> None:
        self.root = root
        self.packages = packages

    def build(self, version: str, edition: Edition = Edition.ENTERPRISE) -> Built:
        return self.packages.build(version, edition=edition)

    @abstractmethod
    def install(self, built: Built, *, env: Mapping[str, str] | None = None) -> Result:
        """Install, or upgrade to, `built` (`env`: the package manager's environment)."""

    @abstractmethod
    def downgrade(self, built: Built, *, env: Mapping[str, str] | None = None) -> Result:
        """Install an older `built` over a newer one, with the tool's own downgrade switch."""

    @abstractmethod
    def version(self, name: str = "mattermost") -> str | None:
        """The upstream version the package manager says is installed (deb: fully configured)."""

    @abstractmethod
    def interrupt_upgrade(self, built: Built) -> Result:
        """An upgrade to `built` that stops after the new files are unpacked."""

    @abstractmethod
    def finish(self) -> Result:
        """What completes an interrupted or failed upgrade with this format."""

    @abstractmethod
    def remove(self, name: str = "mattermost") -> Result: ...

    @abstractmethod
    def switch(self, old: str, new: str, built: Built, *, via: str) -> Result:
        """Replace package `old` by the other edition `new` (`built`) in one operation."""

    @abstractmethod
    def owner(self, path: str) -> str:
        """The package that owns `path`."""


class Deb(Manager):
    fmt = "deb"

    def _run(self, *argv: str, env: Mapping[str, str] | None = None) -> Result:
        return Result.of(self.root.run(*argv, env=env, check=False))

    def _apt(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        opts = [arg for c in harness.CONF_OLD for arg in ("-o", f"Dpkg::Options::={c}")]
        return self._run("apt-get", "install", "-y", *opts, *args, env=env)

    def install(self, built: Built, *, env: Mapping[str, str] | None = None) -> Result:
        return self._apt(self.root.copy_in(built.deb), env=env)

    def downgrade(self, built: Built, *, env: Mapping[str, str] | None = None) -> Result:
        return self._apt("--allow-downgrades", self.root.copy_in(built.deb), env=env)

    def version(self, name: str = "mattermost") -> str | None:
        if self.root.dpkg_status(name) != "install ok installed":
            return None
        full = self.root.run("dpkg-query", "-W", "-f=${Version}", name).stdout
        return full.rsplit("-", 1)[0]

    def interrupt_upgrade(self, built: Built) -> Result:
        # What a kill between dpkg's unpack and configure phases leaves behind.
        return self._run("dpkg", *harness.CONF_OLD, "--unpack", self.root.copy_in(built.deb))

    def finish(self) -> Result:
        return self._run("dpkg", *harness.CONF_OLD, "--configure", "-a")

    def remove(self, name: str = "mattermost") -> Result:
        return self._run("dpkg", "--remove", name)

    def switch(self, old: str, new: str, built: Built, *, via: str) -> Result:
        if via == "dpkg":
            # dpkg itself removes the conflicting package "in favour" of the new one.
            return self._run("dpkg", *harness.CONF_OLD, "-i", self.root.copy_in(built.deb))
        assert via == "apt-get", via
        return self._apt(self.root.copy_in(built.deb))

    def owner(self, path: str) -> str:
        return self.root.run("dpkg-query", "-S", path).stdout.partition(":")[0]


class Rpm(Manager):
    fmt = "rpm"

    def _rpm(self, *args: StrPath, env: Mapping[str, str] | None = None) -> Result:
        # The administrator's MMPKG_* switches are environment: rpm hands it to the scriptlets.
        return Result.of(self.root.rpm(*args, nodeps=True, check=False, env=env))

    def install(self, built: Built, *, env: Mapping[str, str] | None = None) -> Result:
        return self._rpm("-U", built.rpm, env=env)

    def downgrade(self, built: Built, *, env: Mapping[str, str] | None = None) -> Result:
        return self._rpm("-U", "--oldpackage", built.rpm, env=env)

    def version(self, name: str = "mattermost") -> str | None:
        proc = self.root.rpm("-q", "--qf", "%{VERSION}", name, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def interrupt_upgrade(self, built: Built) -> Result:
        # Everything up to and including the old package's %postun: what is left when
        # %posttrans never ran (rpm killed, or the machine went down, at the end of the transaction).
        return self._rpm("-U", "--noposttrans", built.rpm)

    def finish(self) -> Result:
        # The unit's ExecStartPre: what the next `systemctl start` runs first.
        return Result.of(self.root.run("mattermost-pkg", "resume", check=False))

    def remove(self, name: str = "mattermost") -> Result:
        return self._rpm("-e", name)

    def switch(self, old: str, new: str, built: Built, *, via: str) -> Result:
        # rpm -U cannot erase a package it only conflicts with; dnf swap erases one and installs
        # the other in one transaction, from a repository as on a real server.
        assert via == "dnf", via
        harness.require(*harness.DNF_TOOLS)
        repo = harness.make_local_rpm_repo([built.rpm], self.root.workdir / f"repo-{new}")
        return Result.of(self.root.dnf("swap", old, new, repo_dir=repo, check=False))

    def owner(self, path: str) -> str:
        return self.root.rpm_query("-qf", "--qf", "%{NAME}", path)


MANAGERS: dict[str, type[Manager]] = {"deb": Deb, "rpm": Rpm}
# Ways to switch between mattermost and mattermost-team, per format.
SWITCHES = [("deb", "apt-get"), ("deb", "dpkg"), ("rpm", "dnf")]


def manager(fmt: str, root: harness.Root, packages: PackageFactory) -> Manager:
    # The factory builds both formats of every release, so both tool sets are needed either way.
    harness.require("dpkg-deb", *harness.RPM_TOOLS)
    return MANAGERS[fmt](root, packages)


@pytest.fixture(params=sorted(MANAGERS))
def pm(request: pytest.FixtureRequest, root: harness.Root, packages: PackageFactory) -> Manager:
    return manager(str(request.param), root, packages)


# ---- helpers -----------------------------------------------------------------------------------


def used_site(pm: Manager, version: str = OLD) -> Site:
    """`version` installed and used: a database at its schema, keys generated by a real start,
    uploads and plugins, a System Console edit, and an admin override waiting for the upgrade."""
    pm.install(pm.build(version)).ok()
    site = Site(pm.root)
    site.create_database()
    with site.serve():
        pass
    assert site.schema() == schema(version)
    site.add_files()
    site.edit_config("ServiceSettings", "SiteURL", "https://chat.example.com")
    site.add_override(*OVERRIDE)
    return site


def unset_env(root: harness.Root, *names: str) -> None:
    """Take variables out of the environment file again (the administrator fixed the cause)."""
    lines = root.read_text(ENV_FILE).splitlines()
    kept = [line for line in lines if line.partition("=")[0].strip() not in names]
    root.write_text(ENV_FILE, "\n".join(kept) + "\n")


def has_pending(root: harness.Root) -> bool:
    return root.exists(PENDING, follow_symlinks=False)


def snapshots(root: harness.Root) -> list[str]:
    return sorted(p.name for p in root.path(BACKUPS).glob("*_to_*")) if root.exists(BACKUPS) else []


def binary_version(root: harness.Root) -> str:
    """What the installed server binary says it is, run as the service user."""
    out = root.run("runuser", "-u", "mattermost", "--", BINARY, "version").stdout
    match = re.search(r"^Version: (\S+)$", out, re.MULTILINE)
    assert match, out
    return match[1]


def unit_state(root: harness.Root) -> str:
    # systemctl answers is-enabled offline, from the unit files and symlinks alone.
    return root.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip()


def tree_digest(root: harness.Root, base: str) -> dict[str, str]:
    """sha256 of every regular file below `base`, by path."""
    host = root.path(base)
    return {
        str(p.relative_to(host)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(host.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def assert_still_old(pm: Manager, config_bytes: bytes | None) -> None:
    """A refused upgrade changed nothing: old package, old files, same config, no pending record."""
    assert pm.version() == OLD
    if pm.fmt == "deb":
        assert pm.root.dpkg_status("mattermost") == "install ok installed"
    assert pm.root.read_text(VERSION_FILE).strip() == OLD
    assert binary_version(pm.root) == OLD
    if config_bytes is None:
        assert not pm.root.exists(CONFIG)
    else:
        assert pm.root.path(CONFIG).read_bytes() == config_bytes
    assert not has_pending(pm.root)
    # The guard runs before the snapshot, and so before anything else happens.
    assert snapshots(pm.root) == []


def assert_settings_kept(before: object, after: object, where: str = "config") -> None:
    """Every setting in `before` has the same value in `after` (which may have more keys)."""
    if isinstance(before, dict) and before:
        assert isinstance(after, dict), where
        for key, value in before.items():
            assert key in after, f"{where}.{key} lost"
            assert_settings_kept(value, after[key], f"{where}.{key}")
    else:
        assert after == before, f"{where} changed"


def is_admins(path: str) -> bool:
    """An upload or a plugin of the administrator's, as opposed to what the server writes itself
    on every start (prepackaged plugins it refreshes, its log)."""
    return "teams/" in path or "com.example." in path


def assert_admin_files_kept(before: State, after: State) -> None:
    """After a server start: the uploads and plugins the administrator added are byte-identical."""
    mine = {p: h for p, h in before.files.items() if is_admins(p)}
    assert mine
    assert mine.items() <= after.files.items()


def assert_remembers(pm: Manager, version: str) -> None:
    """The finished upgrade is on record: once the package is removed, reinstalling an older
    release is refused as a downgrade, because the database is at `version`'s schema now."""
    pm.remove().ok()
    assert pm.version() is None
    error = pm.install(pm.build(OLD)).refused()
    assert f"from {version} to {OLD}" in error
    assert "MMPKG_ALLOW_DOWNGRADE" in error


# ---- row 5: the database cannot be reached during the upgrade --------------------------------


def test_unreachable_database_leaves_migration_to_next_start(pm: Manager) -> None:
    site = used_site(pm)
    site.set_env(MMPKG_SAMPLE_DB_UNREACHABLE="1", MMPKG_SAMPLE_DB_RETRY_SECONDS="0")
    before = site.state()

    result = pm.install(pm.build(NEW)).ok()

    warnings = WARNING_LINE.findall(result.output)
    assert any("database cannot be reached" in w and MIGRATE_LOG in w for w in warnings), result.output
    assert not ERROR_LINE.findall(result.output)
    assert pm.version() == NEW
    assert site.schema() == schema(OLD)
    assert "connection refused" in pm.root.read_text(MIGRATE_LOG)
    # The package is done: the server's own start is the retry, not a pending package step.
    assert not has_pending(pm.root)
    assert_nothing_lost(before, site.state(), changed_keys=OVERRIDDEN)

    unset_env(pm.root, "MMPKG_SAMPLE_DB_UNREACHABLE")
    with site.serve() as url:
        assert site.ping_version(url) == NEW
    assert site.schema() == schema(NEW)
    assert_admin_files_kept(before, site.state())


# ---- row 6: the migration fails ----------------------------------------------------------------


def test_failed_migration_is_loud_keeps_everything_and_retry_finishes(pm: Manager) -> None:
    site = used_site(pm)
    site.set_env(MMPKG_SAMPLE_MIGRATION_FAIL="1")
    before = site.state()

    result = pm.install(pm.build(NEW))

    error = result.one_error()
    snapshot = os.readlink(pm.root.path(PENDING, follow_symlinks=False))
    assert MIGRATE_LOG in error
    assert snapshot in error
    assert "simulated failure" in pm.root.read_text(MIGRATE_LOG)
    # The backup the message names holds the configuration as it was.
    assert pm.root.read_json(f"{snapshot}/config/config.json") == before.config
    assert site.schema() == schema(OLD)
    assert_nothing_lost(before, site.state(), changed_keys=OVERRIDDEN)
    if pm.fmt == "deb":
        assert result.returncode != 0
        assert pm.root.dpkg_status("mattermost") == "install ok half-configured"
    else:
        # RPM cannot roll back: it reports the scriptlet and keeps the new package.
        assert re.search(rf"%posttrans\(mattermost-{re.escape(NEW)}-1\.\w+\) scriptlet failed", result.output)
        assert pm.version() == NEW

    unset_env(pm.root, "MMPKG_SAMPLE_MIGRATION_FAIL")
    pm.finish().ok()

    assert site.schema() == schema(NEW)
    assert pm.version() == NEW
    assert not has_pending(pm.root)
    after = site.state()
    assert_nothing_lost(before, after, changed_keys=OVERRIDDEN)
    assert after.config["TeamSettings"]["SiteName"] == OVERRIDE[1]["TeamSettings"]["SiteName"]
    assert_remembers(pm, NEW)


# ---- row 7: an invalid configuration stops the upgrade before anything is unpacked ------------

BROKEN: dict[str, tuple[str, str | None]] = {
    # Deleted: the new server would start on upstream's defaults, another database, new salts.
    "missing-config": (CONFIG, None),
    "empty-config": (CONFIG, ""),
    "config-not-json": (CONFIG, '{"ServiceSettings": {"SiteURL": "https://chat.example.com",'),
    "override-not-json": (f"{OVERRIDES}/60-broken.json", '{"TeamSettings": '),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_invalid_configuration_refuses_upgrade_before_unpack(pm: Manager, case: str) -> None:
    pm.install(pm.build(OLD)).ok()
    path, text = BROKEN[case]
    if text is None:
        pm.root.path(path).unlink()
    else:
        pm.root.write_text(path, text)
    config_bytes = pm.root.path(CONFIG).read_bytes() if pm.root.exists(CONFIG) else None

    error = pm.install(pm.build(NEW)).refused()

    assert path in error
    assert_still_old(pm, config_bytes)


def test_refused_preinst_unwinds_through_old_postinst_abort_upgrade(
    root: harness.Root, packages: PackageFactory
) -> None:
    deb = manager("deb", root, packages)
    deb.install(deb.build(OLD)).ok()
    root.write_text(CONFIG, "")

    # dpkg's own trace of the maintainer scripts it runs (dpkg(1), --debug=2).
    proc = root.run("dpkg", "--debug=2", "-i", root.copy_in(deb.build(NEW).deb), check=False)
    Result.of(proc).refused()

    trace = proc.stderr
    assert re.search(rf"fork/exec \S+/preinst \( upgrade {re.escape(OLD)}-1 {re.escape(NEW)}-1 \)", trace)
    assert f"fork/exec /var/lib/dpkg/info/mattermost.postinst ( abort-upgrade {NEW}-1 )" in trace
    assert_still_old(deb, b"")


def test_maintainer_scripts_accept_unwind_and_unknown_arguments(
    root: harness.Root, packages: PackageFactory
) -> None:
    deb = manager("deb", root, packages)
    site = used_site(deb)
    before = site.state()
    config_bytes = root.path(CONFIG).read_bytes()

    calls = [
        ("abort-upgrade", f"{NEW}-1"),
        ("abort-remove",),
        ("abort-remove", "in-favour", "mattermost-team", f"{OLD}-1"),
        ("abort-deconfigure", "in-favour", "mattermost-team", f"{OLD}-1"),
        ("abort-install",),
        ("failed-upgrade", f"{NEW}-1"),
        ("made-up-argument-from-a-future-dpkg", "x"),
    ]
    for script in ("preinst", "postinst", "prerm", "postrm"):
        for args in calls:
            proc = root.run(f"/var/lib/dpkg/info/mattermost.{script}", *args, check=False)
            assert proc.returncode == 0, f"{script} {' '.join(args)}: {proc.stdout}{proc.stderr}"
            assert not ERROR_LINE.findall(proc.stdout + proc.stderr)

    assert deb.version() == OLD
    assert root.path(CONFIG).read_bytes() == config_bytes
    assert root.exists(ENV_FILE)
    assert unit_state(root) == "enabled"
    assert not has_pending(root)
    assert_nothing_lost(before, site.state())


# ---- row 8: downgrades and MySQL to v11 --------------------------------------------------------


def test_downgrade_refused_unless_allowed(pm: Manager) -> None:
    pm.install(pm.build(NEW)).ok()
    config_bytes = pm.root.path(CONFIG).read_bytes()

    error = pm.downgrade(pm.build(OLD)).refused()

    assert "MMPKG_ALLOW_DOWNGRADE" in error
    assert pm.version() == NEW
    assert pm.root.read_text(VERSION_FILE).strip() == NEW
    assert binary_version(pm.root) == NEW
    assert pm.root.path(CONFIG).read_bytes() == config_bytes
    assert not has_pending(pm.root)

    pm.downgrade(pm.build(OLD), env={"MMPKG_ALLOW_DOWNGRADE": "1"}).ok()

    assert pm.version() == OLD
    assert pm.root.read_text(VERSION_FILE).strip() == OLD
    assert binary_version(pm.root) == OLD
    assert pm.root.read_json(CONFIG) == json.loads(config_bytes)


MYSQL_CONFIG_DSN = "mysql://mmuser:secret@tcp(localhost:3306)/mattermost?charset=utf8mb4"


@pytest.mark.parametrize("where", ["config.json", "mattermost.env", "config-in-mysql"])
def test_mysql_refuses_upgrade_to_v11(pm: Manager, where: str) -> None:
    pm.install(pm.build("10.11.1")).ok()
    site = Site(pm.root)
    if where == "config.json":
        site.edit_config("SqlSettings", "DriverName", "mysql")
    elif where == "mattermost.env":
        site.set_env(MM_SQLSETTINGS_DRIVERNAME="mysql")
    else:
        # The configuration itself lives in a MySQL database (upstream's MM_CONFIG DSN).
        site.set_env(MM_CONFIG=MYSQL_CONFIG_DSN)
    config_bytes = pm.root.path(CONFIG).read_bytes()

    error = pm.install(pm.build("11.0.0")).refused()

    assert "MySQL" in error
    assert "11.0.0" in error
    assert pm.version() == "10.11.1"
    assert pm.root.read_text(VERSION_FILE).strip() == "10.11.1"
    assert binary_version(pm.root) == "10.11.1"
    assert pm.root.path(CONFIG).read_bytes() == config_bytes
    assert not has_pending(pm.root)

    # The same upgrade on PostgreSQL goes through: the refusal was about MySQL alone.
    if where == "config.json":
        site.edit_config("SqlSettings", "DriverName", "postgres")
    else:
        unset_env(pm.root, "MM_SQLSETTINGS_DRIVERNAME", "MM_CONFIG")
    pm.install(pm.build("11.0.0")).ok()
    assert pm.version() == "11.0.0"


# ---- what the new release refuses at start: refused before the server stops ----------------------


def test_a_setting_the_new_release_refuses_is_refused_before_anything_changes(pm: Manager) -> None:
    """11.0 will not start with ExperimentalViewArchivedChannels=false. Without the guard the
    upgrade would stop the server, unpack 11.0 and fail in `db migrate`, which the sample server
    refuses as upstream's does."""
    pm.install(pm.build("10.11.1")).ok()
    site = Site(pm.root)
    site.create_database()
    site.edit_config("TeamSettings", "ExperimentalViewArchivedChannels", False)
    config_bytes = pm.root.path(CONFIG).read_bytes()

    error = pm.install(pm.build("11.0.0")).refused()

    assert error == (
        "mattermost: error: Mattermost 11.0.0 will not start with TeamSettings.ExperimentalViewArchivedChannels=false, "
        f'set by {CONFIG} (upstream: "{ARCHIVED.upstream}"): set it to true there, or remove it, then try again; '
        "nothing was changed"
    )
    assert pm.version() == "10.11.1" and binary_version(pm.root) == "10.11.1"
    assert pm.root.path(CONFIG).read_bytes() == config_bytes
    assert not has_pending(pm.root) and snapshots(pm.root) == []
    # An override of the administrator's wins over config.json: the upgrade goes through, and the
    # new server starts on what it merged.
    site.add_override("60-archived.json", {"TeamSettings": {"ExperimentalViewArchivedChannels": True}})
    pm.install(pm.build("11.0.0")).ok()
    assert pm.root.read_json(CONFIG)["TeamSettings"]["ExperimentalViewArchivedChannels"] is True
    with site.serve() as url:
        assert site.ping_version(url) == "11.0.0"


def test_the_database_servers_postgresql_is_asked_before_anything_changes(
    pm: Manager, postgres: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The guard asks the real PostgreSQL 15, as the service user, through the server's
    DataSource, when the new release wants a newer one than the installed. Every release is
    content with 15: the refusal is shown with 11.0.0 built from a table that wants 16 of it
    (the sample server, upstream's stand-in, still takes 15). The real refusal, of 13, is the
    next test's."""
    db = postgres.new_database()
    pm.install(pm.build("10.11.1")).ok()
    site = Site(pm.root)
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn())
    with site.serve():
        pass
    wants_16 = dataclasses.replace(
        START_REFUSALS,
        postgres=(
            *START_REFUSALS.postgres,
            MinimumPostgres(V("11.0.0"), 160000, "no release yet: the test's"),
        ),
    )
    monkeypatch.setitem(environment().globals, "start_refusals", wants_16)
    built = build(
        pm.packages.tarball("11.0.0"), BuildOptions(maintainer=MAINTAINER, out=tmp_path / "wants-16")
    )
    monkeypatch.undo()
    by_format = {p.id.format: p.path for p in built}

    error = pm.install(Built(deb=by_format[PackageFormat.DEB], rpm=by_format[PackageFormat.RPM])).refused()

    real = int(db.query("SHOW server_version_num")[0])
    assert error == (
        f"mattermost: error: refusing to upgrade to 11.0.0: the database server at 127.0.0.1:{postgres.port} runs "
        f"PostgreSQL {real // 10000}.{real % 10000}, and Mattermost 11.0.0 will not start on PostgreSQL older than 16 "
        '(upstream: "minimum Postgres version requirements not met"). Upgrade PostgreSQL first, then try again; '
        "nothing was changed"
    )
    assert db.password not in error
    assert pm.version() == "10.11.1" and not has_pending(pm.root) and snapshots(pm.root) == []
    assert int(db.query("SELECT max(version) FROM db_migrations")[0]) == schema("10.11.1")
    # The real 11.0.0 wants 14: asked the same way, the server passes, without a word.
    result = pm.install(pm.build("11.0.0")).ok()
    assert not ERROR_LINE.findall(result.output) and not WARNING_LINE.findall(result.output), result.output
    assert int(db.query("SELECT max(version) FROM db_migrations")[0]) == schema("11.0.0")


def test_an_upgrade_to_11_is_refused_on_debian_11s_postgresql_13(
    pm: Manager, postgres_of: Callable[[int], PgServer]
) -> None:
    """Debian 11's real PostgreSQL 13: the upgrade to 10.11 (which wants 13) asks it and goes
    on; the upgrade to 11.0 (which wants 14) asks it and is refused before anything changes,
    where the server itself would have refused to start after the old one was replaced."""
    postgres = postgres_of(13)
    db = postgres.new_database()
    pm.install(pm.build("10.5.2")).ok()
    site = Site(pm.root)
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn())
    with site.serve():
        pass
    result = pm.install(pm.build("10.11.1")).ok()
    assert not ERROR_LINE.findall(result.output) and not WARNING_LINE.findall(result.output), result.output
    assert int(db.query("SELECT max(version) FROM db_migrations")[0]) == schema("10.11.1")
    with site.serve():
        pass
    kept = snapshots(pm.root)  # the 10.11 upgrade's

    error = pm.install(pm.build("11.0.0")).refused()

    real = postgres.server_version_num()
    assert real // 10000 == 13
    assert error == (
        f"mattermost: error: refusing to upgrade to 11.0.0: the database server at 127.0.0.1:{postgres.port} runs "
        f"PostgreSQL 13.{real % 10000}, and Mattermost 11.0.0 will not start on PostgreSQL older than 14 "
        '(upstream: "minimum Postgres version requirements not met"). Upgrade PostgreSQL first, then try again; '
        "nothing was changed"
    )
    assert db.password not in error
    assert pm.version() == "10.11.1" and not has_pending(pm.root) and snapshots(pm.root) == kept
    assert int(db.query("SELECT max(version) FROM db_migrations")[0]) == schema("10.11.1")
    assert db.query("SELECT message FROM posts ORDER BY id") == [
        "server 10.5.2 started",
        "server 10.11.1 started",
    ]


UNSUPPORTED = [
    # (installed, refused target, what the message asks for)
    ("5.35.0", "6.0.0", "upgrade to 5.37 (ESR) first"),
    ("7.0.1", "7.2.0", "upgrade to 7.1 (ESR) first"),
    ("10.11.17", "11.7.2", "choose 11.7.3 or later"),
]


@pytest.mark.parametrize(("old", "new", "hint"), UNSUPPORTED, ids=[f"{o}-{n}" for o, n, _ in UNSUPPORTED])
def test_upstream_unsupported_jumps_are_refused_unless_allowed(
    pm: Manager, old: str, new: str, hint: str
) -> None:
    pm.install(pm.build(old)).ok()
    config_bytes = pm.root.path(CONFIG).read_bytes()

    error = pm.install(pm.build(new)).refused()

    assert f"refusing to upgrade from {old} to {new}: " in error and error.endswith(hint)
    assert pm.version() == old
    assert pm.root.read_text(VERSION_FILE).strip() == old
    assert pm.root.path(CONFIG).read_bytes() == config_bytes
    assert not has_pending(pm.root) and snapshots(pm.root) == []

    pm.install(pm.build(new), env={"MMPKG_ALLOW_UNSUPPORTED_UPGRADE": "1"}).ok()
    assert pm.version() == new
    assert pm.root.read_text(VERSION_FILE).strip() == new


@pytest.mark.parametrize(("fmt", "via"), SWITCHES, ids=[f"{f}-{v}" for f, v in SWITCHES])
def test_switching_to_an_older_release_of_the_other_edition_is_refused(
    root: harness.Root, packages: PackageFactory, fmt: str, via: str
) -> None:
    # The new package's checks hold on a switch too: rpm runs its %pre, dpkg its preinst
    # install, before the new files are unpacked.
    pm = manager(fmt, root, packages)
    site = used_site(pm, NEW)
    before = site.state()
    config_bytes = root.path(CONFIG).read_bytes()

    error = pm.switch("mattermost", "mattermost-team", pm.build(OLD, Edition.TEAM), via=via).refused()

    assert f"refusing to downgrade Mattermost from {NEW} to {OLD}" in error
    assert pm.version("mattermost-team") is None
    assert root.path(CONFIG).read_bytes() == config_bytes
    assert not has_pending(root)
    if via == "dpkg":
        # dpkg unwinds its "remove in favour" (postinst abort-remove): the old edition stays.
        assert pm.version("mattermost") == NEW
        assert binary_version(root) == NEW
    else:
        # apt and dnf remove the other edition as a step of its own, before the new package's
        # scripts run; removing keeps everything, and installing it again gives it all back.
        assert pm.version("mattermost") is None
        pm.install(pm.build(NEW)).ok()
        assert pm.version("mattermost") == NEW
    # (Installing again applied the override used_site left waiting, as any install does.)
    assert_nothing_lost(before, site.state(), changed_keys=OVERRIDDEN)
    assert unit_state(root) == "enabled"


@pytest.mark.parametrize(("fmt", "via"), SWITCHES, ids=[f"{f}-{v}" for f, v in SWITCHES])
def test_switching_editions_keeps_a_disabled_unit_disabled(
    root: harness.Root, packages: PackageFactory, fmt: str, via: str
) -> None:
    pm = manager(fmt, root, packages)
    pm.install(pm.build(OLD)).ok()
    root.run("systemctl", "disable", UNIT)  # offline, as systemctl does in a chroot
    assert unit_state(root) == "disabled"

    pm.switch("mattermost", "mattermost-team", pm.build(OLD, Edition.TEAM), via=via).ok()

    assert pm.version("mattermost-team") == OLD
    assert unit_state(root) == "disabled"


def test_missing_jq_is_named_not_mistaken_for_a_broken_config(pm: Manager) -> None:
    pm.install(pm.build(OLD)).ok()
    config_bytes = pm.root.path(CONFIG).read_bytes()
    # Someone removed jq behind the package manager's back (or apt autoremove took it).
    pm.root.run("dpkg", "--remove", "--force-depends", "jq")

    result = pm.install(pm.build(NEW))

    if pm.fmt == "deb":
        # jq is a Pre-Depends: dpkg itself refuses before running any script.
        assert result.returncode != 0
        assert "pre-dependency problem" in result.output or "jq" in result.output, result.output
    else:
        error = result.refused()
        assert (
            error
            == f"mattermost: error: jq is not installed, and the package needs it to read {CONFIG}; install jq and try again"
        )
    assert_still_old(pm, config_bytes)


def test_environment_file_is_read_like_systemd_reads_it(pm: Manager) -> None:
    pm.install(pm.build(OLD)).ok()
    site = Site(pm.root)
    site.create_database()
    # Spaces around the key and '=', quotes, and both kinds of comment: systemd accepts all of
    # them, so the package's migration must reach the database the server will use.
    dsn = "postgres://mmuser:secret@localhost/mattermost_env?sslmode=disable"
    pm.root.write_text(
        ENV_FILE,
        "# the database\n"
        "; MM_SQLSETTINGS_DATASOURCE=postgres://nobody@localhost/commented_out\n"
        f'   MM_SQLSETTINGS_DATASOURCE = "{dsn}"   \n'
        "MM_SERVICESETTINGS_SITEURL=https://chat.example.com\n",
    )

    pm.install(pm.build(NEW)).ok()

    assert int(pm.root.read_json(f"{DB_DIR}/mattermost_env.json")["schema_version"]) == schema(NEW)
    assert not pm.root.exists(f"{DB_DIR}/commented_out.json")


# ---- the configuration in the database (upstream's MM_CONFIG=postgres://...) ------------------


def active_config(db: PgDatabase) -> dict[str, Any]:
    """The configuration the server reads: the active Configurations row (upstream's config store)."""
    loaded: dict[str, Any] = json.loads("\n".join(db.query("SELECT value FROM configurations WHERE active")))
    return loaded


def db_schema(db: PgDatabase) -> int:
    return int(db.query("SELECT coalesce(max(version), 0) FROM db_migrations")[0])


def test_config_in_the_database_is_read_there_and_overrides_say_they_are_not_applied(
    pm: Manager, postgres: PgServer
) -> None:
    db = postgres.new_database()
    pm.install(pm.build(OLD)).ok()
    site = Site(pm.root)
    assert not pm.root.exists(DB_DIR)  # no stand-in: the real database
    site.store_config_in_database(db.dsn(), CONFIG)
    site.set_env(MM_CONFIG=db.dsn())
    with site.serve():
        pass
    assert active_config(db)["SqlSettings"]["DataSource"] == db.dsn() and db_schema(db) == schema(OLD)
    # The config.json the package made is no longer read; here it names a database nobody answers.
    site.edit_config("SqlSettings", "DataSource", db.dsn(port=free_port()))
    config_bytes = pm.root.path(CONFIG).read_bytes()
    site.add_override(*OVERRIDE)

    result = pm.install(pm.build(NEW)).ok()

    # The backup and the migration went to the database the stored configuration names.
    assert (pm.root.path(f"{BACKUPS}/{snapshots(pm.root)[-1]}") / "database/toc.dat").is_file()
    assert db_schema(db) == schema(NEW)
    (warning,) = WARNING_LINE.findall(result.output)
    assert warning == (
        f"mattermost: warning: the configuration is in the database (MM_CONFIG in {ENV_FILE}) and overrides "
        f"apply to config.json only: {OVERRIDES}/{OVERRIDE[0]} not applied; set those settings as MM_* "
        f"variables in {ENV_FILE}, or once with 'mmctl config patch'"
    )
    assert active_config(db)["TeamSettings"]["SiteName"] != OVERRIDE[1]["TeamSettings"]["SiteName"]
    assert pm.root.path(CONFIG).read_bytes() == config_bytes

    asked = Result.of(pm.root.run("mattermost-pkg", "apply-overrides", check=False))
    assert asked.refused() == warning.replace("warning", "error")
    pm.root.run("rm", f"{OVERRIDES}/{OVERRIDE[0]}")
    done = pm.root.run("mattermost-pkg", "apply-overrides").stdout
    assert "there are no overrides to apply" in done


# ---- row 10: adopting a server installed by hand from the tarball ------------------------------


def install_by_hand(
    root: harness.Root,
    packages: PackageFactory,
    version: str,
    *,
    unit_dir: str = "/etc/systemd/system",
    db: PgDatabase | None = None,
) -> Site:
    """upstream's deploy-tar guide, step by step, inside the root, its unit in `unit_dir`; then
    one start by hand. With `db`, the server's database is that real one, its DataSource set in
    config.json as the guide says."""
    tarball = root.copy_in(packages.tarball(version))
    root.run("tar", "-xzf", tarball, "-C", "/opt")
    root.run("useradd", "--system", "--user-group", "mattermost")
    root.run("mkdir", f"{PREFIX}/data")
    root.run("chown", "-R", "mattermost:mattermost", PREFIX)
    root.write_text(f"{unit_dir}/{UNIT}", UPSTREAM_UNIT)
    root.run("systemctl", "enable", UNIT)  # offline: the symlink in multi-user.target.wants
    site = Site(root)
    if db is None:
        site.create_database()
    else:
        config = root.read_json(f"{PREFIX}/config/config.json")
        config["SqlSettings"]["DataSource"] = db.dsn()
        root.path(f"{PREFIX}/config/config.json").write_text(json.dumps(config, indent=2))
    # cwd /opt/mattermost, as mattermost, the port from the environment: Site.serve is exactly
    # that, and with no package yet there is no environment file for it to read.
    with site.serve(env={}) as url:
        assert site.ping_version(url) == version
    script = f"""
        set -e
        cd {PREFIX}
        mkdir -p data/teams/t1/channels/c1 plugins/com.example.handmade client/plugins/com.example.handmade
        printf 'minutes' > data/teams/t1/channels/c1/minutes.txt
        head -c 4096 /dev/urandom > data/teams/t1/channels/c1/photo.jpg
        printf '{{"id": "com.example.handmade", "version": "0.1.0"}}' > plugins/com.example.handmade/plugin.json
        printf 'bundle' > client/plugins/com.example.handmade/main.js
    """
    root.run("runuser", "-u", "mattermost", "--", "sh", "-c", script)
    return site


@pytest.mark.parametrize("unit_dir", sorted(UNIT_PLACES))
def test_adopts_a_tarball_install_made_by_hand(pm: Manager, unit_dir: str) -> None:
    root = pm.root
    site = install_by_hand(root, pm.packages, OLD, unit_dir=unit_dir)
    handmade_config = f"{PREFIX}/config/config.json"
    edited = root.read_json(handmade_config)
    edited["TeamSettings"]["SiteName"] = "Made by hand"  # a System Console save
    root.write_text(handmade_config, json.dumps(edited, indent=4))
    kept = ("data", "plugins", "client/plugins", "logs")
    files = {d: tree_digest(root, f"{PREFIX}/{d}") for d in kept}
    owners = {d: root.stat(f"{PREFIX}/{d}") for d in kept}
    assert edited["FileSettings"]["PublicLinkSalt"] and edited["SqlSettings"]["AtRestEncryptKey"]

    result = pm.install(pm.build(NEW)).ok()

    assert pm.version() == NEW
    # The configuration moved, salts and edits and all; the release's path is the package's link.
    assert root.read_json(CONFIG) == edited
    assert root.stat(f"{PREFIX}/config", follow_symlinks=False).kind == "symlink"
    assert os.readlink(root.path(f"{PREFIX}/config", follow_symlinks=False)) == "/etc/mattermost/config"
    # Data, plugins and logs stay where that configuration points (relative to /opt/mattermost).
    assert edited["FileSettings"]["Directory"] == "./data/"
    for d in kept:
        assert tree_digest(root, f"{PREFIX}/{d}") == files[d], d
        assert root.stat(f"{PREFIX}/{d}") == owners[d], d
    # The hand-made unit neither shadows the package's nor is lost under it: it is kept in the
    # adoption snapshot, and the output says where.
    assert not root.exists(HANDMADE_UNIT, follow_symlinks=False)
    (snapshot,) = snapshots(root)
    assert "_handmade_to_" in snapshot
    saved = f"{BACKUPS}/{snapshot}/{UNIT_PLACES[unit_dir]}"
    assert root.read_text(saved) == UPSTREAM_UNIT
    assert f"mattermost: moved the hand-made {unit_dir}/{UNIT} to {saved}\n" in result.output
    assert root.read_text(f"/lib/systemd/system/{UNIT}") != UPSTREAM_UNIT  # the package's
    assert unit_state(root) == "enabled"
    assert pm.owner(os.readlink(root.path(WANTS, follow_symlinks=False))) == "mattermost"
    assert site.schema() == schema(NEW)
    assert not has_pending(root)

    # The packaged server runs from /opt/mattermost on the adopted configuration and data.
    log = root.path(f"{PREFIX}/logs/mattermost.log")
    log_size = log.stat().st_size
    config_inode = root.path(CONFIG).stat().st_ino
    with site.serve() as url:
        assert site.ping_version(url) == NEW
    assert root.path(CONFIG).stat().st_ino != config_inode  # rewritten by the server on start
    # It added 10.11's new defaults; every setting the hand-made server had keeps its value.
    assert_settings_kept(edited, root.read_json(CONFIG))
    assert f"Current version is {NEW}" in log.read_text()[log_size:]
    for d in ("data", "plugins", "client/plugins"):
        mine = {p: h for p, h in files[d].items() if is_admins(p)}
        assert mine, d
        assert mine.items() <= tree_digest(root, f"{PREFIX}/{d}").items(), d


ENVIRONMENT = f"{PREFIX}/config/mattermost.environment"


def move_config_to_database(site: Site, db: PgDatabase, unit: str, *, proxy: bool = True) -> None:
    """upstream's configuration-in-your-database.rst, after install_by_hand(db=db): the
    environment file config/mattermost.environment with MM_CONFIG (quoted as the guide quotes
    it) and a per-server setting, named by an EnvironmentFile= added above ExecStart; the
    configuration moved into the database; and a proxy for the server, as admins add."""
    root = site.root
    lines = [f"MM_CONFIG='{db.dsn()}'", "MM_SERVICESETTINGS_SITEURL=https://chat.example.com"]
    if proxy:
        lines.append("HTTPS_PROXY=http://proxy.example.com:3128")
    root.write_text(ENVIRONMENT, "\n".join(lines) + "\n")
    root.run("chown", "-R", "mattermost:mattermost", PREFIX)
    site.store_config_in_database(db.dsn(), f"{PREFIX}/config/config.json")
    text = root.read_text(unit).replace("ExecStart=", f"EnvironmentFile={ENVIRONMENT}\nExecStart=", 1)
    root.write_text(unit, text)
    with site.serve(env={"MM_CONFIG": db.dsn()}) as url:
        site.ping_version(url)


@pytest.mark.parametrize("config_json", ["gone", "stale"])
def test_adopts_a_hand_made_install_whose_configuration_is_in_the_database(
    pm: Manager, postgres: PgServer, config_json: str
) -> None:
    root = pm.root
    db = postgres.new_database()
    site = install_by_hand(root, pm.packages, OLD, db=db)
    handmade_config = f"{PREFIX}/config/config.json"
    edited = root.read_json(handmade_config)
    edited["TeamSettings"]["SiteName"] = "Made by hand"  # a System Console save, before the move
    root.write_text(handmade_config, json.dumps(edited, indent=4))
    move_config_to_database(site, db, HANDMADE_UNIT)
    stored = active_config(db)
    assert stored["TeamSettings"]["SiteName"] == "Made by hand" and db_schema(db) == schema(OLD)
    if config_json == "gone":
        root.run("rm", handmade_config)
    else:
        # Left behind by the move, and edited since: nothing reads it, and nothing may.
        edited["SqlSettings"]["DataSource"] = db.dsn(port=free_port())
        root.write_text(handmade_config, json.dumps(edited, indent=4))
    salts = (stored["FileSettings"]["PublicLinkSalt"], stored["SqlSettings"]["AtRestEncryptKey"])

    result = pm.install(pm.build(NEW)).ok()

    assert pm.version() == NEW
    # The unit's environment is the package's: MM_CONFIG and the server's own MM_* settings,
    # in root's file; the proxy is not an MM_* setting, and is named.
    env = root.read_text(ENV_FILE)
    assert f"\nMM_CONFIG={db.dsn()}\nMM_SERVICESETTINGS_SITEURL=https://chat.example.com\n" in env
    assert "HTTPS_PROXY" not in env
    info = root.stat(ENV_FILE)
    assert (info.owner, info.group, info.mode) == ("root", "mattermost", 0o640)
    (warning,) = WARNING_LINE.findall(result.output)
    assert "not carried over from the hand-made server's environment: HTTPS_PROXY" in warning
    assert (
        "mattermost: added the hand-made server's MM_CONFIG, MM_SERVICESETTINGS_SITEURL to "
        f"{ENV_FILE}\n" in result.output
    )
    # The environment file left the server's directory: its copy is in the snapshot.
    (snapshot,) = snapshots(root)
    assert not root.exists(f"{CONFIG_DIR}/mattermost.environment", follow_symlinks=False)
    assert f"MM_CONFIG='{db.dsn()}'" in root.read_text(
        f"{BACKUPS}/{snapshot}/handmade-config/mattermost.environment"
    )
    assert root.exists(CONFIG) == (config_json == "stale")
    # The database the stored configuration names was backed up, then migrated.
    assert root.path(f"{BACKUPS}/{snapshot}/database/toc.dat").is_file()
    assert db_schema(db) == schema(NEW)
    assert db.password not in result.output

    # The packaged server runs on the configuration in the database, salts and edits and all.
    with site.serve() as url:
        assert site.ping_version(url) == NEW
    after = active_config(db)
    assert after["TeamSettings"]["SiteName"] == "Made by hand"
    assert (after["FileSettings"]["PublicLinkSalt"], after["SqlSettings"]["AtRestEncryptKey"]) == salts


def test_an_interrupted_adoption_carries_the_environment_when_it_is_finished(
    pm: Manager, postgres: PgServer
) -> None:
    """Stopped between unpacking and configuring: what finishes it adds the hand-made
    environment, once. Started by systemd first, the unit's own resume adds it and stops that
    start, which read the environment file before: the next start has it."""
    root = pm.root
    db = postgres.new_database()
    site = install_by_hand(root, pm.packages, OLD, db=db)
    move_config_to_database(site, db, HANDMADE_UNIT, proxy=False)
    root.run("rm", f"{PREFIX}/config/config.json")

    pm.interrupt_upgrade(pm.build(NEW)).ok()

    from_unit = Result.of(root.run("mattermost-pkg", "resume", "--from-unit", check=False))
    if pm.fmt == "deb":
        # dpkg puts the conffile in place when it configures: nothing may stand in for it.
        assert not root.exists(ENV_FILE)
        assert from_unit.refused() == (
            f"mattermost: error: {ENV_FILE} is not in place yet, so the hand-made server's environment "
            "cannot go into it; finish the installation with dpkg --configure -a"
        )
    else:
        assert from_unit.refused() == (
            f"mattermost: error: the server's environment changed ({ENV_FILE}); start {UNIT} again to start it with that"
        )
    pm.finish().ok()
    assert pm.version() == NEW and not has_pending(root)
    assert root.read_text(ENV_FILE).count(f"MM_CONFIG={db.dsn()}\n") == 1
    assert db_schema(db) == schema(NEW)
    with site.serve() as url:
        assert site.ping_version(url) == NEW


@pytest.mark.parametrize("unit_dir", sorted(UNIT_PLACES))
def test_adoption_is_undone_when_dpkg_cannot_unpack(
    root: harness.Root, packages: PackageFactory, tmp_path: Path, unit_dir: str
) -> None:
    deb = manager("deb", root, packages)
    site = install_by_hand(root, packages, OLD, unit_dir=unit_dir)
    handmade_config = f"{PREFIX}/config/config.json"
    config_bytes = root.path(handmade_config).read_bytes()
    # Another package already owns a file of ours: dpkg refuses it while unpacking, after
    # preinst has adopted the hand-made installation, and unwinds with postrm abort-install.
    tree = tmp_path / "squatter"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: squatter\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.com>\nDescription: x\n"
    )
    (tree / "usr/sbin").mkdir(parents=True)
    (tree / "usr/sbin/mattermost-pkg").write_text("#!/bin/sh\n")
    harness.run_host(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(tmp_path / "squatter.deb")])
    root.run("dpkg", "-i", root.copy_in(tmp_path / "squatter.deb"))

    result = Result.of(root.run("dpkg", "-i", root.copy_in(deb.build(NEW).deb), check=False))

    assert result.returncode != 0
    assert "trying to overwrite '/usr/sbin/mattermost-pkg'" in result.output
    assert "the hand-made installation in /opt/mattermost is back as it was" in result.output
    assert deb.version() is None
    assert root.stat(f"{PREFIX}/config", follow_symlinks=False).kind == "dir"
    assert root.path(handmade_config).read_bytes() == config_bytes
    assert not root.exists("/etc/mattermost")
    assert root.read_text(f"{unit_dir}/{UNIT}") == UPSTREAM_UNIT
    assert f"mattermost: put the hand-made {unit_dir}/{UNIT} back" in result.output
    assert unit_state(root) == "enabled"
    assert not has_pending(root)
    assert binary_version(root) == OLD
    with site.serve() as url:
        assert site.ping_version(url) == OLD


def test_adoption_of_a_newer_hand_made_install_is_refused(pm: Manager) -> None:
    root = pm.root
    install_by_hand(root, pm.packages, NEW)
    handmade_config = f"{PREFIX}/config/config.json"
    config_bytes = root.path(handmade_config).read_bytes()

    error = pm.install(pm.build(OLD)).refused()

    # The version came from the hand-made binary's own `version` (it has `db migrate`: 6.5 or
    # later, so it touches nothing): no package is installed.
    assert f"refusing to downgrade Mattermost from {NEW} to {OLD}" in error
    assert pm.version() is None
    assert binary_version(root) == NEW
    assert root.path(handmade_config).read_bytes() == config_bytes
    assert root.stat(f"{PREFIX}/config", follow_symlinks=False).kind == "dir"
    assert not root.exists(CONFIG)
    assert root.read_text(HANDMADE_UNIT) == UPSTREAM_UNIT
    assert unit_state(root) == "enabled"
    assert not has_pending(root) and snapshots(root) == []


# ---- row 11: an upgrade interrupted between unpacking and configuring --------------------------


def test_interrupted_upgrade_is_completed(pm: Manager) -> None:
    site = used_site(pm)
    before = site.state()

    pm.interrupt_upgrade(pm.build(NEW)).ok()

    if pm.fmt == "deb":
        assert pm.root.dpkg_status("mattermost") == "install ok unpacked"
    else:
        assert pm.version() == NEW
    assert has_pending(pm.root)
    assert site.schema() == schema(OLD)
    status = pm.root.run("mattermost-pkg", "status", check=False)
    assert f"pending:        an upgrade to {NEW} is not finished" in status.stdout
    # Something to act on, for a monitoring check too.
    assert status.returncode == 1
    assert "mattermost: warning: an upgrade to" in status.stderr

    pm.finish().ok()

    assert pm.version() == NEW
    assert site.schema() == schema(NEW)
    assert not has_pending(pm.root)
    after = site.state()
    assert_nothing_lost(before, after, changed_keys=OVERRIDDEN)
    assert after.config["TeamSettings"]["SiteName"] == OVERRIDE[1]["TeamSettings"]["SiteName"]
    assert_remembers(pm, NEW)


# ---- row 12: switching editions ----------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "via"), SWITCHES, ids=[f"{f}-{v}" for f, v in SWITCHES])
def test_switching_editions_keeps_config_data_and_unit(
    root: harness.Root, packages: PackageFactory, fmt: str, via: str
) -> None:
    pm = manager(fmt, root, packages)
    site = used_site(pm)
    before = site.state()

    pm.switch("mattermost", "mattermost-team", pm.build(OLD, Edition.TEAM), via=via).ok()

    assert pm.version("mattermost-team") == OLD
    assert pm.version("mattermost") is None
    assert_nothing_lost(before, site.state(), changed_keys=OVERRIDDEN)
    assert unit_state(root) == "enabled"
    assert not has_pending(root)
    with site.serve() as url:
        assert site.ping_version(url) == OLD
    assert_admin_files_kept(before, site.state())

    if pm.fmt == "deb":
        # The old edition's configuration record is left; purging it must spare the live one.
        config_bytes = root.path(CONFIG).read_bytes()
        Result.of(root.run("dpkg", "--purge", "mattermost", check=False)).ok()
        assert root.dpkg_status("mattermost") == "not-installed"
        assert root.path(CONFIG).read_bytes() == config_bytes
        assert root.exists(ENV_FILE)
        assert unit_state(root) == "enabled"
        assert pm.version("mattermost-team") == OLD

    middle = site.state()
    pm.switch("mattermost-team", "mattermost", pm.build(OLD), via=via).ok()

    assert pm.version("mattermost") == OLD
    assert pm.version("mattermost-team") is None
    assert_nothing_lost(middle, site.state())
    assert unit_state(root) == "enabled"
    assert not has_pending(root)
