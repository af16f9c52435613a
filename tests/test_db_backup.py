"""The database snapshot before a migration, with a real PostgreSQL and real dpkg/apt and rpm.

The server in the root keeps its schema and rows in a database of the session's cluster
(tests/support/pgserver.py: the host's 15, and Debian 13's 17 where pg_dump is older than the server)
on the host's loopback, which the root shares; pg_dump in the root is Debian 12's
postgresql-client (15), which the .deb recommends. What the dump holds is read on the host
with PostgreSQL's own tools: pg_restore --list, and a restore into a fresh database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.pgserver import PG_BIN, PgDatabase, PgServer, _free_port
from tests.support.scenario import BACKUPS, ENV_FILE, Site
from tests.test_lifecycle import (
    ERROR_LINE,
    MIGRATE_LOG,
    NEW,
    OLD,
    WARNING_LINE,
    Manager,
    has_pending,
    manager,
    schema,
    snapshots,
    unset_env,
)

pytestmark = pytest.mark.install

DUMP = "database"  # pg_dump -Fd: a directory


@pytest.fixture(params=["deb", "rpm"])
def pm(request: pytest.FixtureRequest, root: harness.Root, packages: PackageFactory) -> Manager:
    return manager(str(request.param), root, packages)


@pytest.fixture
def db(postgres: PgServer) -> PgDatabase:
    return postgres.new_database()


def pg_site(pm: Manager, db: PgDatabase) -> Site:
    """OLD installed, its server run once against `db`: the schema at OLD and a row of its own."""
    pm.install(pm.build(OLD)).ok()
    site = Site(pm.root)
    assert not pm.root.exists("/var/lib/mattermost-sample-db")  # no stand-in: the real database
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn())
    with site.serve():
        pass
    assert db_schema(db) == schema(OLD)
    assert db.query("SELECT message FROM posts") == [f"server {OLD} started"]
    return site


def db_schema(db: PgDatabase) -> int:
    return int(db.query("SELECT coalesce(max(version), 0) FROM db_migrations")[0])


def newest_snapshot(pm: Manager) -> Path:
    return pm.root.path(f"{BACKUPS}/{snapshots(pm.root)[-1]}")


def pg_restore_list(dump: Path) -> str:
    return harness.run_host([PG_BIN / "pg_restore", "--list", dump]).stdout


def test_upgrade_dumps_the_database_before_migrating(pm: Manager, db: PgDatabase, postgres: PgServer) -> None:
    pg_site(pm, db)

    result = pm.install(pm.build(NEW)).ok()

    assert not ERROR_LINE.findall(result.output) and not WARNING_LINE.findall(result.output), result.output
    assert db.password not in result.output
    assert db_schema(db) == schema(NEW)
    assert db.query("SELECT message FROM posts") == [f"server {OLD} started"]
    dump = newest_snapshot(pm) / DUMP
    listing = pg_restore_list(dump)
    assert re.search(r"TABLE public posts ", listing) and re.search(
        r"TABLE DATA public db_migrations ", listing
    )
    assert f"saved the database {db.name} in {BACKUPS}/" in result.output
    assert "read back with pg_restore --list" in pm.root.read_text(MIGRATE_LOG)
    # The dump is the database as it was before the migration: restored, it is at OLD.
    copy = postgres.new_database("restored")
    harness.run_host(
        [PG_BIN / "pg_restore", "--no-owner", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", copy.user,
         "-d", copy.name, dump],
        env=harness.host_env({"PGPASSWORD": copy.password}),
    )  # fmt: skip
    assert db_schema(copy) == schema(OLD)
    assert copy.query("SELECT message FROM posts") == [f"server {OLD} started"]


def test_unreachable_database_warns_or_with_require_refuses(pm: Manager, db: PgDatabase) -> None:
    site = pg_site(pm, db)
    kept = snapshots(pm.root)
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn(port=_free_port()))

    error = pm.install(pm.build(NEW), env={"MMPKG_REQUIRE_DB_BACKUP": "1"}).refused()
    assert "cannot back up the database" in error and "Connection refused" in error
    assert pm.version() == OLD and not has_pending(pm.root) and snapshots(pm.root) == kept

    result = pm.install(pm.build(NEW)).ok()
    warnings = WARNING_LINE.findall(result.output)
    assert any("not backed up" in w and "Connection refused" in w for w in warnings), result.output
    assert any("database cannot be reached" in w for w in warnings), result.output
    assert not (newest_snapshot(pm) / DUMP).exists()
    assert pm.version() == NEW and db_schema(db) == schema(OLD)


def test_failing_migration_against_postgres_keeps_the_dump_and_the_rows(pm: Manager, db: PgDatabase) -> None:
    site = pg_site(pm, db)
    site.set_env(MMPKG_SAMPLE_MIGRATION_FAIL="1")

    result = pm.install(pm.build(NEW))

    error = result.one_error()
    assert "simulated failure" in error
    snapshot = newest_snapshot(pm)
    assert str(snapshot.relative_to(pm.root.dir)) in error.replace(BACKUPS, BACKUPS.lstrip("/"))
    assert "TABLE public posts " in pg_restore_list(snapshot / DUMP)
    assert db_schema(db) == schema(OLD)  # the failed transaction took nothing with it
    assert "since_" + str(schema(NEW)) not in db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'"
    )

    # mattermost-pkg check names the failed migration until a retry succeeds.
    check = pm.root.run("mattermost-pkg", "check", "--json", check=False)
    assert check.returncode == 1
    assert (
        f"the last database migration (to {NEW}) failed; see {MIGRATE_LOG}"
        in json.loads(check.stdout)["warnings"]
    )

    unset_env(pm.root, "MMPKG_SAMPLE_MIGRATION_FAIL")
    pm.finish().ok()
    check = pm.root.run("mattermost-pkg", "check", "--json", check=False)
    assert not any("migration" in w for w in json.loads(check.stdout)["warnings"])
    assert db_schema(db) == schema(NEW)
    assert db.query("SELECT message FROM posts") == [f"server {OLD} started"]


def test_no_room_for_the_dump_refuses_before_anything_changes(pm: Manager, db: PgDatabase) -> None:
    pg_site(pm, db)
    size_kib = int(db.query("SELECT pg_database_size(current_database()) / 1024")[0])
    # Room for the configuration's snapshot, not for a dump of the database as large as it is.
    pm.root.mount_small_fs(BACKUPS, size=f"{size_kib // 2}k")

    error = pm.install(pm.build(NEW)).refused()

    assert "not enough space" in error and BACKUPS in error
    found = re.search(r"the database dump up to (\d+) KiB", error)
    assert found and int(found[1]) >= size_kib - 64, error
    assert pm.version() == OLD and not has_pending(pm.root)
    assert db_schema(db) == schema(OLD)
    # Without the backup the same upgrade goes through, with its warning-free decision recorded.
    pm.install(pm.build(NEW), env={"MMPKG_DB_BACKUP": "0"}).ok()
    assert pm.version() == NEW and db_schema(db) == schema(NEW)
    assert not (newest_snapshot(pm) / DUMP).exists()


def test_a_pg_dump_older_than_the_database_server_refuses_before_anything_changes(
    pm: Manager, postgres_of: Callable[[int], PgServer]
) -> None:
    """A Debian 12 host (pg_dump 15) whose database server is Debian 13's PostgreSQL 17:
    pg_dump will not dump a newer server, so the upgrade stops before anything changes. Without
    the backup, 11.0 migrates and starts on 17."""
    db = postgres_of(17).new_database()
    pm.install(pm.build("10.11.1")).ok()
    site = Site(pm.root)
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn())
    with site.serve():
        pass
    kept = snapshots(pm.root)

    error = pm.install(pm.build("11.0.0")).refused()

    assert error.startswith(
        "mattermost: error: cannot back up the database before upgrading: "
        "pg_dump failed: aborting because of server version mismatch."
    ), error
    assert pm.version() == "10.11.1" and not has_pending(pm.root) and snapshots(pm.root) == kept
    assert db_schema(db) == schema("10.11.1")
    pm.install(pm.build("11.0.0"), env={"MMPKG_DB_BACKUP": "0"}).ok()
    assert pm.version() == "11.0.0" and db_schema(db) == schema("11.0.0")
    with site.serve() as url:
        assert site.ping_version(url) == "11.0.0"
    assert db.query("SELECT message FROM posts ORDER BY id") == [
        "server 10.11.1 started",
        "server 11.0.0 started",
    ]


def test_removed_then_a_newer_version_installed_is_upgraded_as_an_upgrade_is(
    pm: Manager, db: PgDatabase
) -> None:
    """What a removal leaves (the configuration, the environment file the administrator edited,
    the database) and a newer version installed over it: the same guards, snapshot, dump and
    migration as an upgrade, and the administrator's environment file is the one in use (rpm
    saved it as .rpmsave on erase)."""
    site = pg_site(pm, db)
    site.set_env(MM_SERVICESETTINGS_SITEURL="https://chat.example.com")
    env = pm.root.read_text(ENV_FILE)
    kept = snapshots(pm.root)
    pm.remove().ok()
    assert pm.version() is None

    result = pm.install(pm.build(NEW)).ok()

    assert f"found the configuration {OLD} left; installing {NEW} over it as an upgrade" in result.output
    assert pm.version() == NEW and db_schema(db) == schema(NEW), result.output
    assert len(snapshots(pm.root)) == len(kept) + 1
    assert f"{OLD}_to_{NEW}" in snapshots(pm.root)[-1]
    assert "TABLE public posts " in pg_restore_list(newest_snapshot(pm) / DUMP)
    assert f"{NEW} db migrate, exit 0" in pm.root.read_text(MIGRATE_LOG)
    assert pm.root.read_text(ENV_FILE) == env
    assert not pm.root.exists(f"{ENV_FILE}.rpmsave") and not has_pending(pm.root)


def test_removed_then_an_older_version_is_refused_as_a_downgrade_is(pm: Manager, db: PgDatabase) -> None:
    pg_site(pm, db)
    pm.install(pm.build(NEW)).ok()
    pm.remove().ok()

    error = pm.install(pm.build(OLD)).refused()

    assert "downgrade" in error.lower() or "older" in error, error
    assert pm.version() is None and db_schema(db) == schema(NEW)
