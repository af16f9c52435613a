from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from mmpkg.build.options import (
    OPTIONS,
    BuildOptions,
    from_environment,
    load_file,
    resolve,
)
from mmpkg.build.overrides import parse_setting
from mmpkg.errors import UsageError
from mmpkg.packaging.formats import Compression, PackageFormat

MAINTAINER = "Chat Team <chat-team@example.com>"
# What a flag-less build gets from an environment with no maintainer in it.
GIVEN = {"maintainer": MAINTAINER}


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("ServiceSettings.SiteURL=https://x.example", "ServiceSettings.SiteURL", "https://x.example"),
        ("TeamSettings.MaxUsersPerTeam=42", "TeamSettings.MaxUsersPerTeam", 42),
        ("ServiceSettings.EnableDeveloper=true", "ServiceSettings.EnableDeveloper", True),
        ('ServiceSettings.SiteURL="42"', "ServiceSettings.SiteURL", "42"),
        ('PluginSettings.Plugins={"a": {"b": 1}}', "PluginSettings.Plugins", {"a": {"b": 1}}),
        ("EmailSettings.FeedbackName=a=b", "EmailSettings.FeedbackName", "a=b"),
        ("EmailSettings.FeedbackName=", "EmailSettings.FeedbackName", ""),
    ],
)
def test_set_values_are_json_when_they_parse(text: str, key: str, value: object) -> None:
    assert parse_setting(text) == (key, value)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("SiteURL=x", "--set SiteURL: not a setting name"),
        ("ServiceSettings.SiteURL", "--set ServiceSettings.SiteURL: expected Section.Key=VALUE"),
        (".Key=1", "--set .Key: not a setting name"),
        ("A..B=1", "--set A..B: not a setting name"),
        ("A.$(x)=1", r"--set A.\$\(x\): not a setting name"),
    ],
)
def test_bad_settings(bad: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"^{message}"):
        resolve(GIVEN, {"set": [bad]})


def test_overrides_nest() -> None:
    options = BuildOptions(maintainer=MAINTAINER, settings=(("A.B", 1), ("A.C.D", "x"), ("E.F", True)))
    assert options.overrides() == {"A": {"B": 1, "C": {"D": "x"}}, "E": {"F": True}}


def test_file_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "build.toml"
    config.write_text(
        'formats = ["rpm"]\nrevision = 3\ncompression = "xz"\nmaintainer = "Chat <chat@example.com>"\n'
        '[set]\n"ServiceSettings.SiteURL" = "https://a.example"\n"TeamSettings.MaxUsersPerTeam" = 10\n'
    )
    options = resolve(
        load_file(config),
        {"revision": "4", "set": ["ServiceSettings.SiteURL=https://b.example"], "formats": None},
    )
    assert options.formats == (PackageFormat.RPM,)
    assert options.revision == 4
    assert options.compression is Compression.XZ
    assert options.maintainer == "Chat <chat@example.com>"
    assert options.overrides() == {
        "ServiceSettings": {"SiteURL": "https://b.example"},
        "TeamSettings": {"MaxUsersPerTeam": 10},
    }


def test_unknown_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "build.toml"
    config.write_text("revison = 2\n")
    with pytest.raises(UsageError, match="unknown key 'revison'"):
        load_file(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("revision = 0\n", "revision: expected a positive whole number"),
        ('compression = "lz4"\n', "compression: choose one of zstd, xz, gzip"),
        ('formats = ["deb", "apk"]\n', "formats: formats are deb, rpm"),
        ("set = 1\n", r"\[set\]: expected a table"),
        ("revision = [\n", "is not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "build.toml"
    config.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_file(config)


def test_formats_flag_keeps_a_stable_order() -> None:
    assert resolve(GIVEN, {"formats": "rpm,deb"}).formats == (PackageFormat.DEB, PackageFormat.RPM)


def test_source_date_epoch_from_the_environment_is_the_lowest_layer(tmp_path: Path) -> None:
    env = from_environment({"SOURCE_DATE_EPOCH": "1700000000"})
    env |= GIVEN
    assert resolve(env, {}).source_date_epoch == 1_700_000_000
    config = tmp_path / "build.toml"
    config.write_text("source-date-epoch = 1600000000\n")
    assert resolve(env | load_file(config), {}).source_date_epoch == 1_600_000_000
    assert resolve(env, {"source-date-epoch": "1500000000"}).source_date_epoch == 1_500_000_000
    assert from_environment({}) == {} and from_environment({"SOURCE_DATE_EPOCH": ""}) == {}
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH: expected seconds since 1970, got 'yesterday'"):
        from_environment({"SOURCE_DATE_EPOCH": "yesterday"})


def test_the_option_table_covers_the_model() -> None:
    """Every field of BuildOptions can be set from the command line and the file, by one row."""
    options = {f.name for f in fields(BuildOptions) if f.metadata.get("option", True)}
    assert {o.attr for o in OPTIONS} == options
    assert len({o.name for o in OPTIONS}) == len(OPTIONS)


@pytest.mark.parametrize(
    "text",
    [
        "Chat Team <chat-team@example.com>",
        "Jörg Müller <joerg@example.org>",
        "J. R. Hacker <j.r+pkg@mail.example.co.uk>",
    ],
)
def test_maintainer_is_name_and_address(text: str) -> None:
    assert resolve({}, {"maintainer": f"  {text} "}).maintainer == text


@pytest.mark.parametrize(
    "text",
    [
        "chat-team@example.com",
        "Chat Team",
        "Chat Team <chat-team>",
        "<chat-team@example.com>",
        "Chat Team chat-team@example.com",
        "Chat, Team <chat-team@example.com>",
        "Chat Team <chat-team@example.com> extra",
        "Chat Team <chat team@example.com>",
    ],
)
def test_malformed_maintainer_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r'--maintainer: expected "Name <email>"'):
        resolve({}, {"maintainer": text})
    config = tmp_path / "build.toml"
    config.write_text(f"maintainer = {text!r}\n".replace("'", '"'))
    with pytest.raises(UsageError, match=rf'{config}: maintainer: expected "Name <email>"'):
        load_file(config)


def test_no_maintainer_is_an_error_saying_how_to_give_one() -> None:
    with pytest.raises(UsageError, match="no maintainer") as info:
        resolve(from_environment({}), {})
    for way in ("--maintainer", "maintainer =", "DEBFULLNAME", "DEBEMAIL"):
        assert way in str(info.value), way


@pytest.mark.parametrize(
    ("environ", "maintainer"),
    [
        ({"DEBFULLNAME": "Chat Team", "DEBEMAIL": "chat-team@example.com"}, MAINTAINER),
        ({"DEBEMAIL": "Chat Team <chat-team@example.com>"}, MAINTAINER),
        ({"NAME": "Chat Team", "EMAIL": "chat-team@example.com"}, MAINTAINER),
        ({"DEBFULLNAME": "Chat Team", "EMAIL": "chat-team@example.com", "NAME": "Other"}, MAINTAINER),
    ],
)
def test_maintainer_from_the_environment(environ: dict[str, str], maintainer: str) -> None:
    """The variables dch and debchange read, below the file and the flags."""
    assert resolve(from_environment(environ), {}).maintainer == maintainer
    assert (
        resolve(from_environment(environ), {"maintainer": "A B <a@b.example>"}).maintainer
        == "A B <a@b.example>"
    )


def test_only_an_address_in_the_environment_is_not_enough() -> None:
    with pytest.raises(UsageError, match="no maintainer"):
        resolve(from_environment({"DEBEMAIL": "chat-team@example.com"}), {})


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("2024-01-31", "a TOML date"),
        ("2024-01-31T10:00:00Z", "a TOML date-time"),
        ("10:00:00", "a TOML time"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("[1, 2024-01-31]", "a TOML date"),
    ],
)
def test_set_values_that_json_cannot_hold_are_refused(tmp_path: Path, value: str, what: str) -> None:
    """Refused when the file is read, naming file and key, not as a traceback after unpacking."""
    config = tmp_path / "build.toml"
    config.write_text(f'[set]\n"ExperimentalSettings.Since" = {value}\n')
    with pytest.raises(UsageError, match=rf"^{config}: \[set\] ExperimentalSettings.Since: {what}") as info:
        load_file(config)
    assert "JSON" in str(info.value)


ORG = {"ServiceSettings": {"SiteURL": "https://a.example"}, "TeamSettings": {"MaxUsersPerTeam": 10}}


@pytest.mark.parametrize(
    "text",
    [
        '[set]\nServiceSettings.SiteURL = "https://a.example"\nTeamSettings.MaxUsersPerTeam = 10\n',
        '[set.ServiceSettings]\nSiteURL = "https://a.example"\n[set.TeamSettings]\nMaxUsersPerTeam = 10\n',
        '[set]\n"ServiceSettings.SiteURL" = "https://a.example"\n"TeamSettings.MaxUsersPerTeam" = 10\n',
        'set.ServiceSettings.SiteURL = "https://a.example"\nset.TeamSettings = { MaxUsersPerTeam = 10 }\n',
    ],
    ids=["dotted-keys", "section-tables", "quoted-keys", "top-level-dotted"],
)
def test_set_in_every_toml_spelling(tmp_path: Path, text: str) -> None:
    config = tmp_path / "build.toml"
    config.write_text(text)
    assert resolve(GIVEN | load_file(config), {}).overrides() == ORG


def test_a_set_value_may_be_an_object_whose_keys_have_dots(tmp_path: Path) -> None:
    """Plugin ids have dots: below Section.Key a table is the setting's JSON object, not more keys."""
    config = tmp_path / "build.toml"
    config.write_text('[set.PluginSettings.PluginStates."com.mattermost.calls"]\nEnable = true\n')
    options = resolve(GIVEN | load_file(config), {})
    assert options.overrides() == {
        "PluginSettings": {"PluginStates": {"com.mattermost.calls": {"Enable": True}}}
    }


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[set]\nServiceSettings = "x"\n', "ServiceSettings"),
        ('[set.ServiceSettings]\n"Site URL" = 1\n', "ServiceSettings.Site URL"),
        ("[set.ServiceSettings]\nSince = 2024-01-31\n", "ServiceSettings.Since"),
    ],
)
def test_set_errors_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "build.toml"
    config.write_text(text)
    with pytest.raises(UsageError, match=rf"^{config}: \[set\] {key}: "):
        load_file(config)
