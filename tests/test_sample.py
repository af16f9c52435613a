"""Sample releases: the tarball's shape, and the fake bin/mattermost run for real."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mmpkg.build.gobinary import read_build_values
from mmpkg.build.inspect import inspect_release
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release
from sample_release.build_info import build_epoch
from sample_release.command import main as sample_release_command
from sample_release.profiles import PROFILES
from tests.support.harness import require

V10 = MattermostVersion.parse("10.5.2")
RC11 = MattermostVersion.parse("11.0.0-rc1")
NOBODY = 65534

SECTIONS = [
    "ServiceSettings", "TeamSettings", "ClientRequirements", "SqlSettings", "LogSettings",
    "ExperimentalAuditSettings", "NotificationLogSettings", "PasswordSettings", "FileSettings",
    "EmailSettings", "RateLimitSettings", "PrivacySettings", "SupportSettings",
    "AnnouncementSettings", "ThemeSettings", "GitLabSettings", "GoogleSettings",
    "Office365Settings", "OpenIdSettings", "LdapSettings", "ComplianceSettings",
    "LocalizationSettings", "SamlSettings", "NativeAppSettings", "CacheSettings",
    "ClusterSettings", "MetricsSettings", "ExperimentalSettings", "AnalyticsSettings",
    "ElasticsearchSettings", "BleveSettings", "DataRetentionSettings", "MessageExportSettings",
    "JobSettings", "PluginSettings", "DisplaySettings", "GuestAccountsSettings",
    "ImageProxySettings", "CloudSettings", "ImportSettings", "ExportSettings",
    "WranglerSettings", "ConnectedWorkspacesSettings", "AccessControlSettings",
]  # fmt: skip


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("releases")
    return {
        "enterprise": write_sample_release(V10, dest=dest),
        "team-arm64": write_sample_release(V10, edition=Edition.TEAM, arch=Arch.ARM64, dest=dest),
        "rc": write_sample_release(RC11, dest=dest),
    }


def members(tarball: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball) as tar:
        return tar.getmembers()


def read_member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


# --- the tarball ------------------------------------------------------------------------------


def test_enterprise_layout(releases: dict[str, Path]) -> None:
    tarball = releases["enterprise"]
    assert tarball.name == "mattermost-10.5.2-linux-amd64.tar.gz"
    names = [m.name for m in members(tarball)]
    assert names[0] == "mattermost"
    assert names.count("mattermost") == 2  # the per-arch tree, then the shared one
    second = names.index("mattermost", 1)
    assert {"mattermost/bin/mattermost", "mattermost/logs"} <= set(names[:second])
    assert "mattermost/config/config.json" in names[second:]
    assert all(n == "mattermost" or n.startswith("mattermost/") for n in names)
    files = set(names)
    assert {
        "mattermost/bin/mmctl",
        "mattermost/config/README.md",
        "mattermost/config/cloud_defaults.json",
        "mattermost/client/root.html",
        "mattermost/client/manifest.json",
        "mattermost/client/images/logo.png",
        "mattermost/fonts/nunito-bold.ttf",
        "mattermost/fonts/OFL.txt",
        "mattermost/i18n/en.json",
        "mattermost/i18n/de.json",
        "mattermost/ENTERPRISE-EDITION-LICENSE.txt",
        "mattermost/NOTICE.txt",
        "mattermost/README.md",
        "mattermost/manifest.txt",
    } <= files
    assert any(n.startswith("mattermost/client/main.") and n.endswith(".css") for n in names)
    assert "mattermost/templates" in names
    assert len([n for n in names if n.startswith("mattermost/templates/")]) == 2
    plugins = sorted(n for n in names if n.startswith("mattermost/prepackaged_plugins/"))
    assert len(plugins) == 4
    assert all(n.endswith(("-linux-amd64.tar.gz", "-linux-amd64.tar.gz.sig")) for n in plugins)
    assert "mattermost/MIT-COMPILED-LICENSE.md" not in files
    for absent in ("mattermost/data", "mattermost/plugins", "mattermost/client/plugins"):
        assert not any(n == absent or n.startswith(absent + "/") for n in names)


@pytest.mark.parametrize("which", ["enterprise", "team-arm64", "rc"])
def test_modes_and_owner(releases: dict[str, Path], which: str) -> None:
    for m in members(releases[which]):
        assert (m.uid, m.gid) == (1001, 1001) and m.uname in {"", "builder"}, m.name
        if m.isdir() or m.name.startswith("mattermost/bin/"):
            expected = 0o755
        elif m.name == "mattermost/config/config.json":
            expected = 0o600
        else:
            expected = 0o644
        assert m.mode == expected, m.name
        assert m.isdir() or m.isfile(), m.name


def test_team_arm64_has_no_plugins_and_the_team_licence(releases: dict[str, Path]) -> None:
    tarball = releases["team-arm64"]
    assert tarball.name == "mattermost-team-10.5.2-linux-arm64.tar.gz"
    names = {m.name for m in members(tarball)}
    assert not any(n.startswith("mattermost/prepackaged_plugins") for n in names)
    assert "mattermost/MIT-COMPILED-LICENSE.md" in names
    assert "mattermost/ENTERPRISE-EDITION-LICENSE.txt" not in names
    assert "mattermost/config/cloud_defaults.json" not in names
    binary = read_member(tarball, "mattermost/bin/mattermost")
    assert read_build_values(io.BytesIO(binary), ("BuildEnterpriseReady",)) == {
        "BuildEnterpriseReady": "false"
    }


def test_build_information_has_no_ldflags(releases: dict[str, Path]) -> None:
    """Release binaries are built with -trimpath (upstream server/build/release.mk), and Go then
    leaves -ldflags out of the build information (golang/go#52372): no model.BuildNumber=."""
    tarball = releases["rc"]
    assert tarball.name == "mattermost-11.0.0-rc1-linux-amd64.tar.gz"
    binary = read_member(tarball, "mattermost/bin/mattermost")
    assert binary.startswith(b"\x7fELF")
    assert b"path\tgithub.com/mattermost/mattermost/server/v8/cmd/mattermost\n" in binary
    assert b"build\t-trimpath=true\n" in binary
    assert b"-ldflags=" not in binary and b"model.BuildNumber=" not in binary
    # The values are where the linker put them, found through the symbol table.
    found = read_build_values(io.BytesIO(binary), ("BuildNumber",))
    assert found == {"BuildNumber": "11.0.0-rc1"}
    config = json.loads(read_member(tarball, "mattermost/config/config.json"))
    assert config["ExperimentalSettings"]["SampleSince110000"] is True
    assert "SampleSince100502" not in config["ExperimentalSettings"]


def test_output_is_reproducible(tmp_path: Path, releases: dict[str, Path]) -> None:
    again = write_sample_release(V10, dest=tmp_path)
    assert again.read_bytes() == releases["enterprise"].read_bytes()
    assert again.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime
    assert [p.name for p in tmp_path.iterdir()] == [again.name]  # no temp file left


def test_small_profile_is_the_sample_unchanged(releases: dict[str, Path]) -> None:
    # The sample's bytes, pinned: every golden file and cached root rests on them, so a change is
    # deliberate (the faults of upgrades nobody watches made the last one).
    digest = hashlib.sha256(releases["enterprise"].read_bytes()).hexdigest()
    assert digest == "67c95f3827b07c7dd29c2a10166a7e99d8a1ee611da6ce16286c4030ee1053a9"


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["10.5.2"], "mattermost-10.5.2-linux-amd64.tar.gz"),
        (["10.5.2", "--edition", "team", "--arch", "arm64"], "mattermost-team-10.5.2-linux-arm64.tar.gz"),
        (["11.0.0-rc1"], "mattermost-11.0.0-rc1-linux-amd64.tar.gz"),
    ],
)
def test_sample_release_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], name: str
) -> None:
    assert sample_release_command([*args, "--dest", str(tmp_path / "new")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(tmp_path / "new" / name)
    assert Path(printed).is_file()


# A realistic profile scaled down a thousandfold: the same shape, in a second.
TINY = dataclasses.replace(PROFILES["realistic"], name="tiny", unpacked=650_000, files=120, plugins=4)


def test_profile_release_inspects_builds_and_is_reproducible(tmp_path: Path) -> None:
    require("dpkg-deb", "rpmbuild", root=False)
    tarball = write_sample_release(V10, dest=tmp_path / "a", profile=TINY)
    again = write_sample_release(V10, dest=tmp_path / "b", profile=TINY)
    assert tarball.read_bytes() == again.read_bytes()
    release = inspect_release(tarball)
    assert release.version == V10
    assert 120 <= release.file_count <= 150
    assert 650_000 <= release.unpacked_bytes <= 800_000  # the sample itself is about 100 KB
    plugins = [m for m in members(tarball) if m.name.endswith("-linux-amd64.tar.gz")]
    assert sum(m.size for m in plugins) >= 0.44 * 650_000  # already compressed: the bundles
    bundle = read_member(tarball, plugins[-1].name)
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:  # a real bundle
        assert tar.getnames() == [
            f"{plugins[-1].name.split('/')[-1].split('-v')[0]}/server/dist/plugin-linux-amd64"
        ]
    out = tmp_path / "out"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mmpkg",
            "-q",
            "build",
            tarball,
            "--out",
            out,
            "--maintainer",
            "A B <a@b.example>",
        ],
        check=True,
    )
    deb = next(out.glob("*.deb"))
    listing = subprocess.run(["dpkg-deb", "-c", deb], check=True, capture_output=True, text=True).stdout
    assert "/opt/mattermost/client/0.00000.chunk.js" in listing
    assert {p.suffix for p in out.iterdir()} == {".deb", ".rpm"}


def test_newer_versions_have_newer_mtimes(releases: dict[str, Path]) -> None:
    old = {m.mtime for m in members(releases["enterprise"])}
    rc = {m.mtime for m in members(releases["rc"])}
    assert len(old) == len(rc) == 1
    assert old.pop() < rc.pop() < build_epoch(MattermostVersion.parse("11.0.0"))


def test_config_json_is_upstreams_generated_default(releases: dict[str, Path]) -> None:
    raw = read_member(releases["enterprise"], "mattermost/config/config.json").decode()
    assert raw.startswith('{\n  "ServiceSettings": {\n    "SiteURL": ""')
    assert not raw.endswith("\n")
    assert "\\u0026connect_timeout=10" in raw  # Go's HTML-safe escaping
    config = json.loads(raw)
    assert list(config) == SECTIONS
    assert config["TeamSettings"]["ExperimentalViewArchivedChannels"] is True
    assert config["ServiceSettings"]["ListenAddress"] == ":8065"
    assert config["SqlSettings"]["AtRestEncryptKey"] == ""
    assert config["FileSettings"]["Directory"] == "./data/"
    assert config["FileSettings"]["PublicLinkSalt"] == ""
    assert config["LogSettings"]["ConsoleLevel"] == "INFO"
    assert config["EmailSettings"]["SMTPPort"] == ""
    assert config["PluginSettings"]["ClientDirectory"] == "./client/plugins"
    assert config["ExperimentalSettings"]["SampleSince100502"] is True


def test_client_and_plugin_bundles(releases: dict[str, Path]) -> None:
    html = read_member(releases["enterprise"], "mattermost/client/root.html").decode()
    assert "<title>Mattermost</title>" in html
    csp = '<meta http-equiv="Content-Security-Policy" content="script-src \'self\' cdn.rudderlabs.com/">'
    assert csp in html
    assert '<script id="publicPathInWindowScript"></script>' in html
    name = "mattermost/prepackaged_plugins/mattermost-plugin-playbooks-v2.10.5-linux-amd64.tar.gz"
    bundle = read_member(releases["enterprise"], name)
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        assert tar.getnames()[0] == "playbooks"
        manifest = tar.extractfile("playbooks/plugin.json")
        assert manifest is not None
        plugin = json.load(manifest)
    assert plugin["id"] == "playbooks" and plugin["version"] == "2.10.5"
    assert "min_server_version" in plugin


# --- the fake server --------------------------------------------------------------------------


@dataclass
class Install:
    """An extracted sample release plus the directory that plays the database server."""

    root: Path
    db_dir: Path

    @property
    def config(self) -> Path:
        return self.root / "config" / "config.json"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "MMPKG_SAMPLE_DB_DIR": str(self.db_dir), **(extra or {})}

    def run(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.root / "bin" / "mattermost", *args],
            cwd=cwd or self.root,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )

    def db_state(self, name: str = "mattermost_test") -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.db_dir / f"{name}.json").read_text())
        return state


def extract(tarball: Path, into: Path) -> Install:
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    db_dir = into / "db"
    db_dir.mkdir()
    return Install(into / "mattermost", db_dir)


@pytest.fixture
def v10(releases: dict[str, Path], tmp_path: Path) -> Install:
    return extract(releases["enterprise"], tmp_path)


@pytest.fixture
def v11(releases: dict[str, Path], tmp_path: Path) -> Install:
    return extract(releases["rc"], tmp_path)


def snapshot(root: Path) -> set[tuple[str, int, int]]:
    return {(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def test_version_prints_build_info_and_touches_nothing(v10: Install) -> None:
    shutil.rmtree(v10.db_dir)  # needs no database
    before = snapshot(v10.root)
    proc = v10.run("version")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["Version: 10.5.2", "Build Number: 10.5.2"]
    assert lines[2].startswith("Build Date: ") and lines[2].endswith(" UTC 2019")
    assert lines[3].startswith("Build Hash: ") and len(lines[3].split()[-1]) == 40
    assert lines[4] == "Build Enterprise Ready: true"
    assert len(lines) == 5
    mmctl = subprocess.run([v10.root / "bin" / "mmctl", "version"], capture_output=True, text=True)
    assert mmctl.returncode == 0 and "Version:\t10.5.2" in mmctl.stdout.splitlines()
    assert snapshot(v10.root) == before


def test_release_candidate_version_drops_the_suffix(v11: Install) -> None:
    lines = v11.run("version").stdout.splitlines()
    assert lines[:2] == ["Version: 11.0.0", "Build Number: 11.0.0-rc1"]


# The Short help of `db migrate`, which arrived (6.5, mattermost/mattermost#19364) in the change
# that stopped `version` from starting the server; upstream server/cmd/mattermost/commands/db.go.
MIGRATE_HELP = "Migrate the database if there are any unapplied migrations"


@pytest.mark.parametrize(("version", "has_migrate"), [("6.4.3", False), ("6.5.0", True)])
def test_db_migrate_and_its_help_text_from_6_5(tmp_path: Path, version: str, has_migrate: bool) -> None:
    tarball = write_sample_release(MattermostVersion.parse(version), dest=tmp_path)
    binary = read_member(tarball, "mattermost/bin/mattermost")
    assert (MIGRATE_HELP.encode() in binary) is has_migrate
    install = extract(tarball, tmp_path)
    helped = install.run("db")
    assert helped.returncode == 0
    assert (f"  migrate     {MIGRATE_HELP}" in helped.stdout.splitlines()) is has_migrate


def test_version_skips_the_server_start_when_asked(tmp_path: Path) -> None:
    """Before 6.5 `version` started the server; `--skip-server-start` printed the build only."""
    install = extract(write_sample_release(MattermostVersion.parse("6.4.3"), dest=tmp_path), tmp_path)
    before = snapshot(install.root)
    skipped = install.run("version", "--skip-server-start")
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout.splitlines()[:2] == ["Version: 6.4.3", "Build Number: 6.4.3"]
    assert len(skipped.stdout.splitlines()) == 5
    assert snapshot(install.root) == before and not list(install.db_dir.iterdir())
    started = install.run("version")
    assert started.stdout.splitlines()[-1] == "DB Version: 6.4.3"
    assert (install.db_dir / "mattermost_test.json").exists()


def test_skip_server_start_is_deprecated_from_6_5(v10: Install) -> None:
    proc = v10.run("version", "--skip-server-start")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 5
    assert (
        "Flag --skip-server-start has been deprecated, This flag is not necessary anymore and the flag "
        "will be removed in the future releases. Consider removing it from your scripts."
    ) in proc.stderr.splitlines()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--disableconfigwatch"], "Error: unknown flag: --disableconfigwatch"),
        (["db", "ping"], 'Error: unknown command "ping" for "mattermost db"'),
        (["frobnicate"], 'Error: unknown command "frobnicate" for "mattermost"'),
        (["db", "migrate", "--bogus"], "Error: unknown flag: --bogus"),
        (["db", "init"], "Error: this command should be run using a database configuration DSN"),
    ],
)
def test_cli_errors(v10: Install, args: list[str], error: str) -> None:
    proc = v10.run(*args)
    assert proc.returncode == 1
    assert error in proc.stderr.splitlines()


def test_db_migrate_applies_once_and_never_writes_config(v10: Install) -> None:
    before = v10.config.read_bytes()
    first = v10.run("db", "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "Database successfully migrated"
    assert v10.db_state() == {
        "schema_version": 100502,
        "migrations": [{"name": "sample_100502", "version": "10.5.2"}],
    }
    second = v10.run("db", "migrate", "--dry-run", "--auto-recover")
    assert second.stdout.strip() == "No migrations to apply."
    assert v10.run("db", "version").stdout == "Current database schema version is: 100502\n"
    assert v10.config.read_bytes() == before


def test_db_version_migrates_first(v10: Install) -> None:
    proc = v10.run("db", "version", "--all")
    assert proc.stdout == "Varsion: 100502, Name: sample_100502\n"


# The test knob that shortens the wait between the server's connection attempts.
NO_WAIT = {"MMPKG_SAMPLE_DB_RETRY_SECONDS": "0"}


def ping_failures(stdout: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, stdout.splitlines()) if e["msg"] == "Failed to ping DB"]


def test_unreachable_database(v10: Install) -> None:
    refused = "Error: failed to ping DB: dial tcp 127.0.0.1:5432: connect: connection refused"
    knob = v10.run("db", "migrate", env={"MMPKG_SAMPLE_DB_UNREACHABLE": "1", **NO_WAIT})
    assert (knob.returncode, knob.stderr.splitlines()[-1]) == (1, refused)
    # Every attempt but the last is logged with the driver's error, then retried.
    failures = ping_failures(knob.stdout)
    assert len(failures) == 17
    assert failures[0]["error"] == refused.removeprefix("Error: failed to ping DB: ")
    assert failures[0]["retrying in seconds"] == 2
    shutil.rmtree(v10.db_dir)
    missing = v10.run("db", "migrate", env=NO_WAIT)
    assert (missing.returncode, missing.stderr.splitlines()[-1]) == (1, refused)


def test_6_5_to_8_x_retry_18_times_ten_seconds_apart(tmp_path: Path) -> None:
    """sqlstore.SetupConnection: DBPingAttempts 18, DBPingTimeoutSecs 10 between them, then
    mlog.Fatal, which exits (upstream channels/store/sqlstore/store.go, v6 to v8)."""
    install = extract(write_sample_release(MattermostVersion.parse("8.1.0"), dest=tmp_path), tmp_path)
    proc = install.run("db", "migrate", env={"MMPKG_SAMPLE_DB_UNREACHABLE": "1", **NO_WAIT})
    assert proc.returncode == 1
    entries = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["msg"] for e in entries].count("Pinging SQL") == 18
    failures = ping_failures(proc.stdout)
    assert len(failures) == 17 and failures[0]["retrying in seconds"] == 10
    assert entries[-1]["level"] == "fatal" and entries[-1]["msg"] == "Failed to ping DB, server will exit."
    assert "connection refused" in entries[-1]["error"]
    assert not proc.stderr.startswith("Error:")


def test_the_wait_between_attempts_is_upstreams_unless_shortened(tmp_path: Path) -> None:
    install = extract(write_sample_release(MattermostVersion.parse("8.1.0"), dest=tmp_path), tmp_path)
    env = {"MMPKG_SAMPLE_DB_UNREACHABLE": "1", "MMPKG_SAMPLE_DB_RETRY_SECONDS": "0.05"}
    started = time.monotonic()
    assert install.run("db", "migrate", env=env).returncode == 1
    assert 17 * 0.05 <= time.monotonic() - started < 10


def test_refused_login(v10: Install) -> None:
    proc = v10.run("db", "migrate", env={"MMPKG_SAMPLE_DB_AUTH_FAIL": "1", **NO_WAIT})
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith(
        'Error: failed to ping DB: pq: password authentication failed for user "'
    )


def test_failed_migration_leaves_the_schema_alone(v10: Install) -> None:
    old = {"schema_version": 90500, "migrations": [{"name": "sample_090500", "version": "9.5.0"}]}
    (v10.db_dir / "mattermost_test.json").write_text(json.dumps(old))
    proc = v10.run("db", "migrate", env={"MMPKG_SAMPLE_MIGRATION_FAIL": "1"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "Error: failed to apply database migrations: migration sample_100502 failed: "
        "ERROR: simulated failure (SQLSTATE XX000)"
    )
    assert v10.db_state() == old


def test_newer_database_needs_nothing(v10: Install) -> None:
    newer = {"schema_version": 110000, "migrations": [{"name": "sample_110000", "version": "11.0.0"}]}
    (v10.db_dir / "mattermost_test.json").write_text(json.dumps(newer))
    assert v10.run("db", "migrate").stdout.strip() == "No migrations to apply."
    assert v10.db_state() == newer


def test_db_migrate_creates_a_missing_config_empty(v10: Install) -> None:
    v10.config.unlink()
    proc = v10.run("db", "migrate")
    assert proc.returncode == 0, proc.stderr
    assert v10.config.read_bytes() == b""


def test_config_is_found_through_the_binarys_real_path(v10: Install, tmp_path: Path) -> None:
    etc = tmp_path / "etc-mattermost"
    (v10.root / "config").rename(etc)
    (v10.root / "config").symlink_to(etc)
    config = json.loads(etc.joinpath("config.json").read_text())
    config["SqlSettings"]["DataSource"] = "postgres://mm:pw@db.example/custom_db?sslmode=disable"
    etc.joinpath("config.json").write_text(json.dumps(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = v10.run("db", "migrate", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert v10.db_state("custom_db")["schema_version"] == 100502


def test_v11_refuses_mysql_and_hidden_archived_channels(v11: Install) -> None:
    mysql = v11.run("db", "migrate", env={"MM_SQLSETTINGS_DRIVERNAME": "mysql"})
    assert mysql.returncode == 1 and "MySQL is no longer supported" in mysql.stderr
    before = v11.config.read_bytes()
    env = {"MM_TEAMSETTINGS_EXPERIMENTALVIEWARCHIVEDCHANNELS": "false"}
    archived = v11.run("server", env=env)
    assert archived.returncode == 1 and "Hiding archived channels is no longer supported" in archived.stderr
    assert v11.config.read_bytes() == before  # invalid config is never written


def test_config_in_the_database(v10: Install) -> None:
    dsn = "postgres://mmuser:pw@localhost/mm_config?sslmode=disable"
    init = v10.run("db", "init", "--config", dsn)
    assert init.returncode == 0, init.stderr
    stored = v10.db_state("mm_config")["config"]
    assert list(stored) == SECTIONS and len(stored["FileSettings"]["PublicLinkSalt"]) == 32
    # An empty config store's DataSource is the DSN itself (upstream DatabaseStore.Load): the
    # schema goes next to the configuration.
    assert stored["SqlSettings"]["DataSource"] == dsn
    assert v10.db_state("mm_config")["schema_version"] == 100502
    env = {"MM_CONFIG": dsn, "MM_SQLSETTINGS_DATASOURCE": "postgres://u:p@localhost/other"}
    assert v10.run("db", "migrate", env=env).stdout.strip() == "Database successfully migrated"
    assert v10.db_state("other")["schema_version"] == 100502


def test_custom_defaults_lie_under_what_the_store_holds(v10: Install, tmp_path: Path) -> None:
    """MM_CUSTOM_DEFAULTS_PATH (commands/utils.go): `db init` stores the file's settings in an
    empty database store, whose own DataSource (the DSN) wins over the file's."""
    dsn = "postgres://mmuser:pw@localhost/mm_config?sslmode=disable"
    custom = tmp_path / "custom.json"
    custom.write_text(
        json.dumps({"TeamSettings": {"SiteName": "Custom"}, "SqlSettings": {"DataSource": "x"}})
    )
    init = v10.run("db", "init", "--config", dsn, env={"MM_CUSTOM_DEFAULTS_PATH": str(custom)})
    assert (init.returncode, init.stdout.splitlines()[-1]) == (0, "Database store correctly initialised")
    stored = v10.db_state("mm_config")["config"]
    assert stored["TeamSettings"]["SiteName"] == "Custom"
    assert stored["SqlSettings"]["DataSource"] == dsn
    missing = v10.run("db", "init", "--config", dsn, env={"MM_CUSTOM_DEFAULTS_PATH": str(tmp_path / "none")})
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1] == (
        "Error: error loading custom configuration defaults: unable to open custom defaults file at "
        f'"{tmp_path}/none": open {tmp_path}/none: no such file or directory'
    )


def test_db_ping_exists_from_11_9(tmp_path: Path) -> None:
    tarball = write_sample_release(MattermostVersion.parse("11.9.0"), dest=tmp_path)
    install = extract(tarball, tmp_path)
    up = install.run("db", "ping")
    assert up.returncode == 0 and "Database is reachable" in up.stdout


@pytest.mark.parametrize("knob", ["MMPKG_SAMPLE_DB_UNREACHABLE", "MMPKG_SAMPLE_DB_AUTH_FAIL"])
def test_db_ping_never_prints_the_drivers_error(tmp_path: Path, knob: str) -> None:
    """Upstream commands/db_ping.go logs "Waiting for database" without the error (lib/pq's can
    echo the DSN) and ends every failure with the context's deadline, whatever the cause."""
    tarball = write_sample_release(MattermostVersion.parse("11.9.0"), dest=tmp_path)
    install = extract(tarball, tmp_path)
    down = install.run("db", "ping", "--timeout", "1s", "--retry-interval", "200ms", env={knob: "1"})
    assert down.returncode == 1
    last = down.stderr.splitlines()[-1]
    attempts = int(last.split(" after ")[1].split()[0])
    assert (
        last == f"Error: timed out waiting for database after {attempts} attempts: context deadline exceeded"
    )
    assert attempts >= 3 and down.stdout.count("Waiting for database") == attempts
    for text in ("refused", "password", "pq:", "dial tcp"):
        assert text not in down.stdout + down.stderr
    zero = install.run("db", "ping", "--timeout", "0s")
    assert zero.returncode == 1 and zero.stderr.splitlines()[-1] == "Error: --timeout must be > 0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(
    install: Install, env: dict[str, str] | None = None, *, user: list[str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start `mattermost server` on a free port and wait for its READY=1 on NOTIFY_SOCKET."""
    port = free_port()
    name = f"mmpkg-test-{os.getpid()}-{port}"  # abstract: no path length or permission limits
    extra = {
        "NOTIFY_SOCKET": f"@{name}",
        "MM_SERVICESETTINGS_LISTENADDRESS": f"127.0.0.1:{port}",
        **(env or {}),
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(f"\0{name}")
        notify.settimeout(0.1)
        proc = subprocess.Popen(
            [*(user or []), install.root / "bin" / "mattermost", "server"],
            cwd=install.root,
            env=install.env(extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(TimeoutError):
                    assert notify.recv(64) == b"READY=1"
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    out, err = proc.communicate()
                    pytest.fail(f"server never became ready:\n{out}\n{err}")
            yield proc, port
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def get(url: str) -> tuple[int, dict[str, Any], str]:
    """GET without any proxy from the environment: (status, JSON body, X-Version-Id)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status, json.load(resp), resp.headers["X-Version-Id"]
    except urllib.error.HTTPError as e:
        return e.code, json.load(e), e.headers["X-Version-Id"]


def test_server_starts_persists_config_and_stops(v10: Install) -> None:
    env = {"MM_LOGSETTINGS_CONSOLELEVEL": "DEBUG", "MM_SERVICESETTINGS_ENABLELOCALMODE": "maybe"}
    with running_server(v10, env) as (proc, port):
        status, body, version_id = get(f"http://127.0.0.1:{port}/api/v4/system/ping")
        assert get(f"http://127.0.0.1:{port}/nope")[0] == 404
        stop(proc)
    assert status == 200
    assert body == {"status": "OK", "ActiveSearchBackend": "database", "version": "10.5.2"}
    assert version_id.startswith("10.5.2.10.5.2.")

    raw = v10.config.read_text()
    assert raw.startswith('{\n    "ServiceSettings": {\n        "SiteURL": ""')
    assert not raw.endswith("\n")
    assert v10.config.stat().st_mode & 0o777 == 0o600
    config = json.loads(raw)
    assert list(config) == SECTIONS
    assert config["ServiceSettings"]["ListenAddress"] == ":8065"  # env overrides stay in memory
    assert config["LogSettings"]["ConsoleLevel"] == "INFO"
    assert config["ServiceSettings"]["EnableLocalMode"] is False
    assert len(config["SqlSettings"]["AtRestEncryptKey"]) == 32
    assert len(config["FileSettings"]["PublicLinkSalt"]) == 32

    assert (v10.root / "plugins" / "playbooks" / "plugin.json").is_file()
    assert (v10.root / "plugins" / "com.mattermost.calls" / "plugin.json").is_file()
    assert (v10.root / "client" / "plugins").is_dir()
    assert (v10.root / "data").is_dir() and not (v10.root / "data" / "testfile").exists()
    log = [
        json.loads(line)["msg"] for line in (v10.root / "logs" / "mattermost.log").read_text().splitlines()
    ]
    assert f"Server is listening on 127.0.0.1:{port}" in log
    assert log[-1] == "Server stopped"
    assert v10.db_state()["schema_version"] == 100502


def test_server_drops_unknown_keys_keeps_secrets_maps_and_mode(v10: Install) -> None:
    """Upstream unmarshals config.json into its Config struct and writes that back
    (server/config/store.go, utils.go): a key the struct lacks is gone after a start; the keys
    of a map (PluginSettings.Plugins, PluginStates) are data and stay."""
    key = "k" * 32
    v10.config.write_text(
        json.dumps(
            {
                "ServiceSettings": {"SiteURL": "https://chat.example.com/team", "Custom": 1},
                "SqlSettings": {"AtRestEncryptKey": key},
                "Extra": {"kept": True},
                "PluginSettings": {
                    "Plugins": {"com.example.x": {"Token": "t"}},
                    "PluginStates": {"com.example.x": {"Enable": True}},
                },
                # An earlier release's setting is still in the struct; a later one's is not.
                "ExperimentalSettings": {"SampleSince090000": True, "SampleSince110000": True},
            }
        )
    )
    v10.config.chmod(0o640)
    with running_server(v10) as (proc, port):
        status, _, _ = get(f"http://127.0.0.1:{port}/team/api/v4/system/ping")
        stop(proc)
    assert status == 200
    config = json.loads(v10.config.read_text())
    assert "Custom" not in config["ServiceSettings"] and "Extra" not in config
    assert config["PluginSettings"]["Plugins"] == {"com.example.x": {"Token": "t"}}
    assert config["PluginSettings"]["PluginStates"]["com.example.x"] == {"Enable": True}
    experimental = config["ExperimentalSettings"]
    assert experimental["SampleSince090000"] is True and experimental["SampleSince100502"] is True
    assert "SampleSince110000" not in experimental
    assert config["SqlSettings"]["AtRestEncryptKey"] == key
    assert config["TeamSettings"]["ExperimentalViewArchivedChannels"] is True
    assert v10.config.stat().st_mode & 0o777 == 0o640
    html = (v10.root / "client" / "root.html").read_text()
    assert "window.publicPath='/team/static/'" in html
    assert 'href="/team/static/manifest.json"' in html
    client = v10.root / "client"
    assert "/team/static/images/logo.png" in (client / "manifest.json").read_text()
    (css,) = client.glob("*.css")
    assert "url(/team/static/images/logo.png)" in css.read_text()


def test_local_mode_socket(v10: Install, tmp_path: Path) -> None:
    """ServiceSettings.LocalModeSocketLocation (upstream public/model/config.go; default
    /var/tmp/mattermost_local.socket, mmctl's too): the socket exists while the server runs."""
    defaults = json.loads(v10.config.read_text())["ServiceSettings"]
    assert defaults["LocalModeSocketLocation"] == "/var/tmp/mattermost_local.socket"
    assert "LocalModeSocketPath" not in defaults
    socket_path = tmp_path / "run" / "mattermost_local.socket"
    socket_path.parent.mkdir()
    env = {
        "MM_SERVICESETTINGS_ENABLELOCALMODE": "true",
        "MM_SERVICESETTINGS_LOCALMODESOCKETLOCATION": str(socket_path),
    }
    with running_server(v10, env) as (proc, _):
        assert stat.S_ISSOCK(socket_path.stat().st_mode)
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        stop(proc)
    assert not socket_path.exists()


def logs_api(port: int) -> list[str]:
    status, body, _ = get(f"http://127.0.0.1:{port}/api/v4/logs")
    assert status == 200
    assert isinstance(body, list)
    return [str(line) for line in body]


@pytest.mark.parametrize(("version", "restricted"), [("10.5.2", False), ("11.4.0", True)])
def test_log_viewer_reads_only_below_the_logging_root(tmp_path: Path, version: str, restricted: bool) -> None:
    """From 11.4 (upstream PRs #35014, #35221; backported to 10.11.x, 11.2.x, 11.3.x as #35162 to
    #35164) the System Console shows a log file only below MM_LOG_PATH, else below logs/ as the
    server finds it (config.GetLogRootPath)."""
    install = extract(write_sample_release(MattermostVersion.parse(version), dest=tmp_path), tmp_path)
    logs = tmp_path / "var-log"
    moved = {"MM_LOGSETTINGS_FILELOCATION": str(logs)}
    with running_server(install, moved) as (proc, port):
        outside = logs_api(port)
        stop(proc)
    assert (logs / "mattermost.log").stat().st_size > 0
    assert outside == [] if restricted else outside
    with running_server(install, {**moved, "MM_LOG_PATH": str(logs)}) as (proc, port):
        inside = logs_api(port)
        stop(proc)
    assert any("Server is listening" in line for line in inside)


def test_notification_log_goes_where_its_settings_say(v10: Install, tmp_path: Path) -> None:
    """Before 11.0 a second log, notifications.log: NotificationLogSettings.FileLocation, or
    logs/ as the server finds it, else its working directory (config/logger.go)."""
    shutil.rmtree(v10.root / "logs")  # as in a package's install directory
    with running_server(v10) as (proc, _):
        stop(proc)
    assert (v10.root / "notifications.log").is_file()  # in the working directory
    own = tmp_path / "notifications"
    env = {"MM_NOTIFICATIONLOGSETTINGS_FILELOCATION": str(own), "MM_LOGSETTINGS_FILELOCATION": str(own)}
    with running_server(v10, env) as (proc, _):
        stop(proc)
    assert (own / "notifications.log").is_file()
    errors = [json.loads(line) for line in (own / "mattermost.log").read_text().splitlines()]
    assert not [e for e in errors if e["level"] == "error"]


def test_empty_config_is_a_fresh_install(v10: Install) -> None:
    v10.config.write_bytes(b"")
    with running_server(v10) as (proc, _):
        stop(proc)
    config = json.loads(v10.config.read_text())
    assert list(config) == SECTIONS
    assert len(config["FileSettings"]["PublicLinkSalt"]) == 32


def test_server_fails_without_a_database(v10: Install) -> None:
    proc = v10.run("server", env={"MMPKG_SAMPLE_DB_UNREACHABLE": "1", **NO_WAIT})
    assert proc.returncode == 1
    assert "Error: failed to ping DB" in proc.stderr
    failed = v10.run("server", env={"MMPKG_SAMPLE_MIGRATION_FAIL": "1"})
    assert failed.returncode == 1
    assert "Failed to apply database migrations." in failed.stderr
    assert not (v10.db_dir / "mattermost_test.json").exists()


@pytest.fixture
def traversable_tmp() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="mmpkg-sample-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_runs_as_an_unprivileged_user(releases: dict[str, Path], traversable_tmp: Path) -> None:
    """Only config/, logs/, the file store, plugin dirs and the database are writable."""
    install = extract(releases["enterprise"], traversable_tmp)
    for path in install.root.rglob("*"):
        os.lchown(path, 0, 0)
    for name in ("data", "plugins", "client/plugins"):
        (install.root / name).mkdir()
    for writable in ("config", "config/config.json", "logs", "data", "plugins", "client/plugins"):
        os.chown(install.root / writable, NOBODY, NOBODY)
    os.chown(install.db_dir, NOBODY, NOBODY)
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

    with running_server(install, user=nobody) as (proc, _):
        stop(proc)
    assert install.config.stat().st_uid == NOBODY
    assert install.db_state()["schema_version"] == 100502

    # renameio needs the config directory itself to be writable
    os.chown(install.root / "config", 0, 0)
    denied = subprocess.run(
        [*nobody, install.root / "bin" / "mattermost"],
        cwd=install.root,
        env=install.env(),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert denied.returncode == 1
    assert "failed to persist: failed to write file: open " in denied.stderr
    assert "permission denied" in denied.stderr
