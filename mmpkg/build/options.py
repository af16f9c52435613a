"""Build options, each declared once in OPTIONS.

A row of the table is the long flag of `mmpkg build`, the key of the TOML build configuration
(`--config FILE`), the help text, and a line of the README's option list (mmpkg/docs.py). The
defaults are BuildOptions' own. The layers, lowest first: the environment, the file, the flags;
`--set` adds to (and wins over) the file's `[set]` table.

    formats = ["deb", "rpm"]
    revision = 2
    target = ["debian-11", "rhel-8"]
    compression = "xz"
    maintainer = "Chat Team <chat-team@example.com>"
    [set]
    ServiceSettings.SiteURL = "https://chat.example.com"
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path

from mmpkg.build.maintainer_field import HOW_TO_GIVE, maintainer_from_environment, parse_maintainer
from mmpkg.build.overrides import Json, Setting, SettingError, from_table, parse_setting
from mmpkg.errors import UsageError
from mmpkg.packaging.formats import Compression, PackageFormat
from mmpkg.packaging.targets import DEFAULT, Target, compressions, parse_targets


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    maintainer: str
    out: Path = Path("dist")
    formats: tuple[PackageFormat, ...] = (PackageFormat.DEB, PackageFormat.RPM)
    revision: int = 1
    # The distributions the packages must install on; a format with none gets its defaults.
    target: tuple[Target, ...] = DEFAULT
    # None: each format's best that all its targets read (payloads()).
    compression: Compression | None = None
    # Build-time overrides (configuration layer 2): dotted key -> JSON value, in order given.
    settings: tuple[Setting, ...] = field(default=())
    allow_unknown_settings: bool = False
    source_date_epoch: int | None = None
    # Where each setting was given ("--set", "build.toml: [set]"), for error messages.
    setting_sources: tuple[tuple[str, str], ...] = field(default=(), metadata={"option": False})

    def payloads(self) -> tuple[tuple[PackageFormat, Compression], ...]:
        """Each format's payload compression; a UsageError if --compression is one a target
        cannot read."""
        return compressions(self.target, self.formats, self.compression)

    def source(self, key: str) -> str:
        return dict(self.setting_sources).get(key, "--set")

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
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"expected a positive whole number, got {value!r}") from None
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


def _settings(value: object) -> tuple[Setting, ...]:
    """The file's `[set]` table, or the texts of the `--set` flags."""
    if isinstance(value, list):
        return tuple(parse_setting(str(text)) for text in value)
    if not isinstance(value, Mapping):
        raise ValueError('expected a table of "Section.Key" = value')
    return from_table(value)


def _switch(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


class Kind(StrEnum):
    VALUE = "value"  # --name VALUE
    REPEAT = "repeat"  # --name VALUE, as often as needed; adds to the layers below
    SWITCH = "switch"  # --name alone; true or false in the file


@dataclass(frozen=True, kw_only=True)
class Option:
    """One build option: its flag and TOML key, how a value is read, and what it does."""

    name: str
    parse: Callable[[object], object]
    metavar: str
    help: str
    kind: Kind = Kind.VALUE
    # For a default that is not a fixed value (it comes from the environment or the release).
    default_text: str = ""

    @property
    def attr(self) -> str:
        """The BuildOptions field it sets."""
        return {"set": "settings"}.get(self.name, self.name.replace("-", "_"))

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def default(self) -> str:
        """The default as a user would write it."""
        return self.default_text or _show(BuildOptions.__dataclass_fields__[self.attr].default)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value) or "none"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


OPTIONS: tuple[Option, ...] = (
    Option(name="out", parse=lambda v: Path(_text(v)), metavar="DIR", help="directory the packages go to"),
    Option(
        name="formats",
        parse=_formats,
        metavar="deb,rpm",
        help=f"package formats to build, comma-separated ({', '.join(PackageFormat)})",
    ),
    Option(
        name="revision",
        parse=_revision,
        metavar="N",
        help="package revision: raise it to ship a packaging fix",
    ),
    Option(
        name="target",
        parse=parse_targets,
        metavar="NAME[,NAME...]",
        help='the distributions the packages must install on (see "Target distributions"), or the '
        "oldest dpkg or rpm they must install with (dpkg-1.20, rpm-4.14); a format given none gets "
        "its default",
    ),
    Option(
        name="compression",
        parse=_compression,
        metavar="|".join(Compression),
        help="payload compression; a target that cannot read it is an error",
        default_text="the best every target of the format reads: zstd, else xz",
    ),
    Option(
        name="maintainer",
        parse=parse_maintainer,
        metavar='"Name <email>"',
        help="who made the packages: their Maintainer, Packager and changelog",
        default_text='"$DEBFULLNAME <$DEBEMAIL>"',
    ),
    Option(
        name="set",
        parse=_settings,
        metavar="Section.Key=VALUE",
        kind=Kind.REPEAT,
        help="an enforced setting, re-applied on every upgrade; VALUE is JSON if it parses, else a string",
        default_text="none",
    ),
    Option(
        name="allow-unknown-settings",
        parse=_switch,
        metavar="",
        kind=Kind.SWITCH,
        help="ship --set names this release's config.json lacks (a later release's); this release's "
        "server drops them when it writes config.json; types are still checked",
    ),
    Option(
        name="source-date-epoch",
        parse=_epoch,
        metavar="N",
        help="the time of every file and header, in seconds since 1970, for reproducible output",
        default_text="$SOURCE_DATE_EPOCH, else the newest file in the tarball",
    ),
)
BY_NAME = {option.name: option for option in OPTIONS}


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
        if key not in BY_NAME:
            raise UsageError(f"{path}: unknown key '{key}' (known: {', '.join(BY_NAME)})")
        values[key] = _convert(key, value, f"{path}: [{key}]" if key == "set" else f"{path}: {key}")
    return values


def _convert(key: str, value: object, where: str) -> object:
    try:
        return BY_NAME[key].parse(value)
    except SettingError as exc:
        raise UsageError(f"{where} {exc}") from exc  # "--set Section.Key: ..."
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from exc


def from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """Defaults from the environment, below the file and the flags: SOURCE_DATE_EPOCH, the
    reproducible-builds convention that build systems set for every tool, and the maintainer
    Debian's tools take from DEBFULLNAME and DEBEMAIL."""
    values: dict[str, object] = {}
    if environ.get("SOURCE_DATE_EPOCH"):
        values["source-date-epoch"] = _convert(
            "source-date-epoch", environ["SOURCE_DATE_EPOCH"], "SOURCE_DATE_EPOCH"
        )
    maintainer = maintainer_from_environment(environ)
    if maintainer is not None:
        values["maintainer"] = _convert("maintainer", maintainer, "DEBFULLNAME and DEBEMAIL")
    return values


def resolve(
    file_values: Mapping[str, object], flags: Mapping[str, object], *, file: Path | None = None
) -> BuildOptions:
    """Combine the file's values (from `file`, if any) with the flags given (None = not given);
    flags win."""
    merged: dict[str, object] = dict(file_values)
    sources = {key: f"{file}: [set]" for key, _ in _pairs(merged.get("set", ()))} if file else {}
    for key, value in flags.items():
        if value is None:
            continue
        option = BY_NAME[key]
        converted = _convert(key, value, option.flag)
        if option.kind is Kind.REPEAT:
            sources.update((k, option.flag) for k, _ in _pairs(converted))
            converted = tuple((dict(_pairs(merged.get(key, ()))) | dict(_pairs(converted))).items())
        merged[key] = converted
    if "maintainer" not in merged:
        raise UsageError(f"no maintainer for the packages: {HOW_TO_GIVE}")
    fields = {BY_NAME[k].attr: v for k, v in merged.items()}
    return BuildOptions(**fields, setting_sources=tuple(sources.items()))  # type: ignore[arg-type]


def resolve_revision(flag: object) -> int:
    """The revision alone (`inspect --revision`), as `build` would take it."""
    if flag is None:
        return BuildOptions.revision  # the field's default
    number = _convert("revision", flag, "--revision")
    assert isinstance(number, int)
    return number


def _pairs(value: object) -> tuple[Setting, ...]:
    assert isinstance(value, tuple)
    return value
