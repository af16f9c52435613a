"""Build options: one table describes each option for the TOML file and the command line alike.

A TOML file given with `--config` uses the same names as the flags:

    formats = ["deb", "rpm"]
    revision = 2
    compression = "xz"
    maintainer = "Chat Team <chat-team@example.com>"
    [set]
    "ServiceSettings.SiteURL" = "https://chat.example.com"

Flags win over the file; `--set` adds to (and wins over) the file's `[set]` table.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from mmpkg.errors import UsageError

Json = Any  # a value json.loads can return


class PackageFormat(StrEnum):
    DEB = "deb"
    RPM = "rpm"


class Compression(StrEnum):
    ZSTD = "zstd"
    XZ = "xz"
    GZIP = "gzip"


DEFAULT_MAINTAINER = "Mattermost package builders <mattermost-packages@example.com>"


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    out: Path = Path("dist")
    formats: tuple[PackageFormat, ...] = (PackageFormat.DEB, PackageFormat.RPM)
    revision: int = 1
    compression: Compression = Compression.ZSTD
    maintainer: str = DEFAULT_MAINTAINER
    # Build-time overrides (configuration layer 2): dotted key -> JSON value, in order given.
    settings: tuple[tuple[str, Json], ...] = field(default=())
    source_date_epoch: int | None = None

    def overrides(self) -> dict[str, Json]:
        """The build-time overrides as the nested JSON object they are merged as."""
        tree: dict[str, Json] = {}
        for key, value in self.settings:
            node = tree
            *parents, leaf = key.split(".")
            for part in parents:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise UsageError(f"--set {key}: {part} is already set to a plain value")
                node = child
            node[leaf] = value
        return tree


def _formats(value: object) -> tuple[PackageFormat, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("expected a list such as deb,rpm")
    try:
        chosen = {PackageFormat(str(i).strip()) for i in items}
    except ValueError:
        raise ValueError(f"formats are {', '.join(PackageFormat)}, not {value!r}") from None
    return tuple(f for f in PackageFormat if f in chosen)


def _revision(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a positive whole number")
    number = int(value)
    if number < 1:
        raise ValueError("expected a positive whole number")
    return number


def _compression(value: object) -> Compression:
    try:
        return Compression(str(value))
    except ValueError:
        raise ValueError(f"choose one of {', '.join(Compression)}") from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ValueError("expected one line of text")
    return value.strip()


def _epoch(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected seconds since 1970")
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError(f"expected seconds since 1970, got {value!r}") from None
    if seconds < 0:
        raise ValueError(f"expected seconds since 1970, got {value!r}")
    return seconds


def parse_setting(text: str) -> tuple[str, Json]:
    """`Section.Key=VALUE`: VALUE is JSON when it parses as JSON, a string otherwise."""
    key, sep, raw = text.partition("=")
    _check_key(key)
    if not sep:
        raise UsageError(f"--set {text}: expected Section.Key=VALUE")
    try:
        value: Json = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _check_key(key: str) -> None:
    parts = key.split(".")
    if len(parts) < 2 or not all(p and p.replace("_", "").isalnum() for p in parts):
        raise UsageError(f"'{key}' is not a setting name: expected Section.Key, e.g. ServiceSettings.SiteURL")


def _settings(value: object) -> tuple[tuple[str, Json], ...]:
    if not isinstance(value, Mapping):
        raise ValueError('expected a table of "Section.Key" = value')
    for key in value:
        _check_key(str(key))
    return tuple((str(k), v) for k, v in value.items())


# name -> how to read it. The same names are the TOML keys and the long flags.
OPTIONS: dict[str, Callable[[object], object]] = {
    "out": lambda v: Path(_text(v)),
    "formats": _formats,
    "revision": _revision,
    "compression": _compression,
    "maintainer": _text,
    "set": _settings,
    "source-date-epoch": _epoch,
}


def _field(name: str) -> str:
    return {"set": "settings"}.get(name, name.replace("-", "_"))


def load_file(path: Path) -> dict[str, object]:
    """Read a TOML build configuration; unknown keys and bad values are errors naming the key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc
    values: dict[str, object] = {}
    for key, value in raw.items():
        if key not in OPTIONS:
            raise UsageError(f"{path}: unknown key '{key}' (known: {', '.join(OPTIONS)})")
        values[key] = _convert(key, value, f"{path}: {key}")
    return values


def _convert(key: str, value: object, where: str) -> object:
    try:
        return OPTIONS[key](value)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from exc


def from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """Defaults from the environment, below the file and the flags: SOURCE_DATE_EPOCH, the
    reproducible-builds convention that build systems set for every tool."""
    if environ.get("SOURCE_DATE_EPOCH"):
        return {
            "source-date-epoch": _convert(
                "source-date-epoch", environ["SOURCE_DATE_EPOCH"], "SOURCE_DATE_EPOCH"
            )
        }
    return {}


def resolve(file_values: Mapping[str, object], flags: Mapping[str, object]) -> BuildOptions:
    """Combine the file's values with the flags given (None = not given); flags win."""
    merged: dict[str, object] = dict(file_values)
    for key, value in flags.items():
        if value is None:
            continue
        if key == "set":
            assert isinstance(value, list)
            earlier = merged.get("set", ())
            assert isinstance(earlier, tuple)
            combined: dict[str, Json] = dict(earlier)
            combined.update(parse_setting(s) for s in value)
            merged["set"] = tuple(combined.items())
        else:
            merged[key] = _convert(key, value, f"--{key}")
    return BuildOptions(**{_field(k): v for k, v in merged.items()})  # type: ignore[arg-type]
