"""When the upgrade's database dump is taken, under a real systemd with a real PostgreSQL.

By default the dump is taken while the old server still runs, so that the outage does not grow
with the database; with MMPKG_DB_BACKUP_STRICT=1 it is taken after the server stopped, inside
the outage. Which one happened is read from two records made by different processes: the
package's log (the dump's start and end, to the nanosecond) and systemd's journal (when the
unit began to stop and when it had stopped). No duration is asserted, only the order.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from tests.support import harness
from tests.support.packages import Built, PackageFactory
from tests.support.pgserver import PgDatabase, PgServer
from tests.support.scenario import free_port
from tests.test_db_backup import db_schema
from tests.test_lifecycle import schema
from tests.test_systemd import MIGRATE_LOG, UNIT, V1, V2, Server, ping

pytestmark = pytest.mark.systemd

DUMP_LINE = re.compile(r"pg_dump started (\S+), finished (\S+);")


@pytest.fixture(params=["deb", "rpm"])
def running(
    request: pytest.FixtureRequest,
    root: harness.Root,
    booted: harness.BootFactory,
    packages: PackageFactory,
    postgres: PgServer,
) -> tuple[Server, PgDatabase, Built]:
    """V1 running under systemd against its own database on the host's PostgreSQL."""
    server = Server(fmt=request.param, root=root, box=booted(), port=free_port())
    db = postgres.new_database()
    server.install(packages.build(V1))
    server.site.set_env(
        MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{server.port}", MM_SQLSETTINGS_DATASOURCE=db.dsn()
    )
    server.systemctl("start", UNIT)
    server.assert_running(V1)
    assert db_schema(db) == schema(V1)
    return server, db, packages.build(V2)


def _at(stamp: str) -> float:
    """An RFC 3339 time with nanoseconds (the package's log), in seconds since the epoch."""
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment.timestamp() + float(f"0.{fraction or 0}")


def _dump_times(server: Server) -> tuple[float, float]:
    lines = [m for m in DUMP_LINE.finditer(server.root.read_text(MIGRATE_LOG))]
    assert len(lines) == 1, server.root.read_text(MIGRATE_LOG)
    return _at(lines[0][1]), _at(lines[0][2])


def _stop_times(server: Server) -> tuple[float, float]:
    """When systemd began to stop the unit and when it had stopped, from the journal (the one
    stop of the test)."""
    out = server.box.exec("journalctl", "--no-pager", "-o", "json", "-u", UNIT).stdout
    stopping: list[float] = []
    stopped: list[float] = []
    for line in out.splitlines():
        entry = json.loads(line)
        message = entry.get("MESSAGE")
        if not isinstance(message, str) or entry.get("_PID") != "1":
            continue
        at = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        if message.startswith("Stopping "):
            stopping.append(at)
        elif message.startswith("Stopped "):
            stopped.append(at)
    assert len(stopping) == 1 and len(stopped) == 1, out
    return stopping[0], stopped[0]


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_the_dump_is_taken_before_the_stop_or_in_strict_mode_inside_the_outage(
    running: tuple[Server, PgDatabase, Built], strict: bool
) -> None:
    server, db, new = running
    if strict:
        server.root.write_text("/etc/mattermost/package.conf", "MMPKG_DB_BACKUP_STRICT=1\n")

    said = server.install(new)

    assert ping(server.url) == V2 and db_schema(db) == schema(V2)
    started, finished = _dump_times(server)
    stopping, stopped = _stop_times(server)
    if strict:
        assert "after the server stopped (MMPKG_DB_BACKUP_STRICT=1)" in said, said
        assert stopped < started < finished, (stopped, started, finished)
    else:
        assert "backing up the database" in said and "while the server still runs" in said, said
        assert started < finished < stopping < stopped, (started, finished, stopping)


def test_status_names_the_journal_s_reason_for_a_server_that_cannot_log_in(
    running: tuple[Server, PgDatabase, Built],
) -> None:
    """A wrong password keeps the server restarting: status says why, from the journal, and
    from a login of its own, instead of "still starting"."""
    server, db, _ = running
    server.site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn(password="not-the-password"))
    server.box.exec("systemctl", "restart", "--no-block", UNIT)

    def reported() -> bool:
        proc = server.box.exec("mattermost-pkg", "status", "--json", check=False)
        return any("from its journal" in w for w in json.loads(proc.stdout)["warnings"])

    harness.wait_until(reported, timeout=60, what="the failure in status")
    proc = server.box.exec("mattermost-pkg", "status", "--json", check=False)
    assert proc.returncode == 1
    warnings = json.loads(proc.stdout)["warnings"]
    journal = [w for w in warnings if "from its journal" in w]
    assert journal and "password authentication failed" in journal[0], warnings
    assert any("cannot be used with the configured credentials" in w for w in warnings), warnings
    assert db.password not in proc.stdout
