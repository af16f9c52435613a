"""mattermost-pkg on an installed server, as an administrator and a monitoring check use it:
status and its exit codes, backups kept apart from the upgrades' snapshots, list-backups,
apply-overrides that only acts when something changes, and override files it will not read.
Real dpkg/apt and rpm/dnf in throw-away roots (tests/test_lifecycle.py's `Manager`).
"""

from __future__ import annotations

import json

import pytest

from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.pgserver import PgServer
from tests.support.scenario import BACKUPS, CONFIG, ENV_FILE, OVERRIDES, STORE, Site
from tests.test_lifecycle import MANAGERS, NEW, OLD, Manager, manager, snapshots, used_site

pytestmark = pytest.mark.install

ADMIN = "mattermost-pkg"


@pytest.fixture(params=sorted(MANAGERS))
def pm(request: pytest.FixtureRequest, root: harness.Root, packages: PackageFactory) -> Manager:
    return manager(str(request.param), root, packages)


def all_snapshots(pm: Manager) -> list[str]:
    return sorted(p.name for p in pm.root.path(BACKUPS).iterdir() if p.is_dir())


def admin(pm: Manager, *args: str) -> tuple[int, str, str]:
    proc = pm.root.run(ADMIN, *args, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_status_json_and_exit_codes(pm: Manager, postgres: PgServer) -> None:
    site = used_site(pm)
    site.set_env(MM_SQLSETTINGS_DATASOURCE=postgres.new_database().dsn())
    code, out, err = admin(pm, "status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert (status["package"], status["version"], status["ok"]) == ("mattermost", OLD, True)
    assert status["configuration"] == {"path": CONFIG, "state": "ok"}
    assert status["overrides"] == [f"{OVERRIDES}/50-admin.json"]
    assert status["pending"] is None and status["warnings"] == []

    # A config.json the server cannot read is something to act on: warned, exit 1.
    pm.root.write_text(CONFIG, "{ not json")
    code, out, err = admin(pm, "status")
    assert code == 1
    assert f"mattermost: warning: {CONFIG} is not a JSON object; the server will not start" in err
    code, out, _ = admin(pm, "status", "--json")
    assert code == 1
    assert json.loads(out)["configuration"]["state"] == "invalid"

    for wrong in (["status", "--jsn"], ["status", "--json", "extra"], ["frobnicate"], []):
        code, _, err = admin(pm, *wrong)
        assert code == 2, wrong
        assert err.startswith("mattermost-pkg: ") and "Usage: mattermost-pkg COMMAND" in err
    code, out, _ = admin(pm, "--version")
    assert (code, out.strip()) == (0, f"mattermost-pkg (mattermost {OLD})")


def test_manual_backups_are_kept_apart_and_listed(pm: Manager) -> None:
    used_site(pm)
    pm.install(pm.build(NEW)).ok()
    (upgrade,) = snapshots(pm.root)
    pm.root.write_text("/etc/mattermost/package.conf", "MMPKG_MANUAL_BACKUP_KEEP=2\n")
    for _ in range(4):
        assert admin(pm, "backup")[0] == 0
    kept = all_snapshots(pm)
    # The upgrade's snapshot, which a rollback needs, and the two newest manual ones.
    assert upgrade in kept and len(kept) == 3
    assert sum("_manual_" in name for name in kept) == 2

    code, out, err = admin(pm, "list-backups", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [b["kind"] for b in listed] == ["manual", "manual", "upgrade"]
    assert all(b["complete"] for b in listed)
    assert (listed[-1]["from"], listed[-1]["to"]) == (OLD, NEW)
    text = admin(pm, "list-backups")[1]
    assert upgrade in text and f"{OLD} -> {NEW}" in text

    # A broken config.json is no backup: refused, nothing added.
    pm.root.write_text(CONFIG, "")
    code, _, err = admin(pm, "backup")
    assert code == 1 and "is empty" in err
    assert all_snapshots(pm) == kept


def test_apply_overrides_only_acts_on_a_change(pm: Manager) -> None:
    site = used_site(pm)
    pm.install(pm.build(NEW)).ok()
    before = pm.root.path(CONFIG).read_bytes()

    code, out, _ = admin(pm, "apply-overrides")
    assert code == 0 and "nothing to do" in out
    assert pm.root.path(CONFIG).read_bytes() == before

    site.add_override("60-name.json", {"TeamSettings": {"SiteName": "Renamed", "MaxUsersPerTeam": 77}})
    code, out, _ = admin(pm, "apply-overrides", "--dry-run")
    assert code == 0
    assert 'TeamSettings.SiteName: "Override from overrides.d" -> "Renamed"' in out
    assert "TeamSettings.MaxUsersPerTeam:" in out and "-> 77" in out
    assert pm.root.path(CONFIG).read_bytes() == before

    code, out, _ = admin(pm, "apply-overrides")
    assert code == 0 and "re-applied the configuration overrides" in out
    assert pm.root.read_json(CONFIG)["TeamSettings"]["SiteName"] == "Renamed"


def test_override_files_not_named_json_are_reported(pm: Manager) -> None:
    site = used_site(pm)
    site.add_override("70-typo.jsn", {"TeamSettings": {"SiteName": "Never applied"}})
    pm.root.write_text(f"{OVERRIDES}/50-admin.json~", "{}")
    result = pm.install(pm.build(NEW)).ok()
    for name in ("70-typo.jsn", "50-admin.json~"):
        assert f"ignoring {OVERRIDES}/{name}: only files named *.json" in result.output, result.output
    assert pm.root.read_json(CONFIG)["TeamSettings"]["SiteName"] != "Never applied"


def test_check_names_what_upstream_s_defaults_leave_unusable_and_configure_sets_it(
    pm: Manager, postgres: PgServer
) -> None:
    """A new install answers its ping with upstream's example database and no SiteURL: check
    says so, and configure sets both where they belong, the database after a login with it."""
    pm.install(pm.build(OLD)).ok()
    code, out, err = admin(pm, "check", "--json")
    assert code == 1, err
    warnings = json.loads(out)["warnings"]
    assert any("still upstream's example (mmuser:mostest@localhost/mattermost_test)" in w for w in warnings)
    assert any(w.startswith("ServiceSettings.SiteURL is empty") for w in warnings), warnings
    code, _, err = admin(pm, "status")
    assert code == 1 and "mattermost: warning: SqlSettings.DataSource is still upstream's example" in err

    db = postgres.new_database()
    env_before = pm.root.read_text(ENV_FILE)
    code, _, err = admin(pm, "configure", "--datasource", db.dsn(password="wrong"))
    assert code == 1
    assert err.startswith(
        "mattermost: error: cannot log in to the database with that URL, as the server would: "
    )
    assert "password authentication failed" in err and err.endswith("Nothing was changed\n")
    assert pm.root.read_text(ENV_FILE) == env_before and "wrong" not in err
    code, _, err = admin(pm, "configure", "--site-url", "chat.example.com")
    assert code == 2 and "is not an http:// or https:// URL" in err

    code, out, err = admin(
        pm, "configure", "--datasource", db.dsn(), "--site-url", "https://chat.example.com"
    )
    assert code == 0, err
    assert f"MM_SQLSETTINGS_DATASOURCE='{db.dsn()}'" in pm.root.read_text(ENV_FILE)
    assert pm.root.stat(ENV_FILE).mode & 0o777 == 0o640
    assert pm.root.read_json(CONFIG)["ServiceSettings"]["SiteURL"] == "https://chat.example.com"
    assert db.password not in out + err
    code, out, err = admin(pm, "check")
    assert (code, out, err) == (0, "mattermost: no problems found\n", "")
    site = Site(pm.root)
    with site.serve() as url:
        assert site.ping_version(url) == OLD
    assert int(db.query("SELECT count(*) FROM db_migrations")[0]) > 0


def test_check_reports_the_database_as_the_server_logs_in(pm: Manager, postgres: PgServer) -> None:
    site = used_site(pm)
    db = postgres.new_database()
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn(password="not-the-password"))
    code, out, _ = admin(pm, "check", "--json")
    assert code == 1
    (warning,) = json.loads(out)["warnings"]
    assert warning.startswith("the database at 127.0.0.1:")
    assert (
        "cannot be used with the configured credentials" in warning
        and "password authentication failed" in warning
    )


def test_status_as_another_user_says_it_cannot_look_rather_than_missing(pm: Manager) -> None:
    used_site(pm)
    proc = pm.root.run("runuser", "-u", "nobody", "--", ADMIN, "status", check=False)
    assert proc.returncode == 1
    assert f"mattermost: warning: {CONFIG} cannot be read as nobody (run as root)" in proc.stderr
    assert "is missing" not in proc.stderr
    assert "run as root to check the database and the service's journal too" in proc.stdout


def _store_files(pm: Manager) -> dict[str, bytes]:
    base = pm.root.path(STORE)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def test_backup_and_restore_bring_back_the_database_the_configuration_and_the_files(
    pm: Manager, postgres: PgServer
) -> None:
    pm.install(pm.build(OLD)).ok()
    site = Site(pm.root)
    db = postgres.new_database()
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn())
    with site.serve():
        pass  # the server's schema and row, in the real database
    site.add_files()
    rows, config, files = db.query("SELECT message FROM posts"), pm.root.read_json(CONFIG), _store_files(pm)
    env = pm.root.read_text(ENV_FILE)

    code, out, err = admin(pm, "backup")
    assert code == 0, err
    (name,) = [n for n in all_snapshots(pm) if "_manual_" in n]
    assert out.endswith(f"saved the configuration, the database, the file store in {BACKUPS}/{name}\n"), out
    snap = f"{BACKUPS}/{name}"
    assert pm.root.exists(f"{snap}/database/toc.dat") and pm.root.exists(f"{snap}/files.tar")
    pm.root.run("sh", "-c", f"cd {snap} && sha256sum --strict --quiet -c MANIFEST")
    assert db.password not in out + err

    # The site moves on: a post, a setting, a file more and one less.
    db.query("INSERT INTO posts (createat, message) VALUES (1, 'after the backup')")
    site.edit_config("TeamSettings", "SiteName", "After the backup")
    pm.root.run(
        "sh",
        "-c",
        f"rm {STORE}/teams/t1/channels/c1/report.pdf && runuser -u mattermost -- touch {STORE}/new",
    )

    code, _, err = admin(pm, "restore", name)
    assert code == 1 and "Run 'mattermost-pkg restore --yes" in err and "nothing was changed" in err
    assert "after the backup" in db.query("SELECT message FROM posts")

    code, out, err = admin(pm, "restore", "--yes", name)
    assert code == 0, err
    assert db.query("SELECT message FROM posts") == rows
    assert pm.root.read_json(CONFIG) == config and pm.root.read_text(ENV_FILE) == env
    assert _store_files(pm) == files
    aside = [p for p in pm.root.path(STORE).parent.iterdir() if p.name.startswith("data.before-restore-")]
    assert len(aside) == 1 and (aside[0] / "new").exists()  # the store as it was, kept and named
    assert f"the store as it was is in {STORE}.before-restore-" in out
    assert pm.root.stat(STORE).owner == "mattermost"
    with site.serve() as url:
        assert site.ping_version(url) == OLD


def test_restore_refuses_a_backup_that_does_not_match_its_manifest(pm: Manager) -> None:
    used_site(pm)
    assert admin(pm, "backup", "--no-database")[0] == 0
    (name,) = [n for n in all_snapshots(pm) if "_manual_" in n]
    tar = pm.root.path(f"{BACKUPS}/{name}/files.tar")
    tar.write_bytes(tar.read_bytes()[:-512] + b"x" * 512)
    before = _store_files(pm)

    code, _, err = admin(pm, "restore", "--yes", name)

    assert code == 1 and "does not match its manifest" in err and "nothing was changed" in err
    assert _store_files(pm) == before


def test_backup_of_a_store_in_object_storage_says_what_it_leaves_out(pm: Manager) -> None:
    site = used_site(pm)
    site.edit_config("FileSettings", "DriverName", "amazons3")
    site.edit_config("FileSettings", "AmazonS3Bucket", "chat-files")
    code, out, err = admin(pm, "backup", "--no-database")
    assert code == 0, err
    assert "the file store is in object storage (FileSettings.DriverName amazons3, bucket chat-files)" in err
    (name,) = [n for n in all_snapshots(pm) if "_manual_" in n]
    assert not pm.root.exists(f"{BACKUPS}/{name}/files.tar")
    assert out.endswith(f"saved the configuration in {BACKUPS}/{name}\n"), out
