"""Install tests: what an administrator does with the packages, non-interactively.

Real dpkg/apt and rpm/dnf install, upgrade, remove and purge mmpkg's packages of sample releases
in throw-away roots (tests/support/harness.py); the fake server really runs in the root (tests/support/scenario.py)
so that config.json, the file store, plugins, logs and the simulated database look like a
running site's. Every assertion is on what the tools and files say afterwards.

Each scenario is written once against `Pkg`, which speaks one package manager: the .deb through
dpkg or apt, the .rpm through rpm or dnf (from a local repository). Every package-manager command
runs without --force-conf* and with stdin at EOF, so a conffile prompt fails the test.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import schema_number
from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.scenario import (
    BACKUPS,
    CLIENT_PLUGINS,
    CONFIG,
    CONFIG_DIR,
    DB_DIR,
    DB_FILE,
    ENV_FILE,
    ETC,
    EXPECTED_OWNERS,
    LOGS,
    PLUGINS,
    STORE,
    Site,
    State,
    assert_nothing_lost,
)

pytestmark = pytest.mark.install

V0, V1, V2, RC, V3 = "9.11.0", "10.5.2", "10.11.1", "11.0.0-rc1", "11.0.0"

USER = "mattermost"
STATE_DIR = "/var/lib/mattermost"
DEFAULTS = "/usr/share/mattermost/config.defaults.json"
ADMIN_COMMAND = "/usr/sbin/mattermost-pkg"
MIGRATE_LOG = f"{LOGS}/package-upgrade.log"
SERVER_LOG = f"{LOGS}/mattermost.log"
PENDING = f"{BACKUPS}/pending"
UNIT = "mattermost.service"
WANTS = f"/etc/systemd/system/multi-user.target.wants/{UNIT}"
UNIT_FILE = {"deb": f"/lib/systemd/system/{UNIT}", "rpm": f"/usr/lib/systemd/system/{UNIT}"}
# What the package ships outside /etc and the kept trees: all of it goes on remove.
RELEASE_FILES = ("/opt/mattermost/bin/mattermost", "/opt/mattermost/config", DEFAULTS, ADMIN_COMMAND)
# Configuration layer 1 (docs/design.md, configuration layers): where the package puts data,
# plugins, logs and the local-mode socket.
INSTALL_DEFAULTS = {
    "ServiceSettings.LocalModeSocketLocation": "/run/mattermost/mattermost_local.socket",
    "NotificationLogSettings.FileLocation": LOGS,
    "FileSettings.Directory": f"{STATE_DIR}/data/",
    "LogSettings.FileLocation": LOGS,
    "PluginSettings.Directory": f"{STATE_DIR}/plugins",
    "PluginSettings.ClientDirectory": f"{STATE_DIR}/client/plugins",
}

Settings = tuple[tuple[str, object], ...]
# An organisation's enforced settings, as `mmpkg build --set` ships them (layer 2).
ORG: Settings = (("TeamSettings.SiteName", "Example Chat"),)
# A later build of the same organisation enforces one more setting.
ORG_V2: Settings = (*ORG, ("ServiceSettings.MaximumLoginAttempts", 5))


class Tool(StrEnum):
    DPKG = "dpkg"
    APT = "apt"
    RPM = "rpm"
    DNF = "dnf"

    @property
    def fmt(self) -> str:
        return "deb" if self in {Tool.DPKG, Tool.APT} else "rpm"


ALL_TOOLS = tuple(Tool)
# What an administrator types for each action, per tool (rpm has no purge).
COMMANDS: dict[str, dict[Tool, tuple[str, ...]]] = {
    "install": {
        Tool.DPKG: ("dpkg", "-i"), Tool.APT: ("apt-get", "install", "-y"),
        Tool.RPM: ("rpm", "-i"), Tool.DNF: ("dnf", "install"),
    },
    "upgrade": {
        Tool.DPKG: ("dpkg", "-i"), Tool.APT: ("apt-get", "install", "-y"),
        Tool.RPM: ("rpm", "-U"), Tool.DNF: ("dnf", "upgrade"),
    },
    "reinstall": {
        Tool.DPKG: ("dpkg", "-i"), Tool.APT: ("apt-get", "install", "-y", "--reinstall"),
        Tool.RPM: ("rpm", "-U", "--replacepkgs"), Tool.DNF: ("dnf", "reinstall"),
    },
    "remove": {
        Tool.DPKG: ("dpkg", "-r"), Tool.APT: ("apt-get", "remove", "-y"),
        Tool.RPM: ("rpm", "-e"), Tool.DNF: ("dnf", "remove"),
    },
    "purge": {Tool.DPKG: ("dpkg", "-P"), Tool.APT: ("apt-get", "purge", "-y")},
}  # fmt: skip
# What an administrator types for each format; rows that depend on the format, not on the
# front end, run once per format with these.
ADMIN_TOOLS = (Tool.APT, Tool.DNF)
# The plain tools, whose environment reaches the maintainer scripts most directly.
LOW_TOOLS = (Tool.DPKG, Tool.RPM)


@dataclass
class Pkg:
    """One package manager on one root: install/upgrade/reinstall/remove/purge a sample release.

    `env` is added to the environment of every package-manager command, which dpkg, apt, rpm and
    dnf all pass on to the maintainer scripts (MMPKG_BACKUP_KEEP, MMPKG_PURGE_DATA).
    """

    root: harness.Root
    packages: PackageFactory
    tool: Tool
    repos: Path
    edition: Edition = Edition.ENTERPRISE
    arch: Arch = Arch.AMD64
    env: dict[str, str] = field(default_factory=dict)
    _repo_numbers: Iterator[int] = field(default_factory=count)

    @property
    def fmt(self) -> str:
        return self.tool.fmt

    @property
    def name(self) -> str:
        return self.edition.package_name

    def file(self, version: str, *, settings: Settings = (), revision: int = 1) -> Path:
        built = self.packages.build(
            version, edition=self.edition, arch=self.arch, settings=settings, revision=revision
        )
        return built.deb if self.fmt == "deb" else built.rpm

    def install(
        self,
        version: str,
        *,
        settings: Settings = (),
        revision: int = 1,
        extra: Sequence[str] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """A first install: dpkg -i, apt-get install ./x.deb, rpm -i, dnf install."""
        path = self.file(version, settings=settings, revision=revision)
        return self._with_file(COMMANDS["install"][self.tool], path, extra, check)

    def upgrade(
        self, version: str, *, settings: Settings = (), revision: int = 1, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """dpkg -i, apt-get install ./x.deb, rpm -U, dnf upgrade."""
        path = self.file(version, settings=settings, revision=revision)
        return self._with_file(COMMANDS["upgrade"][self.tool], path, (), check)

    def reinstall(
        self, version: str, *, settings: Settings = (), revision: int = 1
    ) -> subprocess.CompletedProcess[str]:
        """The same version again: dpkg -i, apt-get install --reinstall, rpm -U --replacepkgs,
        dnf reinstall."""
        path = self.file(version, settings=settings, revision=revision)
        return self._with_file(COMMANDS["reinstall"][self.tool], path, (), True)

    def remove(self) -> subprocess.CompletedProcess[str]:
        """dpkg -r, apt-get remove, rpm -e, dnf remove."""
        return self._run((*COMMANDS["remove"][self.tool], self.name), None, True)

    def purge(self) -> subprocess.CompletedProcess[str]:
        """dpkg -P, apt-get purge (rpm has no purge)."""
        return self._run((*COMMANDS["purge"][self.tool], self.name), None, True)

    def installed_version(self) -> str | None:
        """The package's version-revision as the package manager records it, None if not installed."""
        if self.fmt == "deb":
            if self.root.dpkg_status(self.name) != "install ok installed":
                return None
            return self.root.run("dpkg-query", "-W", "-f=${Version}", self.name).stdout
        if not self.root.rpm_installed(self.name):
            return None
        return self.root.rpm_query("--queryformat", "%{VERSION}-%{RELEASE}", self.name)

    def assert_installed(self, version: str, revision: int = 1) -> None:
        assert self.installed_version() == f"{MattermostVersion.parse(version).package_version}-{revision}"

    def _with_file(
        self, command: Sequence[str], path: Path, extra: Sequence[str], check: bool
    ) -> subprocess.CompletedProcess[str]:
        if self.tool is Tool.DNF:
            # dnf installs by name from a repository holding just this build.
            repo = harness.make_local_rpm_repo([path], self.repos / str(next(self._repo_numbers)))
            return self._run((*command, *extra, self.name), repo, check)
        return self._run((*command, *extra, self.root.copy_in(path)), None, check)

    def _run(self, argv: Sequence[str], repo: Path | None, check: bool) -> subprocess.CompletedProcess[str]:
        # Inside the root, with its own dpkg/apt or rpm/dnf, plus self.env (the administrator's
        # MMPKG_* switches, which the scripts read from their environment).
        if argv[0] == "rpm":
            return self.root.rpm(*argv[1:], nodeps=True, env=self.env, check=check)
        if argv[0] == "dnf":
            return self.root.dnf(*argv[1:], repo_dir=repo, env=self.env, check=check)
        # No --force-conf* for dpkg: a conffile prompt at EOF fails.
        return self.root.run(*argv, env=self.env, check=check)


@pytest.fixture
def pkg(request: pytest.FixtureRequest, root: harness.Root, packages: PackageFactory, tmp_path: Path) -> Pkg:
    """`Pkg` for the tool named by the test's parameter (indirect parametrization)."""
    tool = Tool(request.param)
    if tool is Tool.RPM:
        harness.require(*harness.RPM_TOOLS)
    elif tool is Tool.DNF:
        harness.require(*harness.DNF_TOOLS)
    return Pkg(root, packages, tool, tmp_path / "repos")


@pytest.fixture
def site(root: harness.Root) -> Site:
    return Site(root)


# --- helpers ------------------------------------------------------------------------------------


def setting(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def with_settings(config: Mapping[str, Any], values: Mapping[str, object]) -> dict[str, Any]:
    out = copy.deepcopy(dict(config))
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def schema_of(version: str) -> int:
    return schema_number(MattermostVersion.parse(version))


def since_key(version: str) -> str:
    """The key each sample version adds to ExperimentalSettings (sample_release/config_defaults.py)."""
    return f"SampleSince{schema_of(version):06d}"


def config_bytes(root: harness.Root) -> bytes:
    return root.path(CONFIG).read_bytes()


def snapshots(root: harness.Root) -> list[str]:
    """The pre-upgrade snapshot directories in /var/backups/mattermost, by name."""
    base = root.path(BACKUPS)
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.is_symlink() and "_to_" in p.name)


def snapshot(root: harness.Root, old: str, new: str) -> str:
    """The one snapshot of the upgrade old → new, named <stamp>_<from>_to_<to>."""
    pattern = re.compile(rf"\d{{8}}T\d{{6}}Z_{re.escape(old)}_to_{re.escape(new)}(\.\d+)?")
    found = [name for name in snapshots(root) if pattern.fullmatch(name)]
    assert len(found) == 1, f"snapshots of {old} -> {new}: {snapshots(root)}"
    return f"{BACKUPS}/{found[0]}"


def snapshot_transition(root: harness.Root, name: str) -> tuple[str, str]:
    """(from, to) of a snapshot, from the record the upgrade wrote next to the copy."""
    fields = dict(line.partition("=")[::2] for line in root.read_text(f"{BACKUPS}/{name}/state").splitlines())
    return fields["from"], fields["to"]


def assert_owners(root: harness.Root, paths: Sequence[str] = tuple(EXPECTED_OWNERS)) -> None:
    for path in paths:
        info = root.stat(path)
        assert (info.owner, info.group, info.mode) == EXPECTED_OWNERS[path], path


def assert_upgrade_finished(root: harness.Root) -> None:
    """No unfinished-upgrade record left for the unit's ExecStartPre to find."""
    assert not root.exists(PENDING, follow_symlinks=False)


def assert_migrated(root: harness.Root, site: Site, version: str, *, applied: bool = True) -> None:
    """`mattermost db migrate` of `version` ran, succeeded and ran as the service user; `applied`:
    it had migrations to apply (a release candidate's final release has none)."""
    assert site.schema() == schema_of(version)
    log = root.read_text(MIGRATE_LOG)
    entries = re.findall(r"^== \S+: (\S+) db migrate, exit (\d+) in \d+\.\d{3} s\n([^\n]*)$", log, re.M)
    outcome = "Database successfully migrated" if applied else "No migrations to apply"
    assert any(e[:2] == (version, "0") and outcome in e[2] for e in entries), log
    # The binary warns on stderr (captured in the log) when it runs as root ...
    assert "Running Mattermost as root" not in log
    # ... and the database file is rewritten by whoever migrated it.
    assert root.stat(DB_FILE).owner == USER


def file_hashes(root: harness.Root, trees: Sequence[str]) -> dict[str, str]:
    """sha256 of every regular file under `trees`, keyed like State.files."""
    out: dict[str, str] = {}
    for tree in trees:
        base = root.path(tree)
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink()):
            out[f"{tree}/{path.relative_to(base)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def running_site(site: Site) -> State:
    """A site that has been used: a database, a server that ran, uploads and plugins."""
    site.create_database()
    with site.serve():
        pass
    site.add_files()
    return site.state()


# --- A: fresh install and remove ----------------------------------------------------------------


@pytest.mark.generations
@pytest.mark.parametrize("pkg", ALL_TOOLS, indirect=True)
def test_fresh_install_then_remove_keeps_the_site(
    pkg: Pkg, root: harness.Root, site: Site, packages: PackageFactory
) -> None:
    out = pkg.install(V1, settings=ORG).stdout
    pkg.assert_installed(V1)
    assert "systemctl start mattermost.service" in out  # the next steps are printed

    # The release under /opt/mattermost, its config directory a link to /etc/mattermost.
    for path in RELEASE_FILES:
        assert root.exists(path), path
    assert root.exists(UNIT_FILE[pkg.fmt])
    link = root.path("/opt/mattermost/config", follow_symlinks=False)
    assert link.is_symlink() and str(link.readlink()) == "/etc/mattermost/config"

    # The system user and group.
    user = root.run("getent", "passwd", USER).stdout.strip().split(":")
    group = root.run("getent", "group", USER).stdout.strip().split(":")
    assert user[5:] == [STATE_DIR, "/usr/sbin/nologin"]
    assert int(user[2]) < 1000 and user[3] == group[2]  # a system user in its own group

    assert_owners(root)

    # Enabled, as systemctl itself reports offline.
    assert root.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    assert root.path(WANTS, follow_symlinks=False).is_symlink()

    # config.json: upstream's defaults, the package's paths (layer 1) and the build-time
    # override (layer 2), nothing else. The defaults are the tarball's own config.json.
    defaults = root.read_json(DEFAULTS)
    with tarfile.open(packages.tarball(V1)) as tar:
        member = tar.extractfile("mattermost/config/config.json")
        assert member is not None
        assert json.load(member) == defaults
    config = root.read_json(CONFIG)
    assert config == with_settings(defaults, {**INSTALL_DEFAULTS, **dict(ORG)})

    version = root.run("runuser", "-u", USER, "--", "/opt/mattermost/bin/mattermost", "version")
    assert "Version: 10.5.2" in version.stdout.splitlines()

    # Nothing started: no server log, no database, no generated secrets.
    assert not root.exists(SERVER_LOG)
    assert not root.exists(DB_DIR)
    assert config["SqlSettings"]["AtRestEncryptKey"] == ""

    before = config_bytes(root)
    pkg.remove()
    assert pkg.installed_version() is None
    if pkg.fmt == "deb":
        assert root.dpkg_status(pkg.name) == "deinstall ok config-files"
    for path in (*RELEASE_FILES, UNIT_FILE[pkg.fmt]):
        assert not root.exists(path, follow_symlinks=False), path
    # rpm's %ghost %config(noreplace) config.json is neither removed nor renamed to .rpmsave.
    assert config_bytes(root) == before
    assert sorted(p.name for p in root.path(CONFIG_DIR).iterdir() if "config" in p.name) == ["config.json"]
    assert_owners(root, (ETC, CONFIG_DIR, CONFIG, STORE, PLUGINS, CLIENT_PLUGINS, LOGS, BACKUPS))
    assert root.run("getent", "passwd", USER, check=False).returncode == 0


@pytest.mark.parametrize(
    ("tool", "edition", "arch", "force"),
    [
        (Tool.DPKG, Edition.TEAM, Arch.AMD64, ()),
        (Tool.RPM, Edition.TEAM, Arch.AMD64, ()),
        (Tool.DPKG, Edition.ENTERPRISE, Arch.ARM64, ("--force-architecture",)),
        (Tool.RPM, Edition.ENTERPRISE, Arch.ARM64, ("--ignorearch",)),
    ],
    ids=["deb-team", "rpm-team", "deb-arm64", "rpm-arm64"],
)
def test_team_edition_and_arm64_install(
    root: harness.Root,
    packages: PackageFactory,
    tmp_path: Path,
    tool: Tool,
    edition: Edition,
    arch: Arch,
    force: tuple[str, ...],
) -> None:
    if tool is Tool.RPM:
        harness.require(*harness.RPM_TOOLS)
    pkg = Pkg(root, packages, tool, tmp_path, edition=edition, arch=arch)
    pkg.install(V1, extra=force)
    pkg.assert_installed(V1)
    if pkg.fmt == "deb":
        recorded = root.run("dpkg-query", "-W", "-f=${Architecture}", pkg.name).stdout
        assert recorded == {Arch.AMD64: "amd64", Arch.ARM64: "arm64"}[arch]
    else:
        recorded = root.rpm_query("--queryformat", "%{ARCH}", pkg.name)
        assert recorded == {Arch.AMD64: "x86_64", Arch.ARM64: "aarch64"}[arch]
    # Configured: the live configuration, the user and the enabled unit.
    assert setting(root.read_json(CONFIG), "FileSettings.Directory") == f"{STATE_DIR}/data/"
    assert_owners(root)
    assert root.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    if edition is Edition.TEAM:
        assert root.exists("/opt/mattermost/MIT-COMPILED-LICENSE.md")
        version = root.run("runuser", "-u", USER, "--", "/opt/mattermost/bin/mattermost", "version")
        assert "Build Enterprise Ready: false" in version.stdout


# --- B 1/2: upgrades lose nothing ---------------------------------------------------------------


@pytest.mark.generations
@pytest.mark.parametrize("pkg", ALL_TOOLS, indirect=True)
def test_upgrade_keeps_everything_and_reapplies_overrides(pkg: Pkg, root: harness.Root, site: Site) -> None:
    pkg.install(V1, settings=ORG)
    site.create_database()
    with site.serve() as url:
        assert site.ping_version(url) == V1
    # System Console saves: two keys no override names, and two an override will reclaim.
    site.edit_config("TeamSettings", "MaxUsersPerTeam", 250)
    site.edit_config("ServiceSettings", "SiteURL", "https://chat.example.com")
    site.edit_config("TeamSettings", "SiteName", "Renamed in the console")
    site.edit_config("EmailSettings", "FeedbackName", "Console sender")
    site.add_override("50-admin.json", {"EmailSettings": {"FeedbackName": "Example IT"}})
    site.add_files()
    with site.serve():
        pass
    before = site.state()
    before_bytes = config_bytes(root)
    secrets = (
        before.config["SqlSettings"]["AtRestEncryptKey"],
        before.config["FileSettings"]["PublicLinkSalt"],
    )
    assert all(len(s) == 32 for s in secrets)

    pkg.upgrade(V2, settings=ORG_V2)
    pkg.assert_installed(V2)
    after = site.state()

    overridden = {
        "TeamSettings.SiteName": "Example Chat",  # build-time, re-applied
        "ServiceSettings.MaximumLoginAttempts": 5,  # build-time, new in this build
        "EmailSettings.FeedbackName": "Example IT",  # the admin's overrides.d
    }
    assert_nothing_lost(before, after, changed_keys=frozenset(overridden))
    for key, value in overridden.items():
        assert setting(after.config, key) == value, key
    assert setting(after.config, "TeamSettings.MaxUsersPerTeam") == 250
    assert setting(after.config, "ServiceSettings.SiteURL") == "https://chat.example.com"
    assert (
        after.config["SqlSettings"]["AtRestEncryptKey"],
        after.config["FileSettings"]["PublicLinkSalt"],
    ) == secrets
    assert_owners(root)

    assert_migrated(root, site, V2)
    assert_upgrade_finished(root)
    # The snapshot is the configuration as it was just before the upgrade, byte for byte.
    snap = snapshot(root, V1, V2)
    assert root.path(f"{snap}/config/config.json").read_bytes() == before_bytes
    assert root.path(f"{snap}/etc-mattermost/overrides.d/50-admin.json").is_file()
    assert root.stat(snap).mode == 0o700

    with site.serve() as url:
        assert site.ping_version(url) == V2
    assert site.state().config["ExperimentalSettings"][since_key(V2)] is True


@pytest.mark.parametrize(
    ("tool", "steps"),
    [
        (Tool.DPKG, ((V2, 1), (RC, 1), (V3, 1))),
        (Tool.RPM, ((V2, 1), (RC, 1), (V3, 1))),
        (Tool.APT, ((V1, 2), (V1, 3), (V1, 4))),
        (Tool.DNF, ((V1, 2), (V1, 3), (V1, 4))),
    ],
    ids=["deb-versions", "rpm-versions", "deb-revisions", "rpm-revisions"],
)
def test_backup_retention_keeps_the_newest(
    root: harness.Root,
    site: Site,
    packages: PackageFactory,
    tmp_path: Path,
    tool: Tool,
    steps: tuple[tuple[str, int], ...],
) -> None:
    harness.require(
        *(harness.DNF_TOOLS if tool is Tool.DNF else harness.RPM_TOOLS if tool is Tool.RPM else ())
    )
    pkg = Pkg(root, packages, tool, tmp_path, env={"MMPKG_BACKUP_KEEP": "2"})
    pkg.install(V1)
    site.create_database()
    configs: list[bytes] = []
    previous = V1
    transitions = []
    for version, revision in steps:
        # Something to tell the snapshots apart by: the configuration each one saved.
        site.edit_config("TeamSettings", "SiteName", f"before {version}-{revision}")
        configs.append(config_bytes(root))
        pkg.upgrade(version, revision=revision)
        pkg.assert_installed(version, revision)
        transitions.append((previous, version))
        previous = version
    kept = snapshots(root)
    assert len(kept) == 2, kept
    # The two newest upgrades' snapshots, whatever the order of their names.
    saved = sorted(root.path(f"{BACKUPS}/{name}/config/config.json").read_bytes() for name in kept)
    assert saved == sorted(configs[-2:])
    assert sorted(snapshot_transition(root, name) for name in kept) == sorted(transitions[-2:])
    assert_upgrade_finished(root)


# --- B 3: upgrade chains ------------------------------------------------------------------------


@pytest.mark.parametrize("pkg", ADMIN_TOOLS, indirect=True)
@pytest.mark.parametrize(
    "chain",
    # V0 to V2 and V1 to V3 go across an ESR (10.5, 10.11): supported, though not tested upstream.
    [(V1, V2, V3), (V1, V3), (RC, V3), (V0, V2)],
    ids=["v1-v2-v3", "v1-v3", "rc-final", "9.11-v2"],
)
def test_upgrade_chain(pkg: Pkg, root: harness.Root, site: Site, chain: tuple[str, ...]) -> None:
    first, *later = chain
    pkg.install(first)
    before = running_site(site)
    previous = first
    for version in later:
        pkg.upgrade(version)
        pkg.assert_installed(version)
        assert_nothing_lost(before, site.state())
        assert_migrated(root, site, version, applied=schema_of(previous) != schema_of(version))
        previous = version
        assert_upgrade_finished(root)
        # The new server starts on what the upgrade left: it adds its own keys, upgrades the
        # prepackaged plugins and appends to its log, which the next step must keep.
        with site.serve() as url:
            assert site.ping_version(url) == MattermostVersion.parse(version).final
        before = site.state()
        for key in map(since_key, chain[: chain.index(version) + 1]):
            assert before.config["ExperimentalSettings"][key] is True, key
        assert site.schema() == schema_of(version)


# --- B 4: overrides and the environment file ----------------------------------------------------


@pytest.mark.parametrize("pkg", ADMIN_TOOLS, indirect=True)
def test_admin_overrides_added_between_upgrades(pkg: Pkg, root: harness.Root, site: Site) -> None:
    pkg.install(V1, settings=ORG)
    running_site(site)
    site.edit_config("TeamSettings", "MaxUsersPerTeam", 250)  # named by no override

    # Added after the install: nothing applies it until the next upgrade.
    site.add_override(
        "10-team.json", {"TeamSettings": {"SiteName": "Admin's name", "EnableOpenServer": True}}
    )
    site.add_override("20-later.json", {"TeamSettings": {"EnableOpenServer": False}})
    assert setting(root.read_json(CONFIG), "TeamSettings.SiteName") == "Example Chat"
    pkg.upgrade(V2, settings=ORG)
    config = root.read_json(CONFIG)
    assert setting(config, "TeamSettings.SiteName") == "Admin's name"  # layer 3 beats layer 2
    assert setting(config, "TeamSettings.EnableOpenServer") is False  # later file name wins
    assert setting(config, "TeamSettings.MaxUsersPerTeam") == 250

    # The console changes an overridden key and another override arrives before the next one.
    site.edit_config("TeamSettings", "SiteName", "Console again")
    site.add_override("30-new-section.json", {"AnnouncementSettings": {"BannerText": "Maintenance at 22:00"}})
    with site.serve():
        pass
    before = site.state()
    pkg.upgrade(V3, settings=ORG)
    after = site.state()
    assert_nothing_lost(
        before, after, changed_keys=frozenset({"TeamSettings.SiteName", "AnnouncementSettings.BannerText"})
    )
    assert setting(after.config, "TeamSettings.SiteName") == "Admin's name"
    assert setting(after.config, "AnnouncementSettings.BannerText") == "Maintenance at 22:00"
    assert setting(after.config, "TeamSettings.MaxUsersPerTeam") == 250


@pytest.mark.parametrize("pkg", ALL_TOOLS, indirect=True)
def test_edited_env_file_survives_upgrade_without_prompt(
    pkg: Pkg, root: harness.Root, site: Site, packages: PackageFactory
) -> None:
    pkg.install(V1)
    site.create_database()
    # The migration must read the file: it names the database the upgrade migrates.
    site.set_env(
        MM_SQLSETTINGS_DATASOURCE="postgres://mmuser:secret@localhost/mattermost_env?sslmode=disable",
        MM_SERVICESETTINGS_SITEURL="https://chat.example.com",
    )
    edited = root.path(ENV_FILE).read_bytes()

    # No --force-conf* and stdin at EOF (Pkg): a conffile prompt would fail the upgrade.
    pkg.upgrade(V2)
    pkg.assert_installed(V2)
    assert root.path(ENV_FILE).read_bytes() == edited
    assert_owners(root, (ENV_FILE,))
    leftovers = sorted(
        p.name for p in root.path("/etc/mattermost").iterdir() if p.name.startswith("mattermost.env.")
    )
    # The packaged file is the same in both versions, so neither format has a new one to offer.
    packaged = {packaged_env_file(packages.build(v), pkg.fmt) for v in (V1, V2)}
    assert len(packaged) == 1
    assert leftovers == []
    assert int(root.read_json(f"{DB_DIR}/mattermost_env.json")["schema_version"]) == schema_of(V2)
    assert not root.exists(DB_FILE)  # the default database was never used


def packaged_env_file(built: Any, fmt: str) -> str:
    """The packaged mattermost.env's digest as the package itself records it."""
    if fmt == "rpm":
        out = harness.run_host(
            ["rpm", "-qp", "--queryformat", "[%{FILEDIGESTS} %{FILENAMES}\\n]", built.rpm],
            env=harness.rpm_env(),
        ).stdout
    else:
        out = harness.run_host(["dpkg-deb", "-I", built.deb, "md5sums"]).stdout
    (line,) = [line for line in out.splitlines() if line.endswith("mattermost.env")]
    return line.split()[0]


@pytest.mark.parametrize("pkg", ADMIN_TOOLS, indirect=True)
def test_apply_overrides_command_without_upgrade(pkg: Pkg, root: harness.Root, site: Site) -> None:
    pkg.install(V1, settings=ORG)
    before = running_site(site)
    site.edit_config("TeamSettings", "SiteName", "Console name")
    before = site.state()
    site.add_override("40-email.json", {"EmailSettings": {"FeedbackName": "Example IT"}})

    denied = root.run("runuser", "-u", USER, "--", ADMIN_COMMAND, "apply-overrides", check=False)
    assert denied.returncode != 0 and "must run as root" in denied.stderr
    assert root.read_json(CONFIG) == before.config

    root.run(ADMIN_COMMAND, "apply-overrides")
    after = site.state()
    assert_nothing_lost(
        before, after, changed_keys=frozenset({"TeamSettings.SiteName", "EmailSettings.FeedbackName"})
    )
    assert setting(after.config, "EmailSettings.FeedbackName") == "Example IT"
    assert setting(after.config, "TeamSettings.SiteName") == "Example Chat"
    pkg.assert_installed(V1)
    assert snapshots(root) == []  # not an upgrade


@pytest.mark.parametrize("pkg", ADMIN_TOOLS, indirect=True)
def test_admin_command_status_backup_and_migrate(pkg: Pkg, root: harness.Root, site: Site) -> None:
    pkg.install(V1)
    running_site(site)
    site.add_override("40-email.json", {"EmailSettings": {"FeedbackName": "Example IT"}})
    proc = root.run(ADMIN_COMMAND, "status", check=False)
    # The sample server runs on its stand-in database, under upstream's example DataSource: a
    # real server could not, and status says so.
    assert proc.returncode == 1 and "SqlSettings.DataSource is still upstream's example" in proc.stderr
    status = proc.stdout
    for line in (
        f"package:        mattermost {V1}",
        "configuration:  /etc/mattermost/config/config.json (created once, never replaced)",
        "                - /etc/mattermost/overrides.d/40-email.json",
        f"file store:     {STATE_DIR}/data/",
        f"backups:        {BACKUPS}",
    ):
        assert line in status.splitlines(), status
    assert "pending:" not in status

    # backup: a snapshot now, named apart from the upgrades' snapshots.
    for command in ("backup", "migrate"):
        denied = root.run("runuser", "-u", USER, "--", ADMIN_COMMAND, command, check=False)
        assert denied.returncode != 0 and f"mattermost-pkg {command} must run as root" in denied.stderr
    said = root.run(ADMIN_COMMAND, "backup").stdout
    assert snapshots(root) == []
    (taken,) = (p.name for p in root.path(BACKUPS).glob(f"*_manual_{V1}"))
    assert f"saved the configuration, the file store in {BACKUPS}/{taken}" in said
    assert root.path(f"{BACKUPS}/{taken}/config/config.json").read_bytes() == config_bytes(root)
    assert root.stat(f"{BACKUPS}/{taken}").mode == 0o700

    # migrate: the upgrade could not reach the database; once it can, the command migrates it.
    site.set_env(MMPKG_SAMPLE_DB_UNREACHABLE="1", MMPKG_SAMPLE_DB_RETRY_SECONDS="0")
    pkg.upgrade(V2)
    assert site.schema() == schema_of(V1)
    unreachable = root.run(ADMIN_COMMAND, "migrate", check=False)
    assert unreachable.returncode != 0
    assert unreachable.stderr.strip().splitlines() == [
        f"mattermost: error: the database cannot be reached; see {MIGRATE_LOG}"
    ]
    site.set_env(MMPKG_SAMPLE_DB_UNREACHABLE="0")
    assert "the database is migrated" in root.run(ADMIN_COMMAND, "migrate").stdout
    assert_migrated(root, site, V2)

    unknown = root.run(ADMIN_COMMAND, "frobnicate", check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(
        "mattermost-pkg: unknown command 'frobnicate'\nUsage: mattermost-pkg COMMAND"
    )


# --- B 9: remove, reinstall, purge --------------------------------------------------------------


@pytest.mark.parametrize("distro", [harness.Distro("debian-13")], ids=["debian-13"])
@pytest.mark.parametrize("pkg", [Tool.RPM, Tool.DNF], indirect=True)
def test_scriptlets_without_network_leave_the_migration_to_the_server(
    pkg: Pkg, root: harness.Root, site: Site, distro: harness.Distro
) -> None:
    """Debian 13's rpm runs scriptlets in a network namespace with no address up: pg_dump
    cannot reach the database (localhost is ::1, then 127.0.0.1, neither up), so the upgrade
    warns and goes on, and does not wait minutes for a migration no packet can reach; the
    server, started by systemd outside that namespace, migrates at its start."""
    assert distro.rpm_scriptlets_offline
    root.rpm_offline_scriptlets()
    pkg.install(V1)
    before = running_site(site)
    proc = pkg.upgrade(V2)
    said = proc.stdout + proc.stderr
    offline = "this script runs without network, in a network namespace of its own"
    assert (
        f'pg_dump cannot connect to it (connection to server at "localhost" (::1), port 5432 failed: Cannot assign requested address); {offline}'
        in said
    )
    assert f"mattermost: not migrating the database from here; {offline}" in said
    pkg.assert_installed(V2)
    assert_nothing_lost(before, site.state())
    assert site.schema() == schema_of(V1)
    with site.serve() as url:
        assert site.ping_version(url) == V2
    assert site.schema() == schema_of(V2)


@pytest.mark.generations
@pytest.mark.parametrize("pkg", ALL_TOOLS, indirect=True)
def test_remove_keeps_site_and_reinstall_gives_it_back(pkg: Pkg, root: harness.Root, site: Site) -> None:
    pkg.install(V1)
    before = running_site(site)
    before_bytes = config_bytes(root)
    site.set_env(MM_SERVICESETTINGS_SITEURL="https://chat.example.com")
    env_bytes = root.path(ENV_FILE).read_bytes()

    pkg.remove()
    assert pkg.installed_version() is None
    # Kept in place, byte for byte, owner and mode: the configuration the server rewrote
    # (rpm: a %ghost %config is never removed nor saved as .rpmsave), the store, logs, the user.
    assert config_bytes(root) == before_bytes
    assert not root.exists(f"{CONFIG}.rpmsave")
    removed = site.state()
    assert removed.files == before.files
    assert {k: v for k, v in removed.owners.items() if k != ENV_FILE} == {
        k: v for k, v in before.owners.items() if k != ENV_FILE
    }
    assert root.run("getent", "passwd", USER, check=False).returncode == 0
    assert root.exists(SERVER_LOG)
    # The notification log is the package's too, not in the root-owned install directory.
    assert root.exists(f"{LOGS}/notifications.log")
    assert not root.exists("/opt/mattermost/bin/mattermost")
    # The edited environment file: a deb conffile stays until purge; rpm saves a modified
    # %config(noreplace) as .rpmsave on erase, as it does for every package.
    kept_env = ENV_FILE if pkg.fmt == "deb" else f"{ENV_FILE}.rpmsave"
    assert root.path(kept_env).read_bytes() == env_bytes

    pkg.install(V1)
    pkg.assert_installed(V1)
    assert config_bytes(root) == before_bytes
    after = site.state()
    assert_nothing_lost(before, after)
    with site.serve() as url:
        assert site.ping_version(url) == V1
    served = root.read_json(CONFIG)
    for key in ("SqlSettings.AtRestEncryptKey", "FileSettings.PublicLinkSalt"):
        assert setting(served, key) == setting(before.config, key), key


# What the server rewrites in place when SiteURL has a sub-path (upstream's subpath.go).
CLIENT = "/opt/mattermost/client"


def rewritten_assets(root: harness.Root) -> list[str]:
    base = root.path(CLIENT)
    found = [p for p in base.rglob("*") if p.name == "manifest.json" or p.suffix == ".css"]
    return [f"{CLIENT}/root.html", *sorted(f"{CLIENT}/{p.relative_to(base)}" for p in found)]


def verification(pkg: Pkg) -> list[str]:
    """What the package manager's own checks find changed in the installed package: rpm -V,
    or dpkg --verify and debsums (the host's, on the root's dpkg database)."""
    if pkg.fmt == "rpm":
        proc = pkg.root.rpm("-V", pkg.name, check=False)
        return [*proc.stdout.splitlines(), *proc.stderr.splitlines()]
    dpkg = pkg.root.run("dpkg", "--verify", pkg.name, check=False)
    debsums = harness.run_host(
        ["debsums", "--root", pkg.root.dir, "--all", "--silent", pkg.name], check=False
    )
    return [
        *dpkg.stdout.splitlines(),
        *dpkg.stderr.splitlines(),
        *debsums.stdout.splitlines(),
        *debsums.stderr.splitlines(),
    ]


def statoverrides(root: harness.Root) -> dict[str, str]:
    """dpkg-statoverride's records below the release: path -> "owner group mode"."""
    # Exit code 1: no record matches.
    out = root.run("dpkg-statoverride", "--list", "/opt/mattermost/*", check=False).stdout
    return {line.split(" ", 3)[3]: line.rsplit(" ", 1)[0] for line in out.splitlines()}


@pytest.mark.parametrize("pkg", ADMIN_TOOLS, indirect=True)
def test_verification_finds_nothing_the_package_did(pkg: Pkg, root: harness.Root, site: Site) -> None:
    """Files the server may rewrite are declared so: the service's group may write them, and
    the package's checksums do not cover them. After install, a sub-path server start and an
    upgrade, the package manager finds nothing changed."""
    if pkg.fmt == "deb":
        harness.require("debsums")
    pkg.install(V1)
    assert verification(pkg) == []
    site.create_database()
    site.edit_config("ServiceSettings", "SiteURL", "https://chat.example.com/chat")
    for version in (V1, V2):
        if version == V2:
            pkg.upgrade(V2)
            assert verification(pkg) == []
        assets = rewritten_assets(root)
        assert len(assets) >= 3
        with site.serve():
            pass
        for path in assets:
            assert "/chat/static/" in root.read_text(path), path
            info = root.stat(path)
            assert (info.owner, info.group, info.mode) == ("root", USER, 0o664), path
        assert verification(pkg) == []
        if pkg.fmt == "deb":
            # Recorded in dpkg's database, for exactly the files there are now.
            assert statoverrides(root) == {path: f"root {USER} 664" for path in assets}
    if pkg.fmt == "deb":
        pkg.purge()
        assert statoverrides(root) == {}


@pytest.mark.parametrize(
    ("pkg", "steps"),
    [
        (Tool.DPKG, ("remove", "purge")),
        (Tool.DPKG, ("purge",)),
        (Tool.APT, ("remove", "purge")),
        (Tool.APT, ("purge",)),
        (Tool.RPM, ("remove",)),
        (Tool.DNF, ("remove",)),
    ],
    ids=["dpkg-remove-purge", "dpkg-purge", "apt-remove-purge", "apt-purge", "rpm", "dnf"],
    indirect=["pkg"],
)
def test_removal_keeps_an_empty_opt(pkg: Pkg, root: harness.Root, steps: tuple[str, ...]) -> None:
    """/opt belongs to the system (base-files' postinst makes it; no package ships it): it
    stays when the package that put the only thing in it goes."""
    assert not any(root.path("/opt").iterdir())
    pkg.install(V1)
    for step in steps:
        getattr(pkg, step)()
        info = root.stat("/opt")
        assert (info.kind, info.owner, info.group, info.mode) == ("dir", "root", "root", 0o755), step
    assert pkg.installed_version() is None


@pytest.mark.parametrize("purge_data", [False, True], ids=["keep-store", "purge-data"])
@pytest.mark.parametrize("pkg", [Tool.DPKG, Tool.APT], indirect=True)
def test_purge(pkg: Pkg, root: harness.Root, site: Site, purge_data: bool) -> None:
    pkg.install(V1)
    before = running_site(site)
    pkg.upgrade(V2)  # leaves a snapshot in the backups
    assert snapshots(root)
    if purge_data:
        pkg.env["MMPKG_PURGE_DATA"] = "1"
    pkg.purge()
    assert root.dpkg_status(pkg.name) == "not-installed"
    assert not root.exists("/etc/mattermost", follow_symlinks=False)
    assert not root.exists(LOGS, follow_symlinks=False)
    assert root.run("getent", "passwd", USER, check=False).returncode == 0
    if purge_data:
        assert not root.exists(STATE_DIR, follow_symlinks=False)
        assert not root.exists(BACKUPS, follow_symlinks=False)
    else:
        store = {p: h for p, h in before.files.items() if not p.startswith(f"{LOGS}/")}
        assert store and file_hashes(root, (STORE, PLUGINS, CLIENT_PLUGINS)) == store
        assert_owners(root, (STORE, PLUGINS, CLIENT_PLUGINS, BACKUPS))
        assert snapshots(root)


@pytest.mark.parametrize("pkg", ALL_TOOLS, indirect=True)
def test_reinstall_same_version_changes_nothing(pkg: Pkg, root: harness.Root, site: Site) -> None:
    pkg.install(V1, settings=ORG)
    before = running_site(site)
    before_bytes = config_bytes(root)
    pkg.reinstall(V1, settings=ORG)
    pkg.assert_installed(V1)
    assert config_bytes(root) == before_bytes
    after = site.state()
    assert after.files == before.files
    assert after.package_log == before.package_log  # no migration: the database is at V1
    assert after.owners == before.owners
    assert_upgrade_finished(root)


# --- B 13: hostile values -----------------------------------------------------------------------


def hostile(marker: str) -> list[str]:
    """Values a shell would act on if a script ever evaluated them; each touches its own file."""
    return [
        f"He said \"hi\" and it's 'quoted' \\\" $(touch /tmp/{marker}-q)",
        f"$(touch /tmp/{marker}-subst)",
        f"`touch /tmp/{marker}-tick`",
        f"first line\nsecond line\n$(touch /tmp/{marker}-nl)",
        f"x; rm -rf /; touch /tmp/{marker}-semi",
        "Zürich 東京",
        f"' \" ; && || > /tmp/{marker}-redir $HOME ${{IFS}} * ?",
    ]


BUILD_KEYS = (
    "TeamSettings.SiteName", "TeamSettings.CustomBrandText", "TeamSettings.CustomDescriptionText",
    "AnnouncementSettings.BannerText", "EmailSettings.FeedbackName", "EmailSettings.FeedbackOrganization",
    "SupportSettings.SupportEmail",
)  # fmt: skip
ADMIN_KEYS = (
    "LdapSettings.BaseDN", "LdapSettings.UserFilter", "LdapSettings.BindUsername", "EmailSettings.SMTPUsername",
    "EmailSettings.ReplyToAddress", "SamlSettings.ServiceProviderIdentifier", "SamlSettings.IdpURL",
)  # fmt: skip


def side_effects(root: harness.Root, marker: str) -> list[str]:
    """Files whose name carries `marker` anywhere the root or the host's /tmp were written."""
    found = [str(p) for p in root.upper.rglob(f"*{marker}*")]
    return found + [str(p) for p in Path("/tmp").glob(f"*{marker}*")]


@pytest.mark.parametrize("pkg", ADMIN_TOOLS, indirect=True)
def test_hostile_override_values_land_literally(pkg: Pkg, root: harness.Root, site: Site) -> None:
    marker = f"pwned-{uuid.uuid4().hex[:8]}"
    values = hostile(marker)
    build: Settings = tuple(zip(BUILD_KEYS, values, strict=True))
    admin = dict(zip(ADMIN_KEYS, values, strict=True))
    hostile_key = f'com.example."$(touch /tmp/{marker}-key)`touch /tmp/{marker}-key2`'

    pkg.install(V1, settings=build)
    config = root.read_json(CONFIG)
    for key, value in build:
        assert setting(config, key) == value, key
    running_site(site)

    # The admin's overrides, under an awkward file name, applied by the admin command ...
    override = with_settings({}, admin)
    override["PluginSettings"] = {"Plugins": {hostile_key: {"Greeting": values[0]}}}
    site.add_override("60 hostile $(name).json", override)
    root.run(ADMIN_COMMAND, "apply-overrides")
    # ... and with new build-time values by the upgrade.
    rebuilt: Settings = tuple(zip(BUILD_KEYS, reversed(values), strict=True))
    pkg.upgrade(V2, settings=rebuilt)
    assert_migrated(root, site, V2)
    with site.serve():
        pass  # the server reads them and writes them back, still literally
    config = root.read_json(CONFIG)
    for key, value in (*rebuilt, *admin.items()):
        assert setting(config, key) == value, key
    assert config["PluginSettings"]["Plugins"][hostile_key] == {"Greeting": values[0]}
    assert side_effects(root, marker) == []


@pytest.mark.parametrize("pkg", ADMIN_TOOLS, indirect=True)
def test_hostile_env_file_values_during_migrate(pkg: Pkg, root: harness.Root, site: Site) -> None:
    marker = f"pwned-{uuid.uuid4().hex[:8]}"
    pkg.install(V1)
    site.create_database()
    # A password full of shell syntax (no '/', which would end a URL's authority) and a query
    # string with the rest: the migration can only reach database mattermost_env if the value
    # arrives whole.
    site.set_env(
        MM_SQLSETTINGS_DATASOURCE=(
            "postgres://mmuser:p'a\"s`s$(id)@localhost/mattermost_env?sslmode=disable"
            f"&application_name=$(touch /tmp/{marker}-ds);touch /tmp/{marker}-ds2;`touch /tmp/{marker}-ds3`"
        ),
        MM_TEAMSETTINGS_SITENAME=f"Zürich 東京 $(touch /tmp/{marker}-env) `touch /tmp/{marker}-tick`; rm -rf /",
        MM_SERVICESETTINGS_SITEURL=f"https://chat.example.com/$(touch /tmp/{marker}-url)",
    )
    pkg.upgrade(V2)
    assert int(root.read_json(f"{DB_DIR}/mattermost_env.json")["schema_version"]) == schema_of(V2)
    assert "Database successfully migrated" in root.read_text(MIGRATE_LOG)
    # Read by the server at start, never written into the JSON (layer 4).
    assert setting(root.read_json(CONFIG), "TeamSettings.SiteName") == "Mattermost"
    assert side_effects(root, marker) == []
