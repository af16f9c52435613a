"""Which channel each upstream release goes to: the rules are data, with a default table here.

A rules file (`mmpkg sync --channel-rules FILE`) is TOML; each channel names the releases it
takes, and a release goes to every channel that takes it:

    esr-lines = ["10.5", "10.11"]   # optional: replaces the known ESR lines
    [channels]
    stable = "final"                # every final release
    esr = "esr"                     # final releases of the ESR lines
    rc = "rc"                       # release candidates, only with --include-rc
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mmpkg.errors import UsageError

# Upstream's ESR lines, with their sources, are the upgrade path's (which plans through them).
from mmpkg.mattermost.upgrade_path import ESR_LINES
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo.packages import CHANNEL

KINDS = ("final", "esr", "rc")
DEFAULT_CHANNELS: dict[str, str] = {"stable": "final", "esr": "esr", "rc": "rc"}


@dataclass(frozen=True)
class Rules:
    channels: tuple[tuple[str, str], ...]  # (channel, kind), in the file's order
    esr_lines: frozenset[tuple[int, int]]

    def channels_for(self, version: MattermostVersion, *, include_rc: bool) -> list[str]:
        """The channels `version` belongs in; none for a release candidate unless asked."""
        kinds = {"rc"} if version.rc is not None else {"final"}
        if version.rc is None and (version.major, version.minor) in self.esr_lines:
            kinds.add("esr")
        if not include_rc:
            kinds.discard("rc")
        return [channel for channel, kind in self.channels if kind in kinds]

    def reachable(self, *, include_rc: bool) -> list[str]:
        """Every channel some release can go to: those of release candidates only if asked."""
        return [channel for channel, kind in self.channels if include_rc or kind != "rc"]


def _line(text: object, where: str) -> tuple[int, int]:
    parts = str(text).split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UsageError(f'{where}: esr-lines entry {text!r} is not MAJOR.MINOR, e.g. "10.11"')
    return int(parts[0]), int(parts[1])


DEFAULT = Rules(tuple(DEFAULT_CHANNELS.items()), frozenset(_line(line, "ESR_LINES") for line, _ in ESR_LINES))


def load_rules(path: Path | None) -> Rules:
    """The rules in `path`, else the default table."""
    if path is None:
        return DEFAULT
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        # As the build's --config says it: the reason, without Python's errno and repr.
        raise UsageError(f"--channel-rules {path}: cannot read it: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--channel-rules {path}: {exc}") from exc
    unknown = set(data) - {"channels", "esr-lines"}
    if unknown:
        raise UsageError(f"{path}: unknown key {sorted(unknown)[0]!r} (channels, esr-lines)")
    channels = data.get("channels", DEFAULT_CHANNELS)
    if not isinstance(channels, dict) or not channels:
        raise UsageError(f"{path}: [channels] must map each channel to one of {', '.join(KINDS)}")
    for channel, kind in channels.items():
        if not CHANNEL.fullmatch(channel):
            raise UsageError(f"{path}: bad channel name {channel!r}: one lower-case word")
        if kind not in KINDS:
            raise UsageError(f"{path}: channels.{channel} = {kind!r}: expected one of {', '.join(KINDS)}")
    lines = data.get("esr-lines")
    esr = DEFAULT.esr_lines if lines is None else frozenset(_line(x, str(path)) for x in lines)
    return Rules(tuple(channels.items()), esr)
