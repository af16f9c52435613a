"""Build-time overrides (configuration layer 2): `--set Section.Key=VALUE` and the build config's
`[set]` table, read into (dotted key, JSON value) pairs.

Every value must be one JSON can hold, since it ships as /usr/share/mattermost/overrides.json:
a TOML date, time or a non-finite float is refused here, naming the key, before anything else.
"""

from __future__ import annotations

import datetime
import json
import math
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
