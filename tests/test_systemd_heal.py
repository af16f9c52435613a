"""Unattended upgrades that heal themselves, under a real systemd with a real PostgreSQL: Debian's
unattended-upgrades (run by apt's own apt-daily-upgrade.service) and dnf-automatic (upstream's
script and dnf-automatic-install.service over Debian's python3-dnf) upgrade from a served,
signed repository. An upgrade whose migration fails, or whose new server never answers, ends
with the previous version running on the database as it was, held, one line in the journal and
one signed report at a loopback receiver; a healthy one reports success and holds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmpkg.repo import Repository
from mmpkg.repo.clients import ClientFormat, client_config
from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.pgserver import PgDatabase, PgServer
from tests.support.repo_client import RepoClient
from tests.support.report_receiver import Receiver, receiver
from tests.support.scenario import Site, free_port
from tests.test_db_backup import db_schema
from tests.test_lifecycle import schema
from tests.test_repo import KEY, _serve, gnupghome
from tests.test_rollback import has_hold, held
from tests.test_systemd import UNIT, V1, V2, answers, ping

__all__ = ["gnupghome"]

pytestmark = pytest.mark.systemd

SECRET = "a secret the receiver shares"
HEAL_UNIT = "mattermost-pkg-heal.service"
PACKAGE_CONF = "/etc/mattermost/package.conf"
# Upstream's bin/dnf-automatic (dnf 4, bin/dnf-automatic.in) and its unit
# (etc/systemd/dnf-automatic-install.service, without --timer's random sleep): Debian ships the
# module, python3-dnf's dnf.automatic, without them.
DNF_AUTOMATIC = """#!/usr/bin/python3
import sys
from dnf.automatic.main import main
sys.exit(main(sys.argv[1:]))
"""
DNF_AUTOMATIC_UNIT = """[Unit]
Description=dnf automatic install updates
After=network-online.target

[Service]
Type=oneshot
Nice=19
IOSchedulingClass=2
IOSchedulingPriority=7
ExecStart=/usr/bin/dnf-automatic /etc/dnf/automatic.conf --installupdates
"""


@dataclass
class Fleet:
    """One server running V1 under systemd, upgraded by its distribution's unattended upgrader
    from a served repository that offers V2, reporting to a loopback receiver."""

    pm: RepoClient
    box: harness.Booted
    db: PgDatabase
    port: int
    got: Receiver
    posts_before: list[str]
    columns_before: list[str]

    @property
    def root(self) -> harness.Root:
        return self.pm.root

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v4/system/ping"

    def upgrade_unattended(self) -> str:
        """One run of the real unattended upgrader, through its own systemd unit."""
        unit = "apt-daily-upgrade.service" if self.pm.fmt == "deb" else "dnf-automatic-install.service"
        # What apt-daily.service does before, without its random delay; for dnf-automatic, the
        # metadata's expiry (hours) brought forward.
        self.pm.refresh()
        proc = self.box.exec("systemctl", "start", unit, check=False, timeout=900)
        return proc.stdout + proc.stderr + self.box.journal(unit)

    def wait_for_heal(self) -> None:
        """Until no rollback waits and its unit has ended."""

        def done() -> bool:
            linked = self.box.exec("test", "-L", "/var/backups/mattermost/heal", check=False).returncode == 0
            state = self.box.exec("systemctl", "is-active", HEAL_UNIT, check=False).stdout.strip()
            return not linked and state not in {"active", "activating"}

        try:
            harness.wait_until(done, timeout=600, interval=1, what="the rollback by itself")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.heal_log()}") from None

    def heal_log(self) -> str:
        out = self.box.exec("sh", "-c", "cat /var/backups/mattermost/*/heal.log", check=False)
        return out.stdout + self.box.journal(HEAL_UNIT)

    def journal_lines(self) -> list[str]:
        """What the package said to the journal under its identifier for upgrades."""
        out = self.box.exec(
            "journalctl", "--no-pager", "-o", "cat", "-t", "mattermost-upgrade", check=False
        ).stdout
        return [line for line in out.splitlines() if line]

    def posts(self) -> list[str]:
        return self.db.query("SELECT message FROM posts ORDER BY id")

    def columns(self) -> list[str]:
        return self.db.query(
            "SELECT table_name || '.' || column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1"
        )


@pytest.fixture(params=["deb", "rpm"])
def fleet(
    request: pytest.FixtureRequest,
    distro: harness.Distro,
    postgres_of: Callable[[int], PgServer],
    packages: PackageFactory,
    gnupghome: Path,
    tmp_path: Path,
) -> Iterator[Fleet]:
    fmt = str(request.param)
    lower = harness.pristine_root(
        suite=distro.suite,
        packages=(*harness.PRISTINE_PACKAGES, *harness.VERSIONLOCK_PACKAGES, "unattended-upgrades"),
    )
    repo = Repository(tmp_path / "repo", gnupghome=gnupghome)
    built = [packages.build(v) for v in (V1, V2)]
    repo.add([b.deb if fmt == "deb" else b.rpm for b in built[:1]], "stable", KEY)
    with (
        harness.Root(lower, name=f"heal-{fmt}", distro=distro) as root,
        _serve(repo.path) as url,
        receiver() as got,
    ):
        box = harness.Booted(root).start()
        pm = RepoClient(root, fmt)
        pm.install_from(repo, url, V1)
        kind = ClientFormat.APT if fmt == "deb" else ClientFormat.DNF
        for snippet in client_config(url, "stable", kind, unattended=True)[1:]:
            root.write_text(snippet.path, snippet.text)
        if fmt == "deb":
            # What 'dpkg-reconfigure unattended-upgrades' writes when the administrator says yes.
            root.write_text(
                "/etc/apt/apt.conf.d/20auto-upgrades",
                'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n',
            )
        else:
            root.write_text("/usr/bin/dnf-automatic", DNF_AUTOMATIC)
            root.path("/usr/bin/dnf-automatic").chmod(0o755)
            root.write_text("/etc/systemd/system/dnf-automatic-install.service", DNF_AUTOMATIC_UNIT)
            box.exec("systemctl", "daemon-reload")
        # The distribution's own PostgreSQL: its pg_dump refuses a newer server.
        db = postgres_of(distro.postgresql).new_database()
        port = free_port()
        Site(root).set_env(
            MM_SQLSETTINGS_DATASOURCE=db.dsn(), MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{port}"
        )
        root.write_text(PACKAGE_CONF, f"MMPKG_REPORT_URL={got.url}\nMMPKG_START_TIMEOUT=20\n")
        root.write_text("/etc/mattermost/report.secret", SECRET + "\n")
        root.path("/etc/mattermost/report.secret").chmod(0o600)
        box.exec("systemctl", "start", UNIT)
        assert ping(f"http://127.0.0.1:{port}/api/v4/system/ping") == V1
        # The new release is published; the next unattended run takes it.
        repo.add([b.deb if fmt == "deb" else b.rpm for b in built[1:]], "stable", KEY)
        fleet = Fleet(pm, box, db, port, got, [], [])
        fleet.posts_before, fleet.columns_before = fleet.posts(), fleet.columns()
        assert fleet.posts_before == [f"server {V1} started"]
        try:
            yield fleet
        finally:
            box.stop()


def _assert_rolled_back(fleet: Fleet, step: str, said: str, by: str | None = None) -> dict[str, object]:
    fleet.wait_for_heal()
    log = fleet.heal_log()
    # The previous version runs, on the database as it was, held there.
    assert fleet.pm.installed() == f"{V1}-1", f"{said}\n{log}"
    assert ping(fleet.url) == V1, log
    assert db_schema(fleet.db) == schema(V1) and fleet.columns() == fleet.columns_before
    # What the old server wrote is there, and then its start after the rollback.
    assert fleet.posts() == [*fleet.posts_before, f"server {V1} started"], log
    # One clear line in the journal, which says whether the version is held.
    (line,) = fleet.journal_lines()
    if has_hold(fleet.root, fleet.pm.fmt):
        assert held(fleet.root, fleet.pm.fmt) == f"{V1}-1"
        assert f"from {V1} to {V2} failed ({step}); rolled back to {V1} and held it there" in line
    else:
        # Debian 11 has no dnf versionlock, as a RHEL without python3-dnf-plugin-versionlock.
        assert f"from {V1} to {V2} failed ({step}); rolled back to {V1}, but nothing holds it there" in line
    # One report, signed, and the same as mattermost-pkg report prints.
    (report,) = fleet.got.reports(SECRET)
    assert (report["from"], report["to"], report["result"], report["step"]) == (V1, V2, "rolled-back", step)
    assert report["held"] == (f"{V1}-1" if has_hold(fleet.root, fleet.pm.fmt) else None)
    assert isinstance(report["downtime_seconds"], int | float) and report["downtime_seconds"] > 0
    assert report["unattended"] == (
        by or {"deb": "unattended-upgrades", "rpm": "dnf-automatic"}[fleet.pm.fmt]
    )
    printed = json.loads(fleet.box.exec("mattermost-pkg", "report").stdout)
    assert printed == report
    assert fleet.db.password not in fleet.got.received[0].body.decode()
    return report


@pytest.mark.generations
def test_a_failed_migration_rolls_back_by_itself(fleet: Fleet) -> None:
    Site(fleet.root).set_env(MMPKG_SAMPLE_MIGRATION_FAIL=V2)
    said = fleet.upgrade_unattended()
    report = _assert_rolled_back(fleet, "migration", said)
    log = report["log"]
    assert isinstance(log, list) and any("simulated failure" in line for line in log), report


@pytest.mark.generations
def test_a_server_that_never_answers_rolls_back_by_itself(fleet: Fleet) -> None:
    Site(fleet.root).set_env(MMPKG_SAMPLE_START_HANG=V2)
    said = fleet.upgrade_unattended()
    _assert_rolled_back(fleet, "start", said)


def test_a_healthy_unattended_upgrade_reports_success_and_holds_nothing(fleet: Fleet) -> None:
    said = fleet.upgrade_unattended()
    assert fleet.pm.installed() == f"{V2}-1", said
    assert ping(fleet.url) == V2 and db_schema(fleet.db) == schema(V2)
    assert held(fleet.root, fleet.pm.fmt) is None
    assert not fleet.root.exists("/var/backups/mattermost/heal", follow_symlinks=False)
    (report,) = fleet.got.reports(SECRET)
    assert (report["from"], report["to"], report["result"], report["step"], report["held"]) == (
        V1, V2, "upgraded", None, None,
    )  # fmt: skip
    assert isinstance(report["downtime_seconds"], int | float) and report["downtime_seconds"] > 0
    assert fleet.journal_lines() == []


def test_with_self_heal_off_a_failed_upgrade_is_left_and_reported(fleet: Fleet) -> None:
    fleet.root.write_text(PACKAGE_CONF, fleet.root.read_text(PACKAGE_CONF) + "MMPKG_SELF_HEAL=0\n")
    Site(fleet.root).set_env(MMPKG_SAMPLE_MIGRATION_FAIL=V2)
    said = fleet.upgrade_unattended()
    assert not fleet.root.exists("/var/backups/mattermost/heal", follow_symlinks=False), said
    assert held(fleet.root, fleet.pm.fmt) is None
    assert not answers(fleet.url)
    (report,) = fleet.got.reports(SECRET)
    assert (report["result"], report["step"]) == ("failed", "migration")
    assert "not rolled back: MMPKG_SELF_HEAL=0" in str(report["reason"])


def test_mattermost_pkg_upgrade_unattended_rolls_back_and_says_so(fleet: Fleet) -> None:
    Site(fleet.root).set_env(MMPKG_SAMPLE_MIGRATION_FAIL=V2)
    fleet.pm.refresh()
    proc = fleet.box.exec("mattermost-pkg", "upgrade", "--unattended", check=False, timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"mattermost: error: the upgrade to {V2} failed and was rolled back; mattermost is held at {V1}-1; "
        "'mattermost-pkg report' says why"
    )
    _assert_rolled_back(fleet, "migration", proc.stdout + proc.stderr, by="MMPKG_UNATTENDED=1")


def test_never_rolls_back_over_a_new_server_that_served(fleet: Fleet) -> None:
    """The rollback cannot run (its unit is masked); the administrator fixes the cause and starts
    the new server, which serves. The rollback, run later, leaves it: what it accepted is in no
    dump."""
    fleet.box.exec("systemctl", "mask", HEAL_UNIT)
    Site(fleet.root).set_env(MMPKG_SAMPLE_MIGRATION_FAIL=V2)
    said = fleet.upgrade_unattended()
    assert fleet.root.exists("/var/backups/mattermost/heal", follow_symlinks=False), said
    Site(fleet.root).set_env(MMPKG_SAMPLE_MIGRATION_FAIL="0")
    fleet.box.exec("systemctl", "start", UNIT)
    assert ping(fleet.url) == V2

    proc = fleet.box.exec("mattermost-pkg", "heal", check=False)

    assert proc.returncode == 1
    assert ping(fleet.url) == V2 and db_schema(fleet.db) == schema(V2)
    assert held(fleet.root, fleet.pm.fmt) is None
    (line,) = fleet.journal_lines()
    assert f"a server of {V2} became ready after the upgrade, so it may have accepted writes" in line
    (report,) = fleet.got.reports(SECRET)
    assert (report["result"], report["step"], report["held"]) == ("failed", "migration", None)
