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
from tests.support.scenario import BACKUPS, CONFIG, ENV_FILE, OVERRIDES, Site
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
