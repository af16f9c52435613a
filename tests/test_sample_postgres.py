"""The sample server's bin/mattermost against a real PostgreSQL: schema, rows, errors, knobs, on
each PostgreSQL Debian ships (13, 15, 17) that the releases under test start on."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmpkg.mattermost.start_refusals import TABLE
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release
from tests.support.pgserver import MAJORS, PgDatabase, PgServer, _free_port
from tests.test_sample import Install, get, running_server, stop

V1 = "10.5.2"
V2 = "10.6.0"
# The last release line that starts on PostgreSQL 13, and the first that wants 14.
LAST_ON_13 = "10.11.1"
V11 = "11.0.0"


def starts_on(version: str, major: int) -> bool:
    row = TABLE.minimum_postgres(MattermostVersion.parse(version))
    return row is None or major >= row.major


@dataclass
class PgInstall(Install):
    """An extracted release whose DataSource is a real database; no stand-in directory."""

    dsn: str = ""

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # A database that cannot be reached fails at once, not after 18 attempts 2 s apart.
        no_wait = {"MMPKG_SAMPLE_DB_RETRY_SECONDS": "0"}
        source = {"MM_SQLSETTINGS_DATASOURCE": self.dsn} if self.dsn else {}
        return {"PATH": os.environ["PATH"], **source, **no_wait, **(extra or {})}


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("releases")
    return {v: write_sample_release(MattermostVersion.parse(v), dest=dest) for v in (V1, V2, LAST_ON_13, V11)}


@pytest.fixture(params=MAJORS, ids=lambda major: f"pg{major}")
def db(request: pytest.FixtureRequest, postgres_of: Callable[[int], PgServer]) -> PgDatabase:
    """A new database on PostgreSQL 13, 15 and 17 in turn: V1 wants 11 and V2 13, so both
    start on all three."""
    major: int = request.param
    assert starts_on(V1, major) and starts_on(V2, major)
    return postgres_of(major).new_database()


def extract(tarball: Path, into: Path, dsn: str) -> PgInstall:
    into.mkdir()
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    return PgInstall(into / "mattermost", into / "no-stand-in", dsn=dsn)


def tables(db: PgDatabase) -> set[str]:
    return set(db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))


def test_migrations_live_in_the_database(tarballs: dict[str, Path], db: PgDatabase, tmp_path: Path) -> None:
    v1 = extract(tarballs[V1], tmp_path / "v1", db.dsn())
    first = v1.run("db", "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "Database successfully migrated"
    assert db.query("SELECT version, name FROM db_migrations") == ["100502|sample_100502"]
    assert {"db_migrations", "systems", "posts"} <= tables(db)
    assert v1.run("db", "migrate").stdout.strip() == "No migrations to apply."
    assert v1.run("db", "version").stdout == "Current database schema version is: 100502\n"

    with running_server(v1) as (proc, port):
        assert get(f"http://127.0.0.1:{port}/api/v4/system/ping")[0] == 200
        stop(proc)
    assert db.query("SELECT message FROM posts") == ["server 10.5.2 started"]

    v2 = extract(tarballs[V2], tmp_path / "v2", db.dsn())
    assert v2.run("db", "migrate").returncode == 0
    assert v2.run("db", "version", "--all").stdout == (
        "Varsion: 100502, Name: sample_100502\nVarsion: 100600, Name: sample_100600\n"
    )
    columns = db.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'")
    assert {"since_100502", "since_100600"} <= set(columns)
    assert db.query("SELECT message FROM posts") == ["server 10.5.2 started"]
    assert db.query("SELECT value FROM systems WHERE name = 'Version'") == ["10.6.0"]


@pytest.mark.parametrize("major", [m for m in MAJORS if starts_on(V11, m)], ids=lambda m: f"pg{m}")
def test_an_11_release_takes_over_from_10_11(
    tarballs: dict[str, Path], postgres_of: Callable[[int], PgServer], major: int, tmp_path: Path
) -> None:
    """11.0 wants PostgreSQL 14: on Debian 12's 15 and Debian 13's 17 it migrates what 10.11
    left and starts (its refusal of 13 is in tests/test_start_refusals.py)."""
    db = postgres_of(major).new_database()
    old = extract(tarballs[LAST_ON_13], tmp_path / "old", db.dsn())
    with running_server(old) as (proc, _port):
        stop(proc)
    new = extract(tarballs[V11], tmp_path / "new", db.dsn())
    migrate = new.run("db", "migrate")
    assert (migrate.returncode, migrate.stdout.strip()) == (0, "Database successfully migrated"), (
        migrate.stderr
    )
    with running_server(new) as (proc, port):
        assert get(f"http://127.0.0.1:{port}/api/v4/system/ping")[0] == 200
        stop(proc)
    assert db.query("SELECT message FROM posts ORDER BY id") == [
        f"server {LAST_ON_13} started",
        f"server {V11} started",
    ]
    assert db.query("SELECT value FROM systems WHERE name = 'Version'") == [V11]
    assert int(db.query("SHOW server_version_num")[0]) // 10000 == major


def test_a_failing_migration_changes_nothing(
    tarballs: dict[str, Path], db: PgDatabase, tmp_path: Path
) -> None:
    v1 = extract(tarballs[V1], tmp_path / "v1", db.dsn())
    proc = v1.run("db", "migrate", env={"MMPKG_SAMPLE_MIGRATION_FAIL": "1"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "Error: failed to apply database migrations: migration sample_100502 failed: "
        "ERROR: simulated failure (SQLSTATE XX000)"
    )
    assert tables(db) == set()  # the transaction took its tables with it


def test_unreachable_and_refused(tarballs: dict[str, Path], db: PgDatabase, tmp_path: Path) -> None:
    closed = _free_port()
    v1 = extract(tarballs[V1], tmp_path / "v1", db.dsn(port=closed))
    down = v1.run("db", "migrate")
    assert (down.returncode, down.stderr.splitlines()[-1]) == (
        1,
        f"Error: failed to ping DB: dial tcp 127.0.0.1:{closed}: connect: connection refused",
    )
    v1.dsn = db.dsn(password="wrong")
    wrong = v1.run("db", "migrate")
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[-1] == (
        f'Error: failed to ping DB: pq: password authentication failed for user "{db.user}"'
    )
    v1.dsn = db.dsn()
    knob = v1.run("db", "migrate", env={"MMPKG_SAMPLE_DB_UNREACHABLE": "1"})
    assert knob.returncode == 1 and "connect: connection refused" in knob.stderr
    assert tables(db) == set()


def test_config_in_the_database(tarballs: dict[str, Path], db: PgDatabase, tmp_path: Path) -> None:
    v1 = extract(tarballs[V1], tmp_path / "v1", db.dsn())
    init = v1.run("db", "init", "--config", db.dsn())
    assert init.returncode == 0, init.stderr
    stored = active_config(db)
    assert len(json.loads(stored)["FileSettings"]["PublicLinkSalt"]) == 32
    assert db.query("SELECT count(*) FROM db_migrations") == ["1"]


def active_config(db: PgDatabase) -> str:
    """The active row's Value: upstream stores it indented, one setting a line."""
    return "\n".join(db.query("SELECT value FROM configurations WHERE active"))


def test_config_in_the_database_is_stored_as_upstream_stores_it(
    tarballs: dict[str, Path], db: PgDatabase, tmp_path: Path
) -> None:
    """MM_CONFIG=postgres://... alone: upstream's config store tables (server/config/migrations,
    recorded in db_config_migrations), an empty store whose DataSource is the DSN itself, and
    a row written only when the configuration changes (DatabaseStore.persist's SHA-256)."""
    v1 = extract(tarballs[V1], tmp_path / "v1", "")
    env = {"MM_CONFIG": db.dsn()}
    with running_server(v1, env) as (proc, _port):
        stop(proc)
    assert db.query("SELECT version, name FROM db_config_migrations ORDER BY version") == [
        "1|create_configurations",
        "2|create_configuration_files",
        "3|update_configurations_sha",
    ]
    assert {"configurations", "configurationfiles", "db_migrations", "posts"} <= tables(db)
    value = active_config(db)
    stored = json.loads(value)
    assert stored["SqlSettings"]["DataSource"] == db.dsn()
    assert value.startswith('{\n    "ServiceSettings"')  # marshalConfig: a 4-space indent
    assert db.query("SELECT sha FROM configurations WHERE active") == [
        hashlib.sha256(value.encode()).hexdigest()
    ]
    assert db.query("SELECT message FROM posts") == ["server 10.5.2 started"]
    assert v1.run("db", "migrate", env=env).stdout.strip() == "No migrations to apply."

    # The same configuration again: no new row. A change: a new active row, the old one kept.
    with running_server(v1, env) as (proc, _port):
        stop(proc)
    assert db.query("SELECT count(*) FROM configurations") == ["1"]
    with running_server(v1, {**env, "MM_SERVICESETTINGS_SITEURL": "https://chat.example.com"}) as (proc, _):
        stop(proc)
    assert db.query("SELECT count(*) FROM configurations") == ["1"]  # env overrides are not stored
    v2 = extract(tarballs[V2], tmp_path / "v2", "")
    with running_server(v2, env) as (proc, _port):
        stop(proc)
    assert db.query("SELECT count(*), count(active) FROM configurations") == ["2|1"]
    newer = active_config(db)
    assert json.loads(newer)["FileSettings"]["PublicLinkSalt"] == stored["FileSettings"]["PublicLinkSalt"]
