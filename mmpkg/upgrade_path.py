"""Upstream's supported upgrade path, as one table.

The package's upgrade guard (templates/lifecycle/upgrade-guard.sh.j2) is rendered from these
rows, and the repository's retention and any chained upgrade plan read them here, so the shell
and Python cannot disagree about which jumps upstream supports. Intervals are half-open:
`[low, below)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mmpkg.errors import UpgradePathError
from mmpkg.versions import MattermostVersion

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
# (mmpkg/channels.py) read the same lines.
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
        return f"upgrade to {self.line} ({self.kind}) first"

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
class UpgradePath:
    required_stops: tuple[RequiredStop, ...]
    forbidden_jumps: tuple[ForbiddenJump, ...]
    # The first release that no longer runs on MySQL; the guard checks the database itself.
    mysql_end: MattermostVersion
    mysql_end_source: str

    @property
    def rules(self) -> tuple[RequiredStop | ForbiddenJump, ...]:
        """Every row, in the order the guard checks them."""
        return (*self.required_stops, *self.forbidden_jumps)


TABLE = UpgradePath(
    required_stops=(
        # "From 5.x to 7.x, go to 5.37.10 first"; before 5.0 to 6.0, through the latest 5.x ESR.
        RequiredStop(stop=_V("5.37.0"), before=_V("6.0.0"), source=_PREPARE),
        # "Below v7.1 you must go to v7.1 ESR at least."
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
    mysql_end=_V("11.0.0"),
    mysql_end_source=_NOTES,
)


def refusal(old: MattermostVersion, new: MattermostVersion, table: UpgradePath = TABLE) -> str | None:
    """Why the package's guard refuses to upgrade `old` to `new`, in its words; None if allowed.

    Downgrades and the database are the guard's own checks and are not considered here."""
    for row in table.rules:
        if row.refuses(old, new):
            return f"refusing to upgrade from {old} to {new}: {row.advice}"
    return None


def _missing(current: MattermostVersion, target: MattermostVersion, table: UpgradePath) -> str:
    for stop in table.required_stops:
        if stop.refuses(current, target):
            return f"a {stop.line} release (at least {stop.stop}, below {stop.before})"
    for jump in table.forbidden_jumps:
        if jump.refuses(current, target):
            return f"{jump.new_below} or later instead of {target}"
    return "a version the table allows"  # unreachable while refusal() and _missing read one table


def plan(
    installed: MattermostVersion,
    target: MattermostVersion,
    available: Iterable[MattermostVersion],
    table: UpgradePath = TABLE,
) -> list[MattermostVersion]:
    """The versions to upgrade through, ending with `target`, each step one the guard accepts.

    Stops come from `available` only (`target` itself is always reachable as the destination).
    From each version the plan goes to the newest version it may go to directly, so it takes as
    few steps as the table allows."""
    if target < installed:
        raise UpgradePathError(f"{target} is older than {installed}: a downgrade is not an upgrade path")
    pool = sorted({v for v in available if installed < v < target} | {target}, reverse=True)
    steps: list[MattermostVersion] = []
    current = installed
    while current != target:
        nxt = next((v for v in pool if current < v and refusal(current, v, table) is None), None)
        if nxt is None:
            raise UpgradePathError(
                f"no upgrade path from {current} to {target} among the available versions: "
                f"it needs {_missing(current, target, table)}"
            )
        steps.append(nxt)
        current = nxt
    return steps
