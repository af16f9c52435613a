"""Build-time overrides (configuration layer 2): `--set Section.Key=VALUE` and the build config's
`[set]` table, read into (dotted key, JSON value) pairs.

Every value must be one JSON can hold, since it ships as /usr/share/mattermost/overrides.json:
a TOML date, time or a non-finite float is refused here, naming the key, before anything else.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

Json = Any  # a value json.loads can return
Setting = tuple[str, Json]


class SettingError(ValueError):
    """What is wrong with one setting; the caller adds where it was given."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")


def parse_setting(text: str) -> Setting:
    """`Section.Key=VALUE`: VALUE is JSON when it parses as JSON, a string otherwise."""
    key, sep, raw = text.partition("=")
    check_name(key)
    if not sep:
        raise SettingError(key, "expected Section.Key=VALUE")
    try:
        value: Json = json.loads(raw)
    except ValueError:
        value = raw
    return key, json_value(key, value)


def from_table(table: Mapping[str, object], section: str = "") -> tuple[Setting, ...]:
    """The `[set]` table of a build config, in any of TOML's spellings of Section.Key:

        [set]                           [set]                       [set.ServiceSettings]
        "ServiceSettings.SiteURL" = x   ServiceSettings.SiteURL = x SiteURL = x

    A table at section level holds settings; below Section.Key a table is the setting's JSON
    object (PluginSettings.PluginStates has plugin ids with dots as keys)."""
    settings: list[Setting] = []
    for name, value in table.items():
        key = f"{section}.{name}" if section else name
        if not section and "." not in name and isinstance(value, Mapping):
            settings.extend(from_table(value, key))
            continue
        check_name(key)
        settings.append((key, json_value(key, value)))
    return tuple(settings)


def check_name(key: str) -> None:
    parts = key.split(".")
    if len(parts) < 2 or not all(p and p.replace("_", "").isalnum() for p in parts):
        raise SettingError(key, "not a setting name: expected Section.Key, e.g. ServiceSettings.SiteURL")


def json_value(key: str, value: object) -> Json:
    """`value` if JSON can hold it (TOML can hold more), else a SettingError saying what to write."""
    if isinstance(value, str | bool | int | None):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SettingError(key, f"{value} is not a JSON number")
        return value
    if isinstance(value, list):
        return [json_value(key, item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(key, v) for k, v in value.items()}
    what = {datetime.datetime: "date-time", datetime.date: "date", datetime.time: "time"}.get(type(value))
    if what:
        raise SettingError(key, f'a TOML {what} is not a JSON value: quote it, e.g. "{value}", for a string')
    raise SettingError(key, f"{value!r} is not a JSON value")


# Names that hold secrets in upstream's model.Config: passwords, keys, salts, tokens, and the
# database DSNs, which carry the database password.
_SECRET = re.compile(r"(Password|Secret|SecretAccessKey|Key|Salt|Token|DataSource|DataSource\w*Replicas)$")
_NOT_SECRET = {"ElasticsearchSettings.ClientKey"}  # a path to the key file


def env_name(key: str) -> str:
    """The variable the server reads for `key`: MM_SECTION_KEY."""
    return "MM_" + "_".join(part.upper() for part in key.split("."))


def check_not_secret(key: str, value: Json, *, env_file: str, shipped: str) -> None:
    """Refuse a secret: it would ship in `shipped`, a package file every local user can read."""
    found = _secret_in(key, value)
    if found:
        what = "holds a secret" if found == key else f"holds a secret ({found})"
        raise SettingError(
            key,
            f"{what}, and {shipped} in the package is readable by every user of the server: "
            f"set it on the server in {env_file} ({env_name(key)}=...) instead",
        )


def _secret_in(key: str, value: Json) -> str | None:
    """`key` if its name is a secret's, else the first secret's name inside its value."""
    if key not in _NOT_SECRET and _SECRET.search(key.rsplit(".", 1)[-1]):
        return key
    return _nested_secret(value)


def _nested_secret(value: Json) -> str | None:
    items = (
        list(value.items())
        if isinstance(value, dict)
        else [("", v) for v in value]
        if isinstance(value, list)
        else []
    )
    for name, item in items:
        if name and _SECRET.search(name):
            return str(name)
        if found := _nested_secret(item):
            return found
    return None


def check_against(key: str, value: Json, defaults: Mapping[str, Json], *, allow_unknown: bool) -> str | None:
    """Check `key` and the JSON type of `value` against the release's config.json (`defaults`).

    Raise SettingError for a wrong type, or for a name the release does not have unless
    `allow_unknown`, then return a note saying it ships anyway. Names below Section.Key are
    inside the setting's object value and free, like the keys of a JSON value (plugin ids)."""
    section, name, *below = key.split(".")
    keys = defaults.get(section)
    if not isinstance(keys, dict):
        return _unknown(key, f"no section {section}", section, defaults, allow_unknown)
    if name not in keys:
        return _unknown(key, f"no {section}.{name}", name, keys, allow_unknown)
    node = keys[name]
    for depth, part in enumerate(below):
        if node is None:
            return None
        if not isinstance(node, dict):
            raise SettingError(
                key, f"{'.'.join([section, name, *below[:depth]])} is {_kind(node)}, not a section"
            )
        if part not in node:
            return None
        node = node[part]
    _check_type(key, value, node)
    return None


def _unknown(key: str, what: str, name: str, known: Mapping[str, Json], allow: bool) -> str:
    if allow:
        return (
            f"{key}: not in this release's config.json; shipped anyway (--allow-unknown-settings), "
            "but this release's server drops it whenever it writes config.json"
        )
    by_case = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), by_case, n=1, cutoff=0.6)
    guess = f" (did you mean {by_case[close[0]]}?)" if close else ""
    raise SettingError(
        key,
        f"this release's config.json has {what}{guess}; --allow-unknown-settings ships it anyway",
    )


def _check_type(key: str, value: Json, default: Json) -> None:
    if default is None or (value is None and isinstance(default, list | dict)):
        return
    if _kind(value) == _kind(default) and not (_whole(default) and not _whole(value)):
        return
    expected = "a whole number" if _whole(default) and _kind(value) == "a number" else _kind(default)
    shown = json.dumps(default)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    hint = f', e.g. "{value}"' if isinstance(default, str) and isinstance(value, int | float) else ""
    got = json.dumps(value) if _kind(value) == _kind(default) else _kind(value)
    raise SettingError(
        key,
        f"is {expected} in this release's config.json ({shown} by default), not {got}"
        + (f": write it as a JSON string{hint}" if hint else ""),
    )


def _whole(value: Json) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _kind(value: Json) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
