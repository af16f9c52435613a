"""Systemd tier: a server of Mattermost's own `mattermost` deb (the replica of
tests/support/official_deb.py), installed with apt from upstream's served repository, enabled and
running under upstream's own unit, moved to the package with apt from this project's.

Upstream's unit has Restart=always: whatever stops its server, systemd starts it again unless
the unit is stopped. After the move the server runs under the package's unit on the package's
layout, and neither a daemon-reload and restart nor a reboot brings the old one back; nor does
upstream publishing a newer release, with its repository still configured.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mmpkg.build import omnibus
from mmpkg.repo import Repository
from mmpkg.repo.clients import ClientFormat, client_config, setup_command
from mmpkg.repo.keyring import NAME
from tests.support import harness
from tests.support.official_deb import OMNIBUS_ENV, build_official_deb, omnibus_reconfigure
from tests.support.packages import PackageFactory
from tests.support.pgserver import PgServer
from tests.support.scenario import free_port
from tests.test_lifecycle import db_schema, schema
from tests.test_official import (
    OFFICIAL_SOURCE,
    _apt,
    _install_from_upstream,
    _installed,
    _official_repo,
    _official_source,
    _omnibus_upstream_and_ours,
    upstream_key,
)
from tests.test_repo import KEY, _serve, gnupghome
from tests.test_systemd import UNIT, USER, Server, answers

__all__ = ["gnupghome", "upstream_key"]  # fixtures shared with test_official.py

pytestmark = pytest.mark.systemd

OFFICIAL = "10.5.2"
OURS = "10.11.1"
OFFICIAL_NEWER = "10.11.3"  # upstream's next release, offered once the server is on ours
PREFIX = "/opt/mattermost"
MOVED_CONFIG = "/etc/mattermost/config/config.json"


def _official_running(server: Server, port: int) -> int:
    """Upstream's install guide after `dpkg -i`: config.json from the defaults, the listen
    address edited, the enabled unit started. Returns its MainPID."""
    root = server.root
    root.run(
        "install", "-C", "-m", "600", "-o", USER, "-g", USER,
        f"{PREFIX}/config/config.defaults.json", f"{PREFIX}/config/config.json",
    )  # fmt: skip
    config = root.read_json(f"{PREFIX}/config/config.json")
    config["ServiceSettings"]["ListenAddress"] = f"127.0.0.1:{port}"
    root.run("runuser", "-u", USER, "--", "tee", f"{PREFIX}/config/config.json", input=json.dumps(config))
    server.site.create_database()
    assert server.is_enabled() == "enabled"  # upstream's postinst enabled it
    server.systemctl("start", UNIT)
    return server.assert_running(OFFICIAL)


def _only_process(server: Server, pid: int) -> None:
    """The service user runs the unit's server and nothing else: no old server left over."""
    left = server.box.exec("pgrep", "-u", USER).stdout.split()
    assert left == [str(pid)], server.box.exec("ps", "-f", "-u", USER).stdout


def test_an_official_server_running_under_its_unit_moves_to_the_package(
    root: harness.Root,
    booted: harness.BootFactory,
    packages: PackageFactory,
    gnupghome: Path,
    upstream_key: tuple[Path, bytes],
    tmp_path: Path,
) -> None:
    official = [
        build_official_deb(packages.tarball(v), v, tmp_path / "official") for v in (OFFICIAL, OFFICIAL_NEWER)
    ]
    ours = Repository(tmp_path / "repo", gnupghome=gnupghome)
    ours.add([packages.deb(OURS)], "stable", KEY)
    server = Server(fmt="deb", root=root, box=booted(), port=free_port())
    with _official_repo(official[:1], tmp_path, upstream_key) as official_url, _serve(ours.path) as our_url:
        _install_from_upstream(root, official_url, upstream_key[1])
        assert _installed(root) == f"{OFFICIAL}-0"
        old_pid = _official_running(server, server.port)
        assert server.show("Restart")["Restart"] == "always"

        # This project's repository beside upstream's, as client-config --commands says.
        root.sh(setup_command(our_url, "stable", ClientFormat.APT, install=False))
        _apt(root, "update", "--error-on=any")
        moved = _apt(root, "install", NAME, "mattermost")
        out = moved.stdout + moved.stderr

    assert "taking over the Mattermost server of the installed package mattermost" in out, out
    pid = server.assert_running(OURS)
    assert pid != old_pid
    _only_process(server, pid)
    # The unit is the package's, on the package's layout; the server reads the moved config.
    props = server.show("FragmentPath", "EnvironmentFiles", "DropInPaths")
    unit = root.read_text(props["FragmentPath"])
    assert "MM_INSTALL_TYPE=deb_package" not in unit
    assert "/etc/mattermost/mattermost.env" in props["EnvironmentFiles"]
    assert not props["DropInPaths"]
    assert os.readlink(root.path(f"{PREFIX}/config", follow_symlinks=False)) == "/etc/mattermost/config"
    assert root.read_json(MOVED_CONFIG)["ServiceSettings"]["ListenAddress"] == f"127.0.0.1:{server.port}"
    assert root.dpkg_status("mattermost") == "install ok installed"
    version = root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout
    assert version == f"{OURS}-1"

    # What a reboot does to the units: systemd reads them again and starts the enabled one.
    server.systemctl("daemon-reload")
    server.systemctl("restart", UNIT)
    pid = server.assert_running(OURS)
    _only_process(server, pid)

    # And a real one.
    server.reboot(booted)
    harness.wait_until(lambda: answers(server.url), timeout=60, what="the server after a reboot")
    pid = server.assert_running(OURS)
    _only_process(server, pid)
    assert server.is_enabled() == "enabled"

    # Upstream publishes a newer release, its repository still configured: apt keeps this
    # package (its pin), and the running server is left alone.
    with _official_repo(official, tmp_path, upstream_key) as official_url, _serve(ours.path) as our_url:
        root.write_text(OFFICIAL_SOURCE, _official_source(official_url))
        [source] = client_config(our_url, "stable", ClientFormat.APT)
        root.write_text(source.path, source.text)
        _apt(root, "update", "--error-on=any")
        assert f"{OFFICIAL_NEWER}-0" in root.run("apt-cache", "policy", "mattermost").stdout
        _apt(root, "upgrade")
        _apt(root, "dist-upgrade")
    assert _installed(root) == f"{OURS}-1"
    assert server.assert_running(OURS) == pid
    _only_process(server, pid)


# Omnibus installs PostgreSQL beside the server, and its unit and drop-in require
# postgresql.service: a stand-in unit here, the database itself the host's, on loopback.
POSTGRESQL_STAND_IN = """[Unit]
Description=Stand-in for the PostgreSQL mattermost-omnibus installs (the database is the host's)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
"""


def test_an_omnibus_server_running_under_its_units_moves_to_the_package_and_its_purge_leaves_it_running(
    root: harness.Root,
    booted: harness.BootFactory,
    packages: PackageFactory,
    gnupghome: Path,
    upstream_key: tuple[Path, bytes],
    postgres: PgServer,
    tmp_path: Path,
) -> None:
    db = postgres.new_database()
    official, ours = _omnibus_upstream_and_ours(packages, OFFICIAL, tmp_path, gnupghome)
    server = Server(fmt="deb", root=root, box=booted(), port=free_port())
    with _official_repo(official, tmp_path, upstream_key) as official_url, _serve(ours.path) as our_url:
        _install_from_upstream(root, official_url, upstream_key[1], omnibus.NAME)
        root.write_text("/etc/systemd/system/postgresql.service", POSTGRESQL_STAND_IN)
        server.systemctl("enable", "postgresql.service")
        omnibus_reconfigure(root, db.dsn(), listen=f"127.0.0.1:{server.port}")
        # reconfigure.yml's last step.
        server.systemctl("daemon-reload")
        server.systemctl("restart", UNIT)
        old_pid = server.assert_running(OFFICIAL)
        props = server.show("DropInPaths", "EnvironmentFiles", "Requires")
        assert omnibus.DROP_IN in props["DropInPaths"] and OMNIBUS_ENV in props["EnvironmentFiles"]

        root.sh(setup_command(our_url, "stable", ClientFormat.APT, install=False))
        _apt(root, "update", "--error-on=any")
        _apt(root, "install", NAME, "mattermost")

    assert _installed(root) == f"{OURS}-1"
    assert root.run("dpkg-query", "-W", "-f=${Version}", omnibus.NAME).stdout == omnibus.FULL_VERSION
    pid = server.assert_running(OURS)
    assert pid != old_pid
    _only_process(server, pid)
    # The package's unit alone: omnibus's drop-in, its environment file and its need of
    # postgresql.service are gone; the server reads the carried environment.
    props = server.show("DropInPaths", "EnvironmentFiles", "Requires", "WantedBy")
    assert not props["DropInPaths"], props
    assert props["EnvironmentFiles"].startswith("/etc/mattermost/mattermost.env"), props
    assert "postgresql.service" not in props["Requires"] + props["WantedBy"], props
    assert db_schema(db) == schema(OURS)

    # Purging omnibus: the server runs on, and so it does after a reboot.
    _apt(root, "purge", omnibus.NAME)
    assert server.assert_running(OURS) == pid
    server.reboot(booted)
    harness.wait_until(lambda: answers(server.url), timeout=60, what="the server after a reboot")
    _only_process(server, server.assert_running(OURS))
    assert server.is_enabled() == "enabled"
