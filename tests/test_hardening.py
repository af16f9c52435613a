"""The lifecycle fails closed: a full disk, an unreadable version, bad settings, a refused login
and a service user that swaps names under root, each with real dpkg/apt and rpm/dnf in a
throw-away root (the same `Manager` adapter as tests/test_lifecycle.py, one scenario for both).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.scenario import BACKUPS, CONFIG, Site, assert_nothing_lost
from tests.test_hostile import legacy_layout
from tests.test_lifecycle import (
    MANAGERS,
    MIGRATE_LOG,
    NEW,
    OLD,
    OVERRIDDEN,
    VERSION_FILE,
    Manager,
    has_pending,
    manager,
    schema,
    snapshots,
    unset_env,
    used_site,
)

pytestmark = pytest.mark.install

PACKAGE_CONF = "/etc/mattermost/package.conf"
MIDDLE = "10.6.0"


@pytest.fixture(params=sorted(MANAGERS))
def pm(request: pytest.FixtureRequest, root: harness.Root, packages: PackageFactory) -> Manager:
    return manager(str(request.param), root, packages)


@contextmanager
def small_filesystem(root: harness.Root, path: str, kib: int) -> Iterator[None]:
    """A `kib` KiB tmpfs over `path` in the root, holding what was there (and nothing more can
    fit once `fill` has run)."""
    host = root.path(path)
    saved = subprocess.run(["tar", "-C", str(host), "-cf", "-", "."], capture_output=True, check=True).stdout
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0700", "tmpfs", str(host)], check=True)
    try:
        subprocess.run(["tar", "-C", str(host), "-xf", "-"], input=saved, check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(host)], check=True)


def fill(root: harness.Root, path: str) -> None:
    """Use up the file system at `path`: dd stops at ENOSPC."""
    subprocess.run(["dd", "if=/dev/zero", f"of={root.path(path)}/filler", "bs=4k"], capture_output=True)


def test_full_backup_filesystem_refuses_before_anything_changes(pm: Manager) -> None:
    site = used_site(pm)
    before = site.state()
    kept = snapshots(pm.root)
    with small_filesystem(pm.root, BACKUPS, 256):
        fill(pm.root, BACKUPS)
        error = pm.install(pm.build(NEW)).one_error()
        assert "not enough space" in error and BACKUPS in error and "KiB" in error
        # Nothing half-written: no pending record, no new snapshot, the old release in place.
        assert not has_pending(pm.root)
        assert snapshots(pm.root) == kept
    assert pm.version() == OLD
    assert site.schema() == schema(OLD)
    assert_nothing_lost(before, site.state())
    # With room again, the same upgrade goes through.
    pm.install(pm.build(NEW)).ok()
    assert pm.version() == NEW
    assert site.schema() == schema(NEW)


def test_unreadable_installed_version_refuses_the_upgrade(pm: Manager) -> None:
    site = used_site(pm)
    before = site.state()
    pm.root.write_text(VERSION_FILE, "\n")
    error = pm.install(pm.build(NEW)).one_error()
    assert "cannot read the installed version" in error
    assert "MMPKG_ALLOW_UNSUPPORTED_UPGRADE=1" in error
    assert pm.version() == OLD
    assert not has_pending(pm.root)
    assert_nothing_lost(before, site.state())
    pm.install(pm.build(NEW), env={"MMPKG_ALLOW_UNSUPPORTED_UPGRADE": "1"}).ok()
    assert pm.version() == NEW


@pytest.mark.parametrize(
    ("name", "value"), [("MMPKG_BACKUP_KEEP", "abc"), ("MMPKG_START_TIMEOUT", "2m")], ids=["keep", "timeout"]
)
def test_bad_setting_refuses_before_anything_changes(pm: Manager, name: str, value: str) -> None:
    site = used_site(pm)
    before = site.state()
    kept = snapshots(pm.root)
    error = pm.install(pm.build(NEW), env={name: value}).one_error()
    assert name in error and repr(value) in error.replace('"', "'")
    assert pm.version() == OLD
    assert snapshots(pm.root) == kept
    assert not has_pending(pm.root)
    assert_nothing_lost(before, site.state())


def test_package_conf_holds_for_upgrades_without_the_environment(pm: Manager) -> None:
    """unattended-upgrades and sudo drop the caller's environment; package.conf is what holds."""
    site = used_site(pm)
    # The package shipped the file, every setting commented out, as a configuration file.
    assert "#MMPKG_BACKUP_KEEP=" in pm.root.read_text(PACKAGE_CONF)
    pm.install(pm.build(MIDDLE)).ok()
    assert len(snapshots(pm.root)) == 1
    pm.root.write_text(PACKAGE_CONF, "MMPKG_BACKUP_KEEP=1\n")
    pm.install(pm.build(NEW)).ok()
    # Only the last upgrade's own snapshot is left, and the administrator's file is kept as it was.
    (snapshot,) = snapshots(pm.root)
    assert f"_{MIDDLE}_to_{NEW}" in snapshot
    assert pm.root.read_text(PACKAGE_CONF) == "MMPKG_BACKUP_KEEP=1\n"
    assert site.schema() == schema(NEW)


def test_refused_login_is_a_failed_migration_not_an_unreachable_database(pm: Manager) -> None:
    site = used_site(pm)
    site.set_env(MMPKG_SAMPLE_DB_AUTH_FAIL="1", MMPKG_SAMPLE_DB_RETRY_SECONDS="0")
    before = site.state()

    result = pm.install(pm.build(NEW))

    error = result.one_error()
    assert "migration to" in error and "password authentication failed" in error
    assert "cannot be reached" not in result.output
    assert site.schema() == schema(OLD)
    assert has_pending(pm.root)
    assert_nothing_lost(before, site.state(), changed_keys=OVERRIDDEN)
    unset_env(pm.root, "MMPKG_SAMPLE_DB_AUTH_FAIL")
    pm.finish().ok()
    assert site.schema() == schema(NEW)
    assert not has_pending(pm.root)


def test_service_user_cannot_make_root_write_elsewhere(pm: Manager) -> None:
    """The log directory and /etc/mattermost are the service user's: names it plants there must
    not lead root's writes (the migration log, the new config.json) anywhere else."""
    site = used_site(pm)
    victim = "/root/victim"
    pm.root.write_text(victim, "untouched\n")
    as_service = ["runuser", "-u", "mattermost", "--", "sh", "-c"]
    pm.root.run(*as_service, f"rm -f {MIGRATE_LOG} && ln -s {victim} {MIGRATE_LOG}")
    before = site.state()

    pm.install(pm.build(NEW)).ok()

    assert pm.root.read_text(victim) == "untouched\n"
    assert pm.root.stat(victim).uid == 0
    assert site.schema() == schema(NEW)
    assert_nothing_lost(before, site.state(), changed_keys=OVERRIDDEN)
    # config.json was rewritten by the service user, owner and mode as before.
    info = pm.root.stat(CONFIG)
    assert (info.owner, info.mode) == ("mattermost", 0o600)


def test_symlinked_config_is_refused(pm: Manager) -> None:
    site = used_site(pm)
    secret = "/root/secret.json"
    pm.root.write_text(secret, '{"Secret": {"Key": "root only"}}')
    os.chmod(pm.root.path(secret), 0o600)
    pm.root.run(
        "runuser",
        "-u",
        "mattermost",
        "--",
        "sh",
        "-c",
        f"mv {CONFIG} {CONFIG}.moved && ln -s {secret} {CONFIG}",
    )
    error = pm.install(pm.build(NEW)).one_error()
    assert "is a symlink" in error
    assert pm.version() == OLD
    assert Site(pm.root).schema() == schema(OLD) == site.schema()


def test_planted_environment_file_link_gives_the_service_user_nothing(pm: Manager) -> None:
    """The old scripts chgrp'd and chmod'ed mattermost.env by name on every configure: a link the
    service user put there made root hand it any file. Now the package manager sets them, and
    the directory is root's: a link planted while an older package let the service user write
    it is moved aside before anything reads it."""
    used_site(pm)
    legacy_layout(pm.root)
    victim = "/root/victim"
    pm.root.write_text(victim, "root only\n")
    os.chmod(pm.root.path(victim), 0o600)
    env = "/etc/mattermost/mattermost.env"
    pm.root.run("runuser", "-u", "mattermost", "--", "sh", "-c", f"rm -f {env} && ln -s {victim} {env}")

    pm.install(pm.build(NEW)).ok()

    info = pm.root.stat(victim)
    assert (info.owner, info.group, info.mode) == ("root", "root", 0o600)
