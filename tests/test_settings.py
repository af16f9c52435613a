"""Build-time settings are checked: against the release's own config.json (names and JSON types),
and for secrets, which must not ship in a world-readable file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mmpkg.build.options import load_file
from mmpkg.build.overrides import SettingError, check_against, check_not_secret
from mmpkg.cli import main
from mmpkg.errors import UsageError
from mmpkg.mattermost.versions import MattermostVersion
from sample_release.config_defaults import config_defaults
from tests.support.harness import require
from tests.support.packages import MAINTAINER, PackageFactory

DEFAULTS = config_defaults(MattermostVersion.parse("10.5.2"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ServiceSettings.SiteURL", "https://chat.example.com"),
        ("TeamSettings.MaxUsersPerTeam", 500),
        ("ServiceSettings.EnableDeveloper", True),
        ("EmailSettings.SMTPPort", "587"),
        ("TeamSettings.ExperimentalDefaultChannels", ["town-square"]),
        ("PluginSettings.PluginStates", {"com.example.new": {"Enable": True}}),
        ("PluginSettings.Plugins", {"com.example.new": {"Greeting": "hi"}}),
        ("SqlSettings.QueryTimeout", 30),
    ],
)
def test_known_settings_of_the_right_type_pass(key: str, value: object) -> None:
    assert check_against(key, value, DEFAULTS, allow_unknown=False) is None


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (
            "ServiceSetings.SiteURL",
            "x",
            "this release's config.json has no section ServiceSetings (did you mean ServiceSettings?)",
        ),
        (
            "ServiceSettings.SiteUrl",
            "x",
            "this release's config.json has no ServiceSettings.SiteUrl (did you mean SiteURL?)",
        ),
        ("ServiceSettings.SiteURL.Path", "x", "ServiceSettings.SiteURL is a string, not a section"),
        (
            "EmailSettings.SMTPPort",
            587,
            'is a string in this release\'s config.json ("" by default), not a number',
        ),
        (
            "TeamSettings.MaxUsersPerTeam",
            "500",
            "is a number in this release's config.json (50 by default), not a string",
        ),
        ("TeamSettings.MaxUsersPerTeam", 2.5, "is a whole number in this release's config.json"),
        ("ServiceSettings.EnableDeveloper", "true", "is a boolean"),
        ("TeamSettings.ExperimentalDefaultChannels", "town-square", "is an array"),
        ("PluginSettings.PluginStates", [], "is an object"),
    ],
)
def test_unknown_names_and_wrong_types_are_refused(key: str, value: object, reason: str) -> None:
    with pytest.raises(SettingError) as info:
        check_against(key, value, DEFAULTS, allow_unknown=False)
    assert str(info.value).startswith(f"{key}: ") and reason in str(info.value), info.value


def test_unknown_names_may_be_allowed_but_types_are_still_checked() -> None:
    note = check_against("ServiceSetings.SiteURL", "x", DEFAULTS, allow_unknown=True)
    assert note is not None and "ServiceSetings" in note
    assert check_against("ExperimentalSettings.FromTheFuture", 1, DEFAULTS, allow_unknown=True)
    with pytest.raises(SettingError, match="not a number"):
        check_against("EmailSettings.SMTPPort", 587, DEFAULTS, allow_unknown=True)


@pytest.mark.parametrize(
    ("key", "value", "variable"),
    [
        ("SqlSettings.DataSource", "postgres://mm:pw@db/mm", "MM_SQLSETTINGS_DATASOURCE"),
        ("SqlSettings.DataSourceReplicas", ["postgres://mm:pw@r/mm"], "MM_SQLSETTINGS_DATASOURCEREPLICAS"),
        ("SqlSettings.DataSourceSearchReplicas", [], "MM_SQLSETTINGS_DATASOURCESEARCHREPLICAS"),
        ("SqlSettings.AtRestEncryptKey", "k", "MM_SQLSETTINGS_ATRESTENCRYPTKEY"),
        ("EmailSettings.SMTPPassword", "pw", "MM_EMAILSETTINGS_SMTPPASSWORD"),
        ("FileSettings.PublicLinkSalt", "s", "MM_FILESETTINGS_PUBLICLINKSALT"),
        ("FileSettings.AmazonS3SecretAccessKey", "s", "MM_FILESETTINGS_AMAZONS3SECRETACCESSKEY"),
        ("GitLabSettings.Secret", "s", "MM_GITLABSETTINGS_SECRET"),
        ("ServiceSettings.GoogleDeveloperKey", "k", "MM_SERVICESETTINGS_GOOGLEDEVELOPERKEY"),
        ("LdapSettings.BindPassword", "pw", "MM_LDAPSETTINGS_BINDPASSWORD"),
        (
            "SqlSettings.ReplicaLagSettings",
            [{"DataSource": "postgres://x"}],
            "MM_SQLSETTINGS_REPLICALAGSETTINGS",
        ),
        (
            "MessageExportSettings.GlobalRelaySettings",
            {"SMTPPassword": "pw"},
            "MM_MESSAGEEXPORTSETTINGS_GLOBALRELAYSETTINGS",
        ),
    ],
)
def test_secrets_are_refused_with_the_environment_file_instead(
    key: str, value: object, variable: str
) -> None:
    with pytest.raises(SettingError) as info:
        check_not_secret(
            key,
            value,
            env_file="/etc/mattermost/mattermost.env",
            shipped="/usr/share/mattermost/overrides.json",
        )
    message = str(info.value)
    assert message.startswith(f"{key}: ")
    assert "/usr/share/mattermost/overrides.json" in message and "readable by every user" in message
    assert f"/etc/mattermost/mattermost.env ({variable}=...)" in message


@pytest.mark.parametrize(
    "key",
    [
        "ServiceSettings.TLSKeyFile",
        "ServiceSettings.TLSCertFile",
        "FileSettings.AmazonS3AccessKeyId",
        "GitLabSettings.TokenEndpoint",
        "SamlSettings.PrivateKeyFile",
        "LdapSettings.BindUsername",
        "ServiceSettings.SiteURL",
        "PasswordSettings.MinimumLength",
    ],
)
def test_settings_that_are_no_secret_pass(key: str) -> None:
    check_not_secret(key, "x", env_file="/e", shipped="/s")


# --- the command line: the checks run on a real build ------------------------------------------


@pytest.fixture(scope="module")
def tarball(packages: PackageFactory) -> Path:
    require("dpkg-deb", "rpmbuild", root=False)
    return packages.tarball("10.5.2")


def build(tarball: Path | str, out: Path, *argv: str) -> list[str]:
    return ["build", str(tarball), "--out", str(out), "--maintainer", MAINTAINER, *argv]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "ServiceSetings.SiteURL=https://x.example",
            "--set ServiceSetings.SiteURL: this release's config.json has no section ServiceSetings (did you mean ServiceSettings?)",
        ),
        (
            "EmailSettings.SMTPPort=587",
            "--set EmailSettings.SMTPPort: is a string in this release's config.json",
        ),
    ],
)
def test_the_release_decides_names_and_types(
    tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, message: str
) -> None:
    out = tmp_path / "dist"
    assert main(build(tarball, out, "--set", setting)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmpkg: error: {message}") and err.count("\n") == 1, err
    assert not out.exists()


def test_errors_name_the_file_the_setting_came_from(
    tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "build.toml"
    config.write_text("[set.ServiceSetings]\nSiteURL = 'https://x.example'\n")
    assert main(build(tarball, tmp_path / "dist", "--config", str(config))) == 2
    assert capsys.readouterr().err.startswith(
        f"mmpkg: error: {config}: [set] ServiceSetings.SiteURL: this release's"
    )


def test_a_secret_is_refused_before_the_tarball_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = build(
        "/nonexistent.tar.gz", tmp_path / "dist", "--set", "SqlSettings.DataSource=postgres://mm:secret@db/mm"
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("mmpkg: error: --set SqlSettings.DataSource: holds a secret") and err.count("\n") == 1
    )
    assert "MM_SQLSETTINGS_DATASOURCE=..." in err and "secret@db" not in err


@pytest.mark.parametrize("how", ["flag", "file"])
def test_unknown_settings_may_be_allowed(
    tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    out = tmp_path / "dist"
    argv = build(tarball, out, "--formats", "deb", "--set", "ExperimentalSettings.FromAPlugin=true")
    if how == "flag":
        argv.append("--allow-unknown-settings")
    else:
        (tmp_path / "build.toml").write_text("allow-unknown-settings = true\n")
        argv += ["--config", str(tmp_path / "build.toml")]
    assert main(argv) == 0
    assert "ExperimentalSettings.FromAPlugin" in capsys.readouterr().err  # said, not silent
    (deb,) = out.glob("*.deb")
    shipped = subprocess.run(
        [
            "sh",
            "-c",
            'dpkg-deb --fsys-tarfile "$0" | tar -xO ./usr/share/mattermost/overrides.json',
            str(deb),
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert json.loads(shipped) == {"ExperimentalSettings": {"FromAPlugin": True}}


def test_allow_unknown_settings_is_a_switch(tmp_path: Path) -> None:
    (tmp_path / "build.toml").write_text('allow-unknown-settings = "yes"\n')
    with pytest.raises(UsageError, match="allow-unknown-settings: expected true or false"):
        load_file(tmp_path / "build.toml")
