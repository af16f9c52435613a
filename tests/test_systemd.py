"""Systemd tier: the packaged unit under a real systemd, for the .deb and the .rpm alike.

Each test boots its own throw-away root with `systemd-nspawn -b` (tests/support/harness.py), installs
the package with dpkg or rpm *inside* the booted container, so that the maintainer scripts and
scriptlets talk to the real systemd, and checks what an administrator would see: the unit's
state and journal, the server's process, the files it writes through the unit's hardening, and
its answers to GET /api/v4/system/ping, asked from the host over loopback (containers share
the host's network namespace, so each test gets its own port via the environment file).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Literal

import pytest

from tests.support import harness
from tests.support.packages import Built, PackageFactory
from tests.support.scenario import BACKUPS, CONFIG, LOGS, PLUGINS, Site, assert_nothing_lost, free_port

pytestmark = pytest.mark.systemd

V1, V2 = "10.5.2", "10.11.1"
PACKAGE = "mattermost"
UNIT = "mattermost.service"
USER = "mattermost"
PENDING = f"{BACKUPS}/pending"
MIGRATE_LOG = f"{LOGS}/package-upgrade.log"
LAST_CONFIGURED = f"{BACKUPS}/last-configured-version"
SERVER_LOG = f"{LOGS}/mattermost.log"
# What the sample release unpacks from prepackaged_plugins/ on amd64.
PREPACKAGED_PLUGINS = ("com.mattermost.calls", "playbooks")
CAP_NET_BIND_SERVICE = 1 << 10

Format = Literal["deb", "rpm"]

# Loopback requests must never go through a proxy from the caller's environment.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ping(url: str, timeout: float = 2.0) -> str:
    """The version the server reports; OSError when nothing answers."""
    with _http.open(url, timeout=timeout) as reply:
        body = json.loads(reply.read())
    assert body["status"] == "OK", body
    return str(body["version"])


def answers(url: str) -> bool:
    try:
        ping(url)
    except OSError:
        return False
    return True


def schema_of(version: str) -> int:
    """The simulated database's schema version after `version` migrated it (fake_mattermost)."""
    major, minor, patch = (int(n) for n in version.split("."))
    return major * 10000 + minor * 100 + patch


# --- timing an outage from the host -------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    start: float  # time.monotonic() when the request was sent
    end: float  # ... and when it was answered or failed
    version: str | None  # None: no answer


class PingMonitor:
    """Pings the server from a host thread every `interval` s, to time an outage precisely.

    An outage starts when its first failed probe was sent, so a probe left hanging by a server
    that still accepts connections but no longer answers (shutting down) counts from then on;
    `timeout` only bounds how long one probe can hold up the next.
    """

    def __init__(self, url: str, *, interval: float = 0.02, timeout: float = 1.0) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.probes: list[Probe] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ping-monitor", daemon=True)

    def __enter__(self) -> PingMonitor:
        self._thread.start()
        # An outage only means something if the server was seen answering first.
        harness.wait_until(lambda: any(p.version for p in self.probes), timeout=10, what="a first ping")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                version: str | None = ping(self.url, timeout=self.timeout)
            except (OSError, ValueError):
                version = None
            self.probes.append(Probe(start, time.monotonic(), version))
            self._stop.wait(self.interval)

    def outages(self) -> list[tuple[Probe, Probe | None]]:
        """Each (first failed probe, first answered probe after it); None if still down."""
        found: list[tuple[Probe, Probe | None]] = []
        down: Probe | None = None
        for probe in self.probes:
            if probe.version is None and down is None:
                down = probe
            elif probe.version is not None and down is not None:
                found.append((down, probe))
                down = None
        if down is not None:
            found.append((down, None))
        return found


# --- one packaged server in a booted root -------------------------------------------------------


@dataclass
class Server:
    """The package installed in a booted root, driven the way an administrator drives it."""

    fmt: Format
    root: harness.Root
    box: harness.Booted
    port: int

    @property
    def site(self) -> Site:
        return Site(self.root)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v4/system/ping"

    # --- the package manager, inside the container so scripts reach the real systemd ---

    def rpm(self, *args: str) -> str:
        # The root's rpm runs inside the booted container, so its scriptlets reach systemd.
        proc = self.root.rpm(*args, nodeps=True)
        return proc.stdout + proc.stderr

    def install(self, built: Built, *options: str) -> str:
        """First install, or an upgrade (rpm -U); returns what the scripts printed."""
        if self.fmt == "deb":
            proc = self.root.dpkg(*options, "-i", built.deb)
            return proc.stdout + proc.stderr
        return self.rpm("-U", *options, self.root.copy_in(built.rpm))

    def remove(self) -> str:
        if self.fmt == "deb":
            proc = self.root.dpkg("-r", PACKAGE)
            return proc.stdout + proc.stderr
        return self.rpm("-e", PACKAGE)

    def start_running(self, built: Built, version: str) -> int:
        """Installed, configured and started by the administrator, answering as `version`;
        returns the MainPID."""
        self.install_configured(built)
        self.systemctl("start", UNIT)
        return self.assert_running(version)

    def install_configured(self, built: Built) -> None:
        """Install, then do what the package's next steps ask: a database, an address."""
        self.install(built)
        self.site.create_database()  # owned by the mattermost user the package created
        self.site.set_env(MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{self.port}")

    # --- systemd ---

    def reboot(self, booted: harness.BootFactory) -> None:
        """Power the container off and boot it again: what `enabled` is for."""
        self.box.stop()
        self.box = booted(self.root)

    def systemctl(self, *args: str) -> None:
        try:
            self.box.exec("systemctl", *args)
        except harness.CommandFailed as e:
            # systemctl only says "see journalctl"; show it.
            raise AssertionError(f"{e}\n--- journal ---\n{self.box.journal(UNIT)}") from None

    def show(self, *properties: str) -> dict[str, str]:
        out = self.box.exec("systemctl", "show", "-p", ",".join(properties), UNIT).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def is_enabled(self) -> str:
        return self.box.exec("systemctl", "is-enabled", UNIT, check=False).stdout.strip()

    def assert_running(self, version: str) -> int:
        """Active (READY=1 received), answering as `version`, as the service user; the MainPID."""
        props = self.show("ActiveState", "SubState", "Result", "MainPID")
        assert (props["ActiveState"], props["SubState"], props["Result"]) == (
            "active",
            "running",
            "success",
        ), f"{props}\n{self.box.journal(UNIT)}"
        assert ping(self.url) == version
        pid = int(props["MainPID"])
        assert self.box.exec("ps", "-o", "user=", "-p", str(pid)).stdout.strip() == USER
        return pid

    def assert_stopped(self) -> None:
        props = self.show("ActiveState", "MainPID")
        assert (props["ActiveState"], props["MainPID"]) == ("inactive", "0"), props
        # Nothing of the server survives outside the unit's bookkeeping either.
        left = self.box.exec("pgrep", "-a", "-u", USER, check=False)
        assert left.returncode == 1, f"processes of {USER} still running:\n{left.stdout}"
        assert not answers(self.url)

    def events(self) -> Counter[str]:
        """How often systemd logged Starting/Started/Stopping/Stopped for the unit."""
        out = self.box.exec("journalctl", "--no-pager", "-o", "cat", "-u", UNIT).stdout
        verbs = ("Starting", "Started", "Stopping", "Stopped")
        # systemd 249 and later name the unit ("Started mattermost.service - Mattermost
        # server."), Debian 11's 247 gives only its Description ("Started Mattermost server.").
        description = self.box.exec("systemctl", "show", "-P", "Description", UNIT).stdout.strip()
        names = (f"{UNIT} ", f"{description}.", f"{description}...")
        return Counter(
            verb
            for line in out.splitlines()
            for verb in verbs
            if any(line.startswith(f"{verb} {name}") for name in names)
        )

    def events_since(self, before: Counter[str], expected: Counter[str]) -> Counter[str]:
        """The unit's journal events since `before`, once at least `expected` have arrived
        (journald takes PID 1's messages asynchronously)."""
        delta: Counter[str] = Counter()

        def arrived() -> bool:
            nonlocal delta
            delta = self.events() - before
            return all(delta[verb] >= n for verb, n in expected.items())

        # On a timeout the caller's comparison shows what did arrive.
        with contextlib.suppress(AssertionError):
            harness.wait_until(arrived, timeout=10, what=f"journal events {dict(expected)}")
        return delta

    def migrate_log(self) -> str:
        """What the package's `mattermost db migrate` runs logged (none on a first install)."""
        return self.root.read_text(MIGRATE_LOG) if self.root.exists(MIGRATE_LOG) else ""

    def server_log(self) -> Counter[str]:
        """Starts and stops the server itself logged: it writes each line before going on."""
        lines = self.root.read_text(SERVER_LOG).splitlines() if self.root.exists(SERVER_LOG) else []
        msgs = [json.loads(line)["msg"] for line in lines]
        return Counter(m for m in msgs if m in {"Server is initializing...", "Stopping Server..."})

    # --- the server's process ---

    def proc_status(self, pid: int) -> dict[str, str]:
        out = self.box.exec("cat", f"/proc/{pid}/status").stdout
        return {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}

    def mounts(self, pid: int) -> dict[str, tuple[str, str]]:
        """Mount point -> (root of the mount within its filesystem, "ro"/"rw") as `pid` sees
        them; a later line over the same mount point is the one on top."""
        out = self.box.exec("cat", f"/proc/{pid}/mountinfo").stdout
        found: dict[str, tuple[str, str]] = {}
        for line in out.splitlines():
            fields = line.split()
            found[fields[4]] = (fields[3], fields[5].split(",")[0])
        return found


@pytest.fixture
def releases(packages: PackageFactory) -> tuple[Built, Built]:
    # Per test (the factory builds each once): a test on another generation gets its build.
    return packages.build(V1), packages.build(V2)


@pytest.fixture(params=["deb", "rpm"])
def server(request: pytest.FixtureRequest, root: harness.Root, booted: harness.BootFactory) -> Server:
    box = booted()
    return Server(fmt=request.param, root=root, box=box, port=free_port())


# The rpm-only scenarios: the same `server` fixture, with only its rpm parameter.
rpm_only = pytest.mark.parametrize("server", ["rpm"], indirect=True)


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.generations
def test_start_runs_ready_hardened_server_as_service_user(
    server: Server, releases: tuple[Built, Built]
) -> None:
    server.install_configured(releases[0])
    # A first install enables the unit but never starts an unconfigured server.
    assert server.is_enabled() == "enabled"
    assert server.show("ActiveState")["ActiveState"] == "inactive"
    shipped = server.root.read_text(CONFIG)

    server.systemctl("start", UNIT)
    # Type=notify: `systemctl start` returns once READY=1 arrived, which the server sends after
    # it listens, so the very first request must be answered; no polling here.
    assert ping(server.url) == V1
    props = server.show("Type", "ActiveState", "SubState", "NRestarts")
    assert props == {"Type": "notify", "ActiveState": "active", "SubState": "running", "NRestarts": "0"}
    pid = server.assert_running(V1)

    status = server.proc_status(pid)
    uid = server.box.exec("id", "-u", USER).stdout.strip()
    gid = server.box.exec("id", "-g", USER).stdout.strip()
    assert status["Uid"].split() == [uid] * 4  # real, effective, saved, filesystem
    assert status["Gid"].split() == [gid] * 4
    # The hardening is in force inside the container, not skipped: no privileges beyond binding
    # low ports, no way to regain any, and the file system namespace the unit asks for.
    assert status["NoNewPrivs"] == "1"
    for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[cap], 16) == CAP_NET_BIND_SERVICE, (cap, status[cap])
    mounts = server.mounts(pid)
    assert mounts["/usr"][1] == "ro"  # ProtectSystem=full
    assert mounts["/etc"][1] == "ro"
    assert mounts["/etc/mattermost/config"][1] == "rw"  # ReadWritePaths=
    assert "systemd-private-" in mounts["/tmp"][0]  # PrivateTmp=
    assert "inaccessible" in mounts["/home"][0]  # ProtectHome=
    # nspawn already confines the whole container with a seccomp filter; the unit's own
    # (RestrictSUIDSGID=, ProtectKernelModules=, ...) stack on top of it.
    container = server.proc_status(1)
    assert int(status["Seccomp_filters"]) > int(container["Seccomp_filters"]), (status, container)

    # ... and yet the server wrote what it must. config.json: rewritten through a temporary file
    # in /etc/mattermost, the way Go's json.MarshalIndent writes it (4 spaces, no final newline,
    # where jq's copy from the package ended in one), with its generated secrets.
    written = server.root.read_text(CONFIG)
    assert written != shipped and shipped.endswith("}\n")
    assert written.startswith('{\n    "') and written.endswith("\n}")
    config = json.loads(written)
    assert len(config["SqlSettings"]["AtRestEncryptKey"]) == 32
    assert len(config["FileSettings"]["PublicLinkSalt"]) == 32
    info = server.root.stat(CONFIG)
    assert (info.owner, info.group, info.mode) == (USER, USER, 0o600)
    leftovers = [
        p.name for p in server.root.path("/etc/mattermost/config").iterdir() if p.name.startswith(".")
    ]
    assert leftovers == []  # the temporary file was renamed over config.json
    # Its log, with no error (a failed file-store write check or plugin start would log one).
    log = [json.loads(line) for line in server.root.read_text(SERVER_LOG).splitlines()]
    assert any(e["msg"] == f"Server is listening on 127.0.0.1:{server.port}" for e in log)
    assert [e for e in log if e["level"] != "info"] == []
    assert server.root.stat(SERVER_LOG).owner == USER
    # Its prepackaged plugins, unpacked into the package's plugin directory.
    for plugin in PREPACKAGED_PLUGINS:
        manifest = f"{PLUGINS}/{plugin}/plugin.json"
        assert server.root.exists(manifest), manifest
        assert server.root.stat(manifest).owner == USER
    # And the database it migrated on its first start.
    assert server.site.schema() == schema_of(V1)


@pytest.mark.generations
def test_upgrade_while_running_restarts_once(
    server: Server, releases: tuple[Built, Built], record_property: Callable[[str, object], None]
) -> None:
    v1, v2 = releases
    old_pid = server.start_running(v1, V1)
    # A site in use: uploads, a plugin, and an override the upgrade must apply.
    server.site.add_files()
    server.site.add_override("50-site.json", {"TeamSettings": {"SiteName": "Upgraded site"}})
    before = server.site.state()
    events, logged = server.events(), server.server_log()

    with PingMonitor(server.url) as monitor:
        said = server.install(v2)
        # The package command only returns once the new server answers.
        assert ping(server.url) == V2

    # Stopped before the new files were unpacked (rpm: see the scriptlet-order test below).
    if server.fmt == "deb":
        stop, unpack = said.find("mattermost: stopping mattermost.service"), said.find("Unpacking mattermost")
        assert -1 < stop < unpack, said

    new_pid = server.assert_running(V2)
    assert new_pid != old_pid
    # Exactly one stop and one start: in systemd's journal, in the server's own log, and no
    # automatic restart (Restart=always would hide a crash).
    once = Counter({"Stopping": 1, "Stopped": 1, "Starting": 1, "Started": 1})
    assert server.events_since(events, once) == once, server.box.journal(UNIT)
    assert server.server_log() - logged == Counter({"Server is initializing...": 1, "Stopping Server...": 1})
    assert server.show("NRestarts")["NRestarts"] == "0"
    assert server.is_enabled() == "enabled"
    assert server.site.schema() == schema_of(V2)
    assert not server.root.exists(PENDING, follow_symlinks=False)
    # Nothing lost, though the new server has run since: it adds its new keys, refreshes its
    # prepackaged plugins and appends to its log, so the files compared are the site's own.
    after = server.site.state()
    own = {
        path: digest for path, digest in before.files.items() if "/teams/" in path or "com.example." in path
    }
    assert own
    assert_nothing_lost(replace(before, files=own), after, changed_keys=frozenset({"TeamSettings.SiteName"}))
    assert after.config["TeamSettings"]["SiteName"] == "Upgraded site"

    # One outage, ended by the new version: the old one never answered again after its stop.
    outages = monitor.outages()
    assert len(outages) == 1, outages
    (down, up) = outages[0]
    assert up is not None and up.version == V2
    downtime = up.end - down.start
    print(f"\nupgrade downtime {server.fmt}: {downtime:.2f} s")
    record_property(f"upgrade_downtime_{server.fmt}_s", round(downtime, 3))


def test_enabled_stopped_service_stays_stopped_across_upgrade(
    server: Server, releases: tuple[Built, Built], booted: harness.BootFactory
) -> None:
    v1, v2 = releases
    server.start_running(v1, V1)
    server.systemctl("stop", UNIT)
    events = server.events()

    server.install(v2)

    server.assert_stopped()
    assert server.is_enabled() == "enabled"
    assert server.events_since(events, Counter()) == Counter()
    # The upgrade still finished while the server was down: `mattermost db migrate` ran.
    assert server.site.schema() == schema_of(V2)
    assert not server.root.exists(PENDING, follow_symlinks=False)
    # Still enabled in the way that matters: the next boot starts the new version.
    server.reboot(booted)
    server.assert_running(V2)


def test_upgrade_whose_server_cannot_start_finishes_and_a_start_retries(
    server: Server, releases: tuple[Built, Built]
) -> None:
    v1, v2 = releases
    server.start_running(v1, V1)
    # The database goes away under the running server (which only reads the file at start).
    server.site.set_env(MMPKG_SAMPLE_DB_UNREACHABLE="1", MMPKG_SAMPLE_DB_RETRY_SECONDS="0")

    said = server.install(v2)

    # The package is installed; the migration and the start were each reported in one line.
    assert (
        f"mattermost: warning: the database cannot be reached; the server will migrate it when it next starts (log: {MIGRATE_LOG})"
        in said
    )
    assert f"mattermost: warning: {UNIT} did not start; see 'journalctl -u {UNIT}'" in said
    if server.fmt == "deb":
        assert server.root.dpkg_status(PACKAGE) == "install ok installed"
    else:
        assert server.root.rpm_query("--queryformat", "%{VERSION}", PACKAGE) == V2
    assert not answers(server.url)
    assert server.site.schema() == schema_of(V1)
    assert server.is_enabled() == "enabled"

    # Once the database is back, starting the service is the whole retry: the server migrates.
    server.site.set_env(MMPKG_SAMPLE_DB_UNREACHABLE="0")
    server.systemctl("restart", UNIT)
    server.assert_running(V2)
    assert server.site.schema() == schema_of(V2)


def test_disabled_stopped_service_stays_disabled_across_upgrade(
    server: Server, releases: tuple[Built, Built], booted: harness.BootFactory
) -> None:
    v1, v2 = releases
    server.start_running(v1, V1)
    server.systemctl("disable", "--now", UNIT)
    assert server.is_enabled() == "disabled"
    events = server.events()

    server.install(v2)

    assert server.is_enabled() == "disabled"
    server.assert_stopped()
    assert server.events_since(events, Counter()) == Counter()
    assert server.site.schema() == schema_of(V2)
    # Nor does the next boot start it.
    server.reboot(booted)
    assert server.is_enabled() == "disabled"
    server.assert_stopped()


def test_disabled_running_service_across_upgrade(server: Server, releases: tuple[Built, Built]) -> None:
    v1, v2 = releases
    server.install_configured(v1)
    server.systemctl("disable", UNIT)
    server.systemctl("start", UNIT)  # running by hand, not at boot
    server.assert_running(V1)

    said = server.install(v2)

    assert server.is_enabled() == "disabled"
    assert server.site.schema() == schema_of(V2)
    if server.fmt == "deb":
        # Debian's deb-systemd-invoke never starts a disabled unit; the upgrade says so at once
        # instead of waiting for an answer that cannot come.
        assert f"mattermost: warning: {UNIT} is disabled, so it was not started again" in said
        assert "waiting" not in said and "does not answer" not in said
        server.assert_stopped()
        server.systemctl("start", UNIT)
    else:
        # rpm's scriptlets start what ran before, as %systemd_postun_with_restart would. The only
        # warnings are that the stand-in database is no PostgreSQL to dump, or to ask its version.
        warnings = [line for line in said.splitlines() if "warning" in line]
        assert all("not backed up" in line or "cannot tell which PostgreSQL" in line for line in warnings), (
            said
        )
    server.assert_running(V2)


def test_apply_overrides_refuses_a_broken_file_without_stopping_the_server(
    server: Server, releases: tuple[Built, Built]
) -> None:
    pid = server.start_running(releases[0], V1)
    server.root.run("install", "-d", "/etc/mattermost/overrides.d")
    server.root.write_text("/etc/mattermost/overrides.d/10-typo.json", '{"TeamSettings": ')

    proc = server.box.exec("mattermost-pkg", "apply-overrides", check=False)

    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        "mattermost: error: /etc/mattermost/overrides.d/10-typo.json is not a JSON object"
        " (parse error: Unfinished JSON term at EOF at line 1, column 17); fix or remove it and try again"
    )
    assert server.assert_running(V1) == pid


@pytest.mark.parametrize("server", ["deb"], indirect=True)
def test_deb_deconfigure_leaves_the_server_running(server: Server, releases: tuple[Built, Built]) -> None:
    # dpkg --auto-deconfigure calls this when another package breaks one of ours; the files
    # stay and postinst configure follows, so the server has no reason to stop.
    pid = server.start_running(releases[0], V1)

    server.box.exec("/var/lib/dpkg/info/mattermost.prerm", "deconfigure", "in-favour", "jq-ng", "2.0")

    assert server.assert_running(V1) == pid


def test_remove_stops_the_service(server: Server, releases: tuple[Built, Built]) -> None:
    server.start_running(releases[0], V1)
    events = server.events()

    server.remove()

    server.assert_stopped()
    once = Counter({"Stopping": 1, "Stopped": 1})
    assert server.events_since(events, once) == once, server.box.journal(UNIT)
    # Nor can anything start it again: dpkg masks a removed unit (deb-systemd-helper), rpm
    # deletes the unit file and reloads systemd.
    if server.fmt == "deb":
        assert server.is_enabled() == "masked"
    else:
        assert server.show("LoadState")["LoadState"] == "not-found"


@rpm_only
def test_rpm_upgrade_old_scriptlets_leave_the_service_alone(
    server: Server, releases: tuple[Built, Built]
) -> None:
    v1, v2 = releases
    old_pid = server.start_running(v1, V1)
    events = server.events()

    # -vv logs each scriptlet as it starts; 2>&1 keeps its order among what the scripts print.
    pkg = server.root.copy_in(v2.rpm)
    out = server.root.sh(f"rpm --dbpath {harness.RPM_DBPATH} --nodeps -U -vv {pkg} 2>&1").stdout

    old, new = f"{PACKAGE}-{V1}-1.x86_64", f"{PACKAGE}-{V2}-1.x86_64"
    order = [
        "mattermost: stopping mattermost.service",  # the new %pre
        f"%post({new}): scriptlet start",
        f"%preun({old}): scriptlet start",
        f"%postun({old}): scriptlet start",
        f"%posttrans({new}): scriptlet start",
        "mattermost: starting mattermost.service",  # the only start, from %posttrans
    ]
    positions = [out.find(marker) for marker in order]
    assert -1 not in positions and positions == sorted(positions), (order, positions, out)
    # So the old package's %preun and %postun ran between the stop and the start, and neither
    # stopped, disabled nor restarted anything.
    assert server.is_enabled() == "enabled"
    assert server.assert_running(V2) != old_pid
    once = Counter({"Stopping": 1, "Stopped": 1, "Starting": 1, "Started": 1})
    assert server.events_since(events, once) == once, server.box.journal(UNIT)
    assert server.show("NRestarts")["NRestarts"] == "0"


@rpm_only
def test_rpm_start_finishes_an_upgrade_whose_posttrans_was_skipped(
    server: Server, releases: tuple[Built, Built]
) -> None:
    v1, v2 = releases
    server.start_running(v1, V1)
    # An administrator's override, due to be merged by the upgrade while the server is down.
    server.site.add_override("50-site.json", {"TeamSettings": {"SiteName": "Resumed"}})

    server.install(v2, "--noposttrans")

    # What %posttrans would have finished is left pending, with the server stopped by %pre.
    server.assert_stopped()
    assert server.root.exists(PENDING, follow_symlinks=False)
    assert "was_running=1" in server.root.read_text(f"{PENDING}/state")
    assert server.site.schema() == schema_of(V1)
    assert f"{V2} db migrate" not in server.migrate_log()

    server.systemctl("start", UNIT)

    # ExecStartPre=+mattermost-pkg resume finished the job before the new server started. The
    # server would migrate its database itself too: the package's log shows who did.
    server.assert_running(V2)
    assert server.site.schema() == schema_of(V2)
    assert re.search(rf"{re.escape(V2)} db migrate, exit 0 in \d+\.\d{{3}} s\n", server.migrate_log())
    assert not server.root.exists(PENDING, follow_symlinks=False)
    assert server.root.read_json(CONFIG)["TeamSettings"]["SiteName"] == "Resumed"
    assert server.root.read_text(LAST_CONFIGURED).strip() == V2
    assert f"finishing the upgrade to {V2}" in server.box.journal(UNIT)
