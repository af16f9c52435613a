"""`mattermost-pkg rollback`: after an upgrade, the database from the snapshot's dump, the
configuration from its copy and the old package from the repository, with real PostgreSQL 15
and real apt from a served, signed repository."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmpkg.repo import Repository
from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.pgserver import PG_BIN, PgDatabase, PgServer
from tests.support.repo_client import RepoClient
from tests.support.scenario import BACKUPS, CONFIG, Site
from tests.test_db_backup import db_schema
from tests.test_lifecycle import NEW, OLD, schema, snapshots
from tests.test_repo import KEY, _serve, gnupghome

__all__ = ["gnupghome"]  # the signing key, shared with test_repo.py

pytestmark = pytest.mark.install


def _tables(db: PgDatabase) -> list[str]:
    return db.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    )


def _columns(db: PgDatabase) -> list[str]:
    return db.query(
        "SELECT table_name || '.' || column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY 1"
    )


@dataclass
class Upgraded:
    """OLD used against a real database, then upgraded to NEW from the served repository."""

    pm: RepoClient
    site: Site
    db: PgDatabase
    repo: Repository
    url: str
    old_tables: list[str]
    old_columns: list[str]
    old_config: dict[str, object]


@pytest.fixture(params=["deb", "rpm"])
def upgraded(
    request: pytest.FixtureRequest,
    root: harness.Root,
    distro: harness.Distro,
    postgres_of: Callable[[int], PgServer],
    packages: PackageFactory,
    gnupghome: Path,
    tmp_path: Path,
) -> Iterator[Upgraded]:
    pm = RepoClient(root, str(request.param))
    # The distribution's own PostgreSQL: its pg_dump refuses a newer server.
    db = postgres_of(distro.postgresql).new_database()
    repo = Repository(tmp_path / "repo", gnupghome=gnupghome)
    built = [packages.build(v) for v in (OLD, NEW)]
    repo.add([b.deb if pm.fmt == "deb" else b.rpm for b in built], "stable", KEY)
    with _serve(repo.path) as url:
        pm.install_from(repo, url, OLD)
        site = Site(root)
        site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn())
        with site.serve():
            pass  # the server writes its row
        site.edit_config("TeamSettings", "SiteName", "Before the upgrade")
        old = Upgraded(pm, site, db, repo, url, _tables(db), _columns(db), root.read_json(CONFIG))
        pm.install(NEW)
        assert db_schema(db) == schema(NEW) and _columns(db) != old.old_columns
        with site.serve():
            pass  # NEW writes its row too
        site.edit_config("TeamSettings", "SiteName", "After the upgrade")
        yield old


@pytest.mark.generations
def test_rollback_brings_back_the_database_the_configuration_and_the_package(upgraded: Upgraded) -> None:
    pm, db = upgraded.pm, upgraded.db
    root = pm.root
    snapshot = snapshots(root)[-1]
    # A reinstall since makes a snapshot of its own, which is no upgrade's to go back from.
    pm.reinstall()
    assert snapshots(root)[-1] != snapshot
    proc = root.run("mattermost-pkg", "rollback")
    assert (
        proc.stdout.splitlines()[0]
        == f"mattermost: rolling back from {NEW} to {OLD} with {BACKUPS}/{snapshot}"
    )
    assert db.password not in proc.stdout + proc.stderr
    assert pm.installed() == f"{OLD}-1"
    # The schema is the old one, table by table and column by column, and the rows written
    # before the upgrade are there (what NEW wrote after it is not: the database is the dump).
    assert db_schema(db) == schema(OLD)
    assert (_tables(db), _columns(db)) == (upgraded.old_tables, upgraded.old_columns)
    assert db.query("SELECT message FROM posts") == [f"server {OLD} started"]
    # The downgrade dumped nothing again: the database is the kept dump's.
    assert not root.exists(f"{BACKUPS}/{snapshots(root)[-1]}/database")
    assert root.exists(f"{BACKUPS}/{snapshot}/database/toc.dat")
    assert root.read_json(CONFIG)["TeamSettings"]["SiteName"] == "Before the upgrade"
    with upgraded.site.serve() as url:
        assert upgraded.site.ping_version(url) == OLD
    # Rolling back again finds no upgrade to the installed version: the rollback's own
    # downgrade is none.
    again = root.run("mattermost-pkg", "rollback", check=False)
    assert again.returncode == 1
    assert again.stderr == (
        f"mattermost: error: no snapshot in {BACKUPS} of an upgrade to the installed {OLD}; name one of "
        "'mattermost-pkg list-backups' to roll back to it\n"
    )
    assert pm.installed() == f"{OLD}-1"


def test_rollback_refuses_before_changing_anything(upgraded: Upgraded) -> None:
    pm, db = upgraded.pm, upgraded.db
    root = pm.root
    snapshot = root.path(f"{BACKUPS}/{snapshots(root)[-1]}")
    dump = snapshot / "database"  # pg_dump -Fd
    state = snapshot / "state"

    def refused(expected: str) -> None:
        columns = _columns(db)
        proc = root.run("mattermost-pkg", "rollback", check=False)
        assert proc.returncode == 1
        errors = [line for line in proc.stderr.splitlines() if line.startswith("mattermost: error: ")]
        assert len(errors) == 1 and expected in errors[0], proc.stderr
        assert pm.installed() == f"{NEW}-1" and _columns(db) == columns
        assert root.read_json(CONFIG)["TeamSettings"]["SiteName"] == "After the upgrade"

    # The old version is no longer offered by any repository.
    upgraded.repo.remove("mattermost", f"{OLD}-1", "stable", KEY)
    pm.refresh()
    refused(f"no configured repository offers mattermost {OLD}")
    # A dump whose pg_dump never finished: the state does not say it is complete.
    good_state = state.read_text()
    assert "dump=complete\n" in good_state
    state.write_text(good_state.replace("dump=complete\n", ""))
    refused("is incomplete (the upgrade that made it was interrupted while dumping)")
    state.write_text(good_state)
    # A dump directory still the service user's: never taken back after pg_dump.
    inside = f"{BACKUPS}/{snapshots(root)[-1]}/database"
    root.run("chown", "mattermost", inside)
    refused(f"{inside} is not root's (the dump was interrupted)")
    root.run("chown", "root", inside)
    # A dump pg_restore cannot read.
    toc = dump / "toc.dat"
    good = toc.read_bytes()
    toc.write_bytes(good[: len(good) // 2])
    refused("cannot read the database dump")
    # No dump at all.
    shutil.rmtree(dump)
    refused("has no database dump")


def test_rollback_restores_an_older_package_s_single_file_dump(upgraded: Upgraded) -> None:
    """Snapshots taken by an older package hold one pg_dump -Fc file, database.dump, where the
    package now writes a directory: a rollback to one of them restores it, in one transaction."""
    pm, db = upgraded.pm, upgraded.db
    root = pm.root
    snapshot = root.path(f"{BACKUPS}/{snapshots(root)[-1]}")
    # The same dump as one file, made on the host through a copy of the database it holds.
    copy = db.server.new_database("legacy")
    host = ["-h", "127.0.0.1", "-p", str(db.server.port), "-U", copy.user, "--no-password"]
    env = harness.host_env({"PGPASSWORD": copy.password})
    harness.run_host(
        [PG_BIN / "pg_restore", *host, "--no-owner", "-d", copy.name, snapshot / "database"], env=env
    )
    harness.run_host([PG_BIN / "pg_dump", *host, "-Fc", "-f", snapshot / "database.dump", copy.name], env=env)
    shutil.rmtree(snapshot / "database")
    state = snapshot / "state"
    state.write_text(state.read_text().replace("dump=complete\n", ""))

    proc = root.run("mattermost-pkg", "rollback")

    assert f"restoring the database {db.name} from {BACKUPS}/{snapshot.name}/database.dump\n" in proc.stdout
    assert pm.installed() == f"{OLD}-1"
    assert db_schema(db) == schema(OLD)
    assert (_tables(db), _columns(db)) == (upgraded.old_tables, upgraded.old_columns)
    assert db.query("SELECT message FROM posts") == [f"server {OLD} started"]
