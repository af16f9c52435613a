"""Rings: a release goes to a first channel (canary), and on to the next (stable) once it has
proved itself there, as the same package files (`mmpkg repo promote`). What makes a promotion
early is recorded here: when each file entered each channel, in the repository's private state.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmpkg.build import omnibus
from mmpkg.errors import RepoError, UsageError
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.version_order import PackageVersion
from mmpkg.repo import keyring

if TYPE_CHECKING:
    from mmpkg.repo.packages import Entries, Entry

STATE_KEY = "entered"  # channel -> {path relative to the tree: when it entered (Unix time)}
PHASED_KEY = "phased"  # channel -> the share (0-100) of apt servers offered its newest version
# Not releases: each channel carries its own, made by the repository (repository.py).
_INFRASTRUCTURE = frozenset({keyring.NAME, omnibus.NAME})


def record(state: dict[str, Any], channel: str, *, added: list[Path], removed: list[Path]) -> None:
    """Note in `state` (a commit's) when the files `added` to `channel` entered it; forget the
    ones `removed`. A file that was already there keeps its first time."""
    entered: dict[str, int] = state.setdefault(STATE_KEY, {}).setdefault(channel, {})
    stamp = int(time.time())
    for path in added:
        entered.setdefault(str(path), stamp)
    for path in removed:
        entered.pop(str(path), None)


def chosen(listed: Entries, version: str, channel: str) -> Entries:
    """The files of Mattermost `version` that `channel` lists: each of its packages, formats and
    architectures at the newest revision of upstream's X.Y.Z, or at the one revision X.Y.Z-N."""
    releases = [e for e in listed if e.name not in _INFRASTRUCTURE]
    wanted = _upstream(version)
    exact = [e for e in releases if e.version == version]
    matching = exact or [e for e in releases if _upstream(e.version.rpartition("-")[0]) == wanted]
    if not matching:
        have = sorted({e.version for e in releases}, key=lambda v: PackageVersion("deb", v), reverse=True)
        hint = f"; it has {', '.join(have[:8])}" if have else "; it has no release"
        raise RepoError(f"{version} is not published in {channel}{hint}")
    newest: dict[tuple[str, str, str], Entry] = {}
    for e in matching:
        key = (e.name, e.arch, e.format)
        if key not in newest or PackageVersion(e.format, e.version) > PackageVersion(
            e.format, newest[key].version
        ):
            newest[key] = e
    return sorted(newest.values(), key=lambda e: str(e.path))


def _upstream(text: str) -> MattermostVersion | str:
    try:
        return MattermostVersion.parse(text.replace("~rc", "-rc"))
    except ValueError:
        return text


def check_age(
    state: dict[str, Any], files: Entries, version: str, channel: str, after: float | None, now: float | None
) -> None:
    """Refuse a promotion of `files` before they have been in `channel` for `after` seconds."""
    if after is None:
        return
    entered: dict[str, int] = state.get(STATE_KEY, {}).get(channel, {})
    unknown = [str(e.path) for e in files if str(e.path) not in entered]
    if unknown:
        raise RepoError(
            f"{version}: no record of when {unknown[0]} entered {channel} (it was added before mmpkg "
            "recorded it): promote it without --after once it has proved itself there"
        )
    since = max(entered[str(e.path)] for e in files)
    age = (time.time() if now is None else now) - since
    if age < after:
        ready = datetime.fromtimestamp(since + after, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise RepoError(
            f"{version} entered {channel} {span(age)} ago, less than --after {span(after)}: "
            f"promote it from {ready} on"
        )


def span(seconds: float) -> str:
    """A duration as people write it: 3d, 36h, 90m, 45s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (seconds >= size and seconds % size == 0):
            return f"{seconds / size:.0f}{unit}" if seconds % size == 0 else f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def parse_span(text: str) -> float:
    """`--after`: a whole number with a unit, or several (1d12h): w, d, h, m, s."""
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([wdhms])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise UsageError(f"{text!r} is not a duration: write 7d, 36h, 90m or 1d12h")
    return float(sum(int(n) * units[u] for n, u in parts))


def phased(state: dict[str, Any], channel: str) -> int | None:
    """The Phased-Update-Percentage of `channel`'s newest versions, None when fully phased."""
    value = state.get(PHASED_KEY, {}).get(channel)
    return int(value) if value is not None and int(value) < 100 else None


def parse_percentage(text: str) -> int:
    if not text.isdigit() or int(text) > 100:
        raise UsageError(f"{text!r} is not a percentage: give a whole number from 0 to 100")
    return int(text)


def set_phased(state: dict[str, Any], channel: str, percentage: int) -> None:
    parse_percentage(str(percentage))
    state.setdefault(PHASED_KEY, {})[channel] = percentage


def phase_stanzas(stanzas: dict[Path, str], percentage: int | None) -> dict[Path, str]:
    """`stanzas` (a Packages index's, by deb) with `Phased-Update-Percentage: percentage` in the
    newest version of each release package and architecture: apt (2.1.16 and later) offers that
    version to that share of servers, chosen by their machine-id, and the one before to the rest."""
    if percentage is None:
        return stanzas
    newest: dict[tuple[str, str], tuple[PackageVersion, Path]] = {}
    for deb, text in stanzas.items():
        fields = dict(re.findall(r"^(Package|Version|Architecture): (\S+)$", text, re.MULTILINE))
        if fields.get("Package", "") in _INFRASTRUCTURE or not fields.get("Version"):
            continue
        key, version = (
            (fields["Package"], fields.get("Architecture", "")),
            PackageVersion("deb", fields["Version"]),
        )
        if key not in newest or version > newest[key][0]:
            newest[key] = (version, deb)
    chosen = {deb for _, deb in newest.values()}
    return {
        deb: text.rstrip("\n") + f"\nPhased-Update-Percentage: {percentage}\n\n" if deb in chosen else text
        for deb, text in stanzas.items()
    }
