"""Upstream's supported upgrade path, as one table.

The package's upgrade guard (templates/lifecycle/upgrade-guard.sh.j2) is rendered from these
rows, and the repository's retention and any chained upgrade plan read them here, so the shell
and Python cannot disagree about which jumps upstream supports. Intervals are half-open:
`[low, below)`.

Two levels, in upstream's own words (release-policy.md): an upgrade from one Extended Support
Release to the next is "fully supported and tested", one across an ESR is "supported, but not
tested", anything further is not supported. The guard refuses only what is not supported;
plan() takes the tested path, through every ESR on the way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mmpkg.errors import UpgradePathError
from mmpkg.mattermost.versions import MattermostVersion

_V = MattermostVersion.parse

_NOTES = "https://docs.mattermost.com/administration-guide/upgrade/important-upgrade-notes.html"
_POLICY = "https://docs.mattermost.com/product-overview/release-policy.html"
_PREPARE = "https://docs.mattermost.com/administration-guide/upgrade/prepare-to-upgrade-mattermost.html"
_RELEASES = "https://docs.mattermost.com/product-overview/mattermost-server-releases.html"
_LEGACY = "https://docs.mattermost.com/product-overview/unsupported-legacy-releases.html"
_ARCHIVE = "https://docs.mattermost.com/product-overview/version-archive.html"

# Upstream's Extended Support Release lines (major.minor), oldest first, and where each is listed
# as one (the version archive marks every ESR release "Extended Support Release (ESR)"). Upstream
# names a new ESR about every nine months: add it here when it is announced. The channel rules
# (mmpkg/sync/channels.py) read the same lines.
ESR_LINES: tuple[tuple[str, str], ...] = (
    ("4.10", _ARCHIVE),
    ("5.9", _ARCHIVE),
    ("5.19", _ARCHIVE),
    ("5.25", _ARCHIVE),
    ("5.31", _ARCHIVE),
    ("5.37", _LEGACY),
    ("6.3", _LEGACY),
    ("7.1", _POLICY),
    ("7.8", _LEGACY),
    ("8.1", _POLICY),
    ("9.5", _POLICY),
    ("9.11", _POLICY),
    ("10.5", _RELEASES),
    ("10.11", _RELEASES),
    ("11.7", _RELEASES),
)


def _line_start(line: str) -> MattermostVersion:
    return _V(f"{line}.0")


@dataclass(frozen=True)
class RequiredStop:
    """An upgrade from below `stop` to `before` or later must first stop in [stop, before):
    migrations are only guaranteed from the previous extended support release."""

    stop: MattermostVersion
    before: MattermostVersion
    source: str
    kind: str = "ESR"

    @property
    def line(self) -> str:
        return f"{self.stop.major}.{self.stop.minor}"

    @property
    def advice(self) -> str:
        # A stop at a given release of its line (5.37.10) names that release.
        target = self.line if self.stop.patch == 0 else str(self.stop)
        return f"upgrade to {target} ({self.kind}) first"

    def refuses(self, old: MattermostVersion, new: MattermostVersion) -> bool:
        return old < self.stop and not new < self.before


@dataclass(frozen=True)
class ForbiddenJump:
    """No upgrade from [old_from, old_below) to [new_from, new_below), whatever lies between."""

    old_from: MattermostVersion
    old_below: MattermostVersion
    new_from: MattermostVersion
    new_below: MattermostVersion
    source: str

    @property
    def advice(self) -> str:
        return (
            f"upstream forbids {self.old_from}+ to {self.new_from} and later below {self.new_below}; "
            f"choose {self.new_below} or later"
        )

    def refuses(self, old: MattermostVersion, new: MattermostVersion) -> bool:
        return (
            not old < self.old_from
            and old < self.old_below
            and not new < self.new_from
            and new < self.new_below
        )


@dataclass(frozen=True)
class EsrPath:
    """How far one upgrade may go past upstream's Extended Support Releases without stopping.

    An upgrade passes over an ESR line when the old version has not reached the line's first
    release and the new one is on a later line. Upstream (mattermost/docs@9dd1c713ed):

    - source/product-overview/release-policy.md: "Upgrading from one Extended Support Release
      (ESR) to the next ESR (major -> major_next) is fully supported and tested. However,
      upgrading across multiple ESR versions (major to major+2) is supported, but not tested.
      If you plan to skip versions, we strongly recommend upgrading only between ESR releases."
    - source/administration-guide/upgrade/prepare-to-upgrade-mattermost.rst: "This backwards
      compatibility guarantee extends to only the last ESR version. [...] upgrading from ESR1
      to ESR2, and then ESR2 to ESR3 will ensure backwards compatibility, but not from ESR1 to
      ESR3 directly. In the case of delayed upgrades, we recommend upgrading to the closest ESR
      version first, and from there to the next ESR."

    So passing over no ESR is the tested path, the one plans take; passing over one (ESR1 to
    ESR3) is supported, and the guard lets it through; passing over more is not supported. A
    version between two ESRs has passed the older one, so it may do what that ESR may: reach
    the next ESR's line (tested) or the line after it (supported). A target between two ESRs
    counts as past the older one, whose release its migrations are guaranteed from.
    """

    lines: tuple[MattermostVersion, ...]  # each line's first release, X.Y.0, oldest first
    may_pass: int
    source: str

    def passed(self, old: MattermostVersion, new: MattermostVersion) -> tuple[MattermostVersion, ...]:
        """The ESR lines (as X.Y.0) that going from `old` straight to `new` passes over."""
        new_line = MattermostVersion(new.major, new.minor, 0)
        return tuple(line for line in self.lines if old < line and line < new_line)

    def refuses(self, old: MattermostVersion, new: MattermostVersion) -> bool:
        return len(self.passed(old, new)) > self.may_pass

    def untested(self, old: MattermostVersion, new: MattermostVersion) -> bool:
        return bool(self.passed(old, new))

    def advice(self, old: MattermostVersion, new: MattermostVersion) -> str:
        first = self.passed(old, new)[0]
        return f"upgrade to {first.major}.{first.minor} (ESR) first"


@dataclass(frozen=True)
class UpgradePath:
    required_stops: tuple[RequiredStop, ...]
    forbidden_jumps: tuple[ForbiddenJump, ...]
    esr: EsrPath
    # The first release that no longer runs on MySQL; the guard checks the database itself.
    mysql_end: MattermostVersion
    mysql_end_source: str

    @property
    def rules(self) -> tuple[RequiredStop | ForbiddenJump, ...]:
        """The specific rows, in the order the guard checks them (the ESR rule comes last)."""
        return (*self.required_stops, *self.forbidden_jumps)


TABLE = UpgradePath(
    # Stricter than the ESR rule where upstream says "must" or "first" of a given release.
    required_stops=(
        # From before 5.0 "you can't upgrade directly to v6.0"; from below 5.35 upstream
        # recommends the latest Extended Support Release "first before upgrading to" v6.0.
        RequiredStop(stop=_V("5.37.0"), before=_V("6.0.0"), source=_PREPARE),
        # "When upgrading to Mattermost 7.x from a 5.x release, upgrade to 5.37.10 first" (docs
        # PR #5892, which replaced the 5.37.9 of PR #5850 once 5.37.10 was out).
        RequiredStop(stop=_V("5.37.10"), before=_V("7.0.0"), source=_NOTES),
        # "If you're on a legacy Mattermost release prior to v7.1 [...] you must upgrade to v7.1
        # ESR at a minimum."
        RequiredStop(stop=_V("7.1.0"), before=_V("7.2.0"), source=_POLICY),
    ),
    forbidden_jumps=(
        # "Customers should not upgrade from >=10.11.17 to <=11.7.2": a migration-numbering bug
        # fixed in 11.7.3.
        ForbiddenJump(
            old_from=_V("10.11.17"),
            old_below=_V("10.12.0"),
            new_from=_V("11.0.0"),
            new_below=_V("11.7.3"),
            source=_NOTES,
        ),
    ),
    esr=EsrPath(lines=tuple(_line_start(line) for line, _ in ESR_LINES), may_pass=1, source=_POLICY),
    mysql_end=_V("11.0.0"),
    mysql_end_source=_NOTES,
)


def _advice(old: MattermostVersion, new: MattermostVersion, table: UpgradePath) -> str | None:
    for row in table.rules:
        if row.refuses(old, new):
            return row.advice
    if table.esr.refuses(old, new):
        return table.esr.advice(old, new)
    return None


def refusal(old: MattermostVersion, new: MattermostVersion, table: UpgradePath = TABLE) -> str | None:
    """Why the package's guard refuses to upgrade `old` to `new`, in its words; None if allowed.

    Downgrades and the database are the guard's own checks and are not considered here."""
    advice = _advice(old, new, table)
    return None if advice is None else f"refusing to upgrade from {old} to {new}: {advice}"


def step_advice(old: MattermostVersion, new: MattermostVersion, table: UpgradePath = TABLE) -> str | None:
    """Why a plan does not go from `old` straight to `new`: what the guard would say, or the ESR
    the step would pass over untested; None when it is a step of the tested path."""
    advice = _advice(old, new, table)
    if advice is None and table.esr.untested(old, new):
        advice = table.esr.advice(old, new)
    return advice


def _missing(current: MattermostVersion, target: MattermostVersion, table: UpgradePath) -> str:
    for stop in table.required_stops:
        if stop.refuses(current, target):
            return f"a {stop.line} release (at least {stop.stop}, below {stop.before})"
    for jump in table.forbidden_jumps:
        if jump.refuses(current, target):
            return f"{jump.new_below} or later instead of {target}"
    passed = table.esr.passed(current, target)
    if passed:
        return f"a {passed[0].major}.{passed[0].minor} release (ESR)"
    return "a version the table allows"  # unreachable while step_advice() and _missing read one table


def plan(
    installed: MattermostVersion,
    target: MattermostVersion,
    available: Iterable[MattermostVersion],
    table: UpgradePath = TABLE,
) -> list[MattermostVersion]:
    """The versions to upgrade through, ending with `target`: upstream's tested path, each step
    one the guard accepts that passes over no ESR (so the plan stops at every ESR line between).

    Stops come from `available` only (`target` itself is always reachable as the destination).
    From each version the plan goes to the newest version it may go to that way, so it takes as
    few steps as the tested path allows."""
    if target < installed:
        raise UpgradePathError(f"{target} is older than {installed}: a downgrade is not an upgrade path")
    pool = sorted({v for v in available if installed < v < target} | {target}, reverse=True)
    steps: list[MattermostVersion] = []
    current = installed
    while current != target:
        nxt = next((v for v in pool if current < v and step_advice(current, v, table) is None), None)
        if nxt is None:
            raise UpgradePathError(
                f"no upgrade path from {current} to {target} among the available versions: "
                f"it needs {_missing(current, target, table)}"
            )
        steps.append(nxt)
        current = nxt
    return steps
