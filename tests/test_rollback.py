"""`mattermost-pkg rollback`: after an upgrade, the database from the snapshot's dump, the
configuration from its copy and the old package from the repository, with real PostgreSQL 15
and real apt from a served, signed repository."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmpkg.repo import Repository
from mmpkg.repo.clients import ClientFormat, client_config
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


@contextlib.contextmanager
def _upgraded(
    fmt: str, root: harness.Root, db: PgDatabase, packages: PackageFactory, gnupghome: Path, tmp_path: Path
) -> Iterator[Upgraded]:
    """OLD installed from a served repository and used, then NEW from it and used."""
    pm = RepoClient(root, fmt)
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


@pytest.fixture(params=["deb", "rpm"])
def upgraded(
    request: pytest.FixtureRequest,
    distro: harness.Distro,
    postgres_of: Callable[[int], PgServer],
    packages: PackageFactory,
    gnupghome: Path,
    tmp_path: Path,
) -> Iterator[Upgraded]:
    # The distribution's own PostgreSQL: its pg_dump refuses a newer server.
    db = postgres_of(distro.postgresql).new_database()
    # A root with dnf's versionlock, where the distribution has it, for the rollback's hold.
    lower = harness.pristine_root(
        suite=distro.suite, packages=(*harness.PRISTINE_PACKAGES, *harness.VERSIONLOCK_PACKAGES)
    )
    with (
        harness.Root(lower, name=f"rollback-{request.param}", distro=distro) as rollback_root,
        _upgraded(str(request.param), rollback_root, db, packages, gnupghome, tmp_path) as old,
    ):
        yield old


@pytest.mark.generations
def test_rollback_brings_back_the_database_the_configuration_and_the_package(upgraded: Upgraded) -> None:
    pm, db = upgraded.pm, upgraded.db
    root = pm.root
    snapshot = snapshots(root)[-1]
    # A reinstall since makes a snapshot of its own, which is no upgrade's to go back from.
    pm.reinstall()
    assert snapshots(root)[-1] != snapshot
    proc = root.run("mattermost-pkg", "rollback", "--yes")
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
    # Held there, and said so: the next upgrade would otherwise bring NEW straight back.
    if has_hold(root, pm.fmt):
        assert f"mattermost: held mattermost at {OLD}: no upgrade" in proc.stdout
        assert held(root, pm.fmt) == f"{OLD}-1"
    else:
        # Debian 11 has no dnf versionlock, as a RHEL without python3-dnf-plugin-versionlock.
        assert f"mattermost: warning: cannot hold mattermost at {OLD}" in proc.stderr
        assert "install dnf-plugins-core (python3-dnf-plugin-versionlock on RHEL)" in proc.stderr
    # The downgrade dumped nothing again: the database is the kept dump's.
    assert not root.exists(f"{BACKUPS}/{snapshots(root)[-1]}/database")
    assert root.exists(f"{BACKUPS}/{snapshot}/database/toc.dat")
    assert root.read_json(CONFIG)["TeamSettings"]["SiteName"] == "Before the upgrade"
    with upgraded.site.serve() as url:
        assert upgraded.site.ping_version(url) == OLD
    # Rolling back again finds no upgrade to the installed version: the rollback's own
    # downgrade is none.
    again = root.run("mattermost-pkg", "rollback", "--yes", check=False)
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
        proc = root.run("mattermost-pkg", "rollback", "--yes", check=False)
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

    proc = root.run("mattermost-pkg", "rollback", "--yes")

    assert f"restoring the database {db.name} from {BACKUPS}/{snapshot.name}/database.dump\n" in proc.stdout
    assert pm.installed() == f"{OLD}-1"
    assert db_schema(db) == schema(OLD)
    assert (_tables(db), _columns(db)) == (upgraded.old_tables, upgraded.old_columns)
    assert db.query("SELECT message FROM posts") == [f"server {OLD} started"]


def has_hold(root: harness.Root, fmt: str) -> bool:
    return fmt == "deb" or root.exists("/usr/lib/python3/dist-packages/dnf-plugins/versionlock.py")


def held(root: harness.Root, fmt: str) -> str | None:
    """The version the package manager itself holds mattermost at: dpkg's selection, or dnf's
    versionlock list."""
    if fmt == "deb":
        if root.run("apt-mark", "showhold", "mattermost").stdout.strip() != "mattermost":
            return None
        return root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout
    found = re.findall(
        r"^mattermost-\d+:(\S+)\.\*$", root.read_text("/etc/dnf/plugins/versionlock.list"), re.M
    )
    return found[-1] if found else None


def test_rollback_asks_before_it_discards_what_was_written_since_the_dump(upgraded: Upgraded) -> None:
    root = upgraded.pm.root
    snapshot = snapshots(root)[-1]
    started = re.search(r"^dump_started=(\S+)$", root.read_text(f"{BACKUPS}/{snapshot}/state"), re.M)
    assert started

    proc = root.run("mattermost-pkg", "rollback", check=False, input="")

    assert proc.returncode == 1
    assert proc.stderr == (
        f"mattermost: error: rolling back discards data: the database goes back to its dump (everything "
        f"written since {started[1]} is lost) and /etc/mattermost to the snapshot's copy. Run "
        "'mattermost-pkg rollback --yes' to go ahead; nothing was changed\n"
    )
    assert upgraded.pm.installed() == f"{NEW}-1" and db_schema(upgraded.db) == schema(NEW)


def test_after_a_rollback_upgrades_leave_the_held_version_until_the_hold_is_released(
    upgraded: Upgraded,
) -> None:
    pm = upgraded.pm
    root = pm.root
    root.run("mattermost-pkg", "rollback", "--yes")
    assert held(root, pm.fmt) == f"{OLD}-1"

    status = root.run("mattermost-pkg", "status", "--json", check=False)
    assert status.returncode == 1
    report = json.loads(status.stdout)
    assert report["held"] == f"{OLD}-1" and any("is held at" in w for w in report["warnings"])
    refused = root.run("mattermost-pkg", "upgrade", check=False)
    assert refused.returncode == 1 and "run 'mattermost-pkg release-hold' first" in refused.stderr
    # The package manager's own upgrade leaves it too.
    if pm.fmt == "deb":
        root.run("apt-get", "upgrade", "-y")
    else:
        root.run("dnf", "upgrade", "-y")
    assert pm.installed() == f"{OLD}-1"

    released = root.run("mattermost-pkg", "release-hold")
    assert (
        released.stdout
        == f"mattermost: released the hold on mattermost {OLD}-1: the next upgrade may install a newer version\n"
    )
    assert held(root, pm.fmt) is None
    assert root.run("mattermost-pkg", "status", "--json", check=False).stdout.count('"held": null') == 1
    root.run("mattermost-pkg", "upgrade")
    assert pm.installed() == f"{NEW}-1"


@pytest.fixture(params=["deb", "rpm"])
def unattended(
    request: pytest.FixtureRequest,
    postgres: PgServer,
    packages: PackageFactory,
    gnupghome: Path,
    tmp_path: Path,
) -> Iterator[Upgraded]:
    """As `upgraded`, in a root that also has Debian's unattended-upgrades (dnf-automatic is
    python3-dnf's dnf.automatic), set up as `client-config --unattended` says."""
    lower = harness.pristine_root(
        packages=(*harness.PRISTINE_PACKAGES, *harness.VERSIONLOCK_PACKAGES, "unattended-upgrades")
    )
    with (
        harness.Root(lower, name=f"unattended-{request.param}") as root,
        _upgraded(str(request.param), root, postgres.new_database(), packages, gnupghome, tmp_path) as old,
    ):
        fmt = ClientFormat.APT if old.pm.fmt == "deb" else ClientFormat.DNF
        for snippet in client_config(old.url, "stable", fmt, unattended=True)[1:]:
            root.write_text(snippet.path, snippet.text)
        yield old


def _unattended_run(root: harness.Root, fmt: str) -> str:
    """One run of the real unattended upgrader: unattended-upgrades, or dnf-automatic (whose
    /usr/bin script Debian leaves out; it is upstream's two lines)."""
    if fmt == "deb":
        proc = root.run("unattended-upgrade", "-v", timeout=900)
    else:
        proc = root.run(
            "python3", "-c", "import sys; from dnf.automatic.main import main; sys.exit(main(sys.argv[1:]))",
            "--installupdates", "/etc/dnf/automatic.conf", timeout=900,
        )  # fmt: skip
    return proc.stdout + proc.stderr


def test_unattended_upgrades_leave_a_held_version_and_take_the_newer_once_released(
    unattended: Upgraded,
) -> None:
    pm = unattended.pm
    root = pm.root
    root.run("mattermost-pkg", "rollback", "--yes")
    assert pm.installed() == f"{OLD}-1"

    said = _unattended_run(root, pm.fmt)
    assert pm.installed() == f"{OLD}-1", said

    root.run("mattermost-pkg", "release-hold")
    said = _unattended_run(root, pm.fmt)
    # The same run installs NEW once nothing holds it back: the hold is what kept it.
    assert pm.installed() == f"{NEW}-1", said
