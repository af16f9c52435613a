"""Systemd tier, the edges: adopting a hand-made server on a booted host that never had
mattermost.service, and one whose unit is where the package's goes and whose configuration is
in the database, an upgrade that fails to unpack after an old package that is not ours, and
a full backup file system with the server running. Same booted roots as tests/test_systemd.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import harness
from tests.support.packages import Built, PackageFactory
from tests.support.pgserver import PgServer
from tests.support.scenario import BACKUPS, CONFIG, Site, free_port
from tests.test_lifecycle import (
    ENVIRONMENT,
    active_config,
    db_schema,
    install_by_hand,
    move_config_to_database,
)
from tests.test_systemd import PENDING, UNIT, V1, V2, Server, answers, ping, schema_of

pytestmark = pytest.mark.systemd

PREFIX = "/opt/mattermost"


@pytest.fixture(scope="module")
def releases(packages: PackageFactory) -> tuple[Built, Built]:
    return packages.build(V1), packages.build(V2)


@pytest.fixture(params=["deb", "rpm"])
def server(request: pytest.FixtureRequest, root: harness.Root, booted: harness.BootFactory) -> Server:
    return Server(fmt=request.param, root=root, box=booted(), port=free_port())


def install_by_hand_without_unit(server: Server, packages: PackageFactory, version: str) -> None:
    """upstream's tarball steps, but the server is run some other way: no mattermost.service."""
    root = server.root
    root.run("tar", "-xzf", root.copy_in(packages.tarball(version)), "-C", "/opt")
    root.run("useradd", "--system", "--user-group", "mattermost")
    root.run("mkdir", f"{PREFIX}/data")
    root.run("chown", "-R", "mattermost:mattermost", PREFIX)
    Site(root).create_database()


def run_by_hand(server: Server) -> None:
    """The hand-made server under a transient unit of another name, as a supervisor would."""
    server.box.exec(
        "systemd-run", "--unit=handmade-chat", "--uid=mattermost", f"--working-directory={PREFIX}",
        f"--setenv=MM_SERVICESETTINGS_LISTENADDRESS=127.0.0.1:{server.port}", f"{PREFIX}/bin/mattermost",
    )  # fmt: skip
    harness.wait_until(lambda: answers(server.url), timeout=30, what="the hand-made server")


def test_adoption_on_a_booted_host_without_the_unit(
    server: Server, packages: PackageFactory, releases: tuple[Built, Built]
) -> None:
    install_by_hand_without_unit(server, packages, V1)
    run_by_hand(server)
    handmade = server.root.path(f"{PREFIX}/config/config.json").read_bytes()

    # While it runs, its configuration cannot move under it: refused, nothing changed.
    said = refused(server, releases[1])
    assert "is running outside systemd" in said, said
    assert ping(server.url) == V1
    assert server.root.path(f"{PREFIX}/config/config.json").read_bytes() == handmade

    server.box.exec("systemctl", "stop", "handmade-chat")
    said = server.install(releases[1])
    assert "adopting the Mattermost server installed by hand" in said, said
    assert "not loaded" not in said
    assert server.root.path(CONFIG).read_bytes() == handmade
    assert server.is_enabled() == "enabled"
    server.site.set_env(MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{server.port}")
    server.systemctl("start", UNIT)
    server.assert_running(V2)
    assert server.site.schema() == schema_of(V2)


def test_adopting_a_server_configured_in_the_database_with_its_unit_in_lib(
    server: Server, packages: PackageFactory, releases: tuple[Built, Built], postgres: PgServer
) -> None:
    """Upstream's RHEL guide puts the unit in /lib/systemd/system, where the package's goes, and
    its configuration-in-your-database.rst has it read MM_CONFIG from an EnvironmentFile=. The
    hand-made server runs under that unit; the install stops it, keeps its unit, carries its
    environment into the package's, and starts the package's unit, on the same database."""
    root, db = server.root, postgres.new_database()
    site = install_by_hand(root, packages, V1, unit_dir="/lib/systemd/system", db=db)
    move_config_to_database(site, db, f"/lib/systemd/system/{UNIT}", proxy=False)
    root.run("rm", f"{PREFIX}/config/config.json")
    with root.path(ENVIRONMENT).open("a") as env:
        env.write(f"MM_SERVICESETTINGS_LISTENADDRESS=127.0.0.1:{server.port}\n")
    server.systemctl("daemon-reload")
    server.systemctl("start", UNIT)
    server.assert_running(V1)

    said = server.install(releases[1])

    assert f"moved the hand-made /lib/systemd/system/{UNIT} to {BACKUPS}/" in said, said
    pid = server.assert_running(V2)
    environ = server.box.exec("cat", f"/proc/{pid}/environ").stdout.split("\0")
    assert f"MM_CONFIG={db.dsn()}" in environ
    assert server.box.exec("systemctl", "show", "-P", "FragmentPath", UNIT).stdout.strip() in (
        f"/lib/systemd/system/{UNIT}",
        f"/usr/lib/systemd/system/{UNIT}",
    )
    assert "Installed by the mattermost package" in root.read_text(f"/lib/systemd/system/{UNIT}")
    assert db_schema(db) == schema_of(V2)
    assert active_config(db)["SqlSettings"]["DataSource"] == db.dsn()


def refused(server: Server, built: Built) -> str:
    """Install or upgrade, which must fail; what the package manager and scripts said."""
    root = server.root
    if server.fmt == "deb":
        proc = root.dpkg("-i", root.copy_in(built.deb), check=False)
    else:
        proc = root.run(
            "rpm", "--dbpath", harness.RPM_DBPATH, "--nodeps", "-U", root.copy_in(built.rpm), check=False
        )
    assert proc.returncode != 0, proc.stdout
    return proc.stdout + proc.stderr


def test_failed_unpack_after_an_old_package_not_ours_restarts_the_server(
    root: harness.Root, booted: harness.BootFactory, releases: tuple[Built, Built], tmp_path: Path
) -> None:
    server = Server(fmt="deb", root=root, box=booted(), port=free_port())
    v1, v2 = releases
    server.start_running(v1, V1)
    # An old package whose postinst does nothing on abort-upgrade, as one not built by mmpkg.
    root.write_text("/var/lib/dpkg/info/mattermost.postinst", "#!/bin/sh\nexit 0\n")
    # Another package owns a file of ours, so dpkg fails while unpacking, after preinst stopped
    # the server; it then runs the new package's postrm abort-upgrade.
    tree = tmp_path / "squatter"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: squatter\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.com>\nDescription: x\n"
    )
    (tree / "usr/share/man/man8").mkdir(parents=True)
    (tree / "usr/share/man/man8/mattermost-pkg.8.gz").write_bytes(b"")
    harness.run_host(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(tmp_path / "squatter.deb")])
    root.dpkg("--force-overwrite", "-i", root.copy_in(tmp_path / "squatter.deb"))

    proc = root.dpkg("-i", root.copy_in(v2.deb), check=False)

    said = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "trying to overwrite '/usr/share/man/man8/mattermost-pkg.8.gz'" in said
    assert "mattermost: stopping mattermost.service" in said
    assert root.dpkg_status("mattermost") == "install ok installed"
    server.assert_running(V1)
    assert not root.exists(PENDING, follow_symlinks=False)


def test_full_backup_filesystem_leaves_the_server_running(
    server: Server, releases: tuple[Built, Built]
) -> None:
    v1, v2 = releases
    old_pid = server.start_running(v1, V1)
    # Inside the container, where the scripts run: a full file system over the backups.
    box = server.box
    box.exec("mount", "-t", "tmpfs", "-o", "size=128k,mode=0700", "tmpfs", BACKUPS)
    try:
        box.exec("sh", "-c", f"dd if=/dev/zero of={BACKUPS}/filler bs=4k 2>/dev/null || true")
        said = refused(server, v2)
        assert "not enough space for the pre-upgrade snapshot" in said, said
        assert server.assert_running(V1) == old_pid
        assert box.exec("ls", "-A", BACKUPS).stdout.split() == ["filler"]
    finally:
        box.exec("umount", "-l", BACKUPS)
    assert not server.root.exists(PENDING, follow_symlinks=False)


def test_resume_by_hand_starts_the_server_the_upgrade_stopped(
    server: Server, releases: tuple[Built, Built]
) -> None:
    v1, v2 = releases
    server.start_running(v1, V1)
    server.site.set_env(MMPKG_SAMPLE_MIGRATION_FAIL="1")
    said = refused(server, v2) if server.fmt == "deb" else server.install(v2)
    assert "the database migration to" in said
    assert not answers(server.url)
    # The administrator fixes the cause and finishes the upgrade by hand.
    server.site.set_env(MMPKG_SAMPLE_MIGRATION_FAIL="0")
    out = server.box.exec("mattermost-pkg", "resume").stdout
    assert f"finishing the upgrade to {V2}" in out
    server.assert_running(V2)
    assert server.site.schema() == schema_of(V2)
    assert not server.root.exists(PENDING, follow_symlinks=False)
    if server.fmt == "deb":
        server.root.dpkg("--configure", "-a")
        assert server.root.dpkg_status("mattermost") == "install ok installed"
        server.assert_running(V2)


def test_apply_overrides_restarts_only_for_a_change(server: Server, releases: tuple[Built, Built]) -> None:
    pid = server.start_running(releases[0], V1)
    out = server.box.exec("mattermost-pkg", "apply-overrides").stdout
    assert "nothing to do" in out and "stopping" not in out
    assert server.assert_running(V1) == pid
    server.site.add_override("50-name.json", {"TeamSettings": {"SiteName": "Changed"}})
    out = server.box.exec("mattermost-pkg", "apply-overrides").stdout
    assert f"stopping {UNIT} to change {CONFIG}" in out
    assert server.assert_running(V1) != pid
    assert server.root.read_json(CONFIG)["TeamSettings"]["SiteName"] == "Changed"


def test_local_mode_socket_is_reachable_from_the_host(server: Server, releases: tuple[Built, Built]) -> None:
    """Upstream's /var/tmp/mattermost_local.socket would be inside the unit's PrivateTmp=; the
    package's install default puts it in the unit's RuntimeDirectory=, the host's /run."""
    server.install_configured(releases[0])
    server.site.set_env(MM_SERVICESETTINGS_ENABLELOCALMODE="true")
    server.systemctl("start", UNIT)
    server.assert_running(V1)
    socket = "/run/mattermost/mattermost_local.socket"
    assert server.box.exec("stat", "-c", "%F %U %a", socket).stdout.split() == ["socket", "mattermost", "600"]
    assert server.box.exec("test", "-e", "/var/tmp/mattermost_local.socket", check=False).returncode == 1
    server.systemctl("stop", UNIT)
    assert server.box.exec("test", "-e", "/run/mattermost", check=False).returncode == 1


def test_the_log_directory_is_the_servers_logging_root(server: Server, releases: tuple[Built, Built]) -> None:
    """MM_LOG_PATH from the unit (upstream 11.4+, 10.11.x: the System Console reads logs only
    below it); a line in the environment file wins, as EnvironmentFile= comes after."""
    pid = server.start_running(releases[0], V1)
    environ = server.box.exec("cat", f"/proc/{pid}/environ").stdout.split("\0")
    assert "MM_LOG_PATH=/var/log/mattermost" in environ
    server.site.set_env(MM_LOG_PATH="/srv/logs")
    server.systemctl("restart", UNIT)
    pid = server.assert_running(V1)
    assert "MM_LOG_PATH=/srv/logs" in server.box.exec("cat", f"/proc/{pid}/environ").stdout.split("\0")
