"""Which package files a channel can drop: the newest `keep` versions stay, and so do the stops
of upstream's tested upgrade path (mmpkg/mattermost/upgrade_path.py's plan(): every Extended Support
Release and required stop) between anything the channel carried and its newest version, so
that an installation of any version it carried can still reach the newest through the channel
alone, the way upstream tests.

Why from every version and not only from the kept ones: every version newer than a kept one is
kept, so the kept versions' stops are always kept already; the installations at risk are those
of the versions about to go.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mmpkg.errors import MmpkgError, RepoError, UpgradePathError
from mmpkg.mattermost.upgrade_path import plan
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.version_order import PackageVersion

if TYPE_CHECKING:
    from mmpkg.repo.packages import Entry

log = logging.getLogger("mmpkg")

# The newest versions a channel keeps of each package and architecture when not told how many
# (repo add --keep, sync --keep, Repository.add), now or before (STATE_KEY).
KEEP = 5

# Where a repository keeps each channel's --keep: in its private state (journal.read_state()),
# saved by the same commit as the add that gave it, so that a later add or sync without --keep
# keeps as many, and retention is not undone by a command that forgot the flag.
STATE_KEY = "keep"


def stored(state: Mapping[str, Any]) -> dict[str, int]:
    """Each channel's --keep in a repository's private `state`."""
    return {channel: int(n) for channel, n in state.get(STATE_KEY, {}).items()}


def check_keep(keep: int) -> None:
    if keep < 1:
        raise RepoError(f"keep must be at least 1, not {keep}: a channel needs its newest version")


def upstream_version(entry: Entry) -> MattermostVersion:
    """The Mattermost version of a package version: deb and rpm both spell it `X.Y.Z[~rcN]-REV`."""
    upstream, _, _ = entry.version.rpartition("-")
    return MattermostVersion.parse(upstream.replace("~rc", "-rc"))


def to_prune(entries: Sequence[Entry], keep: int) -> list[Entry]:
    """The entries to delete: per (name, format, arch), all but the newest revision of the newest
    `keep` versions and of the upgrade path's stops to the newest version (see above)."""
    check_keep(keep)
    groups: dict[tuple[str, str, str], dict[MattermostVersion, list[Entry]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for entry in entries:
        try:
            version = upstream_version(entry)
        except MmpkgError:
            # Not ours to judge: a file whose version nobody can read is never deleted.
            log.warning("keeping %s: %r is not a Mattermost package version", entry.path, entry.version)
            continue
        groups[(entry.name, entry.format, entry.arch)][version].append(entry)
    pruned: set[Entry] = set()
    for (name, fmt, arch), by_version in groups.items():
        versions = sorted(by_version, reverse=True)
        kept = set(versions[:keep])
        for old in versions[keep:]:
            try:
                kept.update(plan(old, versions[0], versions))
            except UpgradePathError as exc:
                log.warning(
                    "%s (%s, %s): installations of %s cannot reach the newest: %s", name, fmt, arch, old, exc
                )
        for version, revisions in by_version.items():
            # The newest revision as apt and dnf see it: the format's own order.
            revisions = sorted(revisions, key=lambda e: PackageVersion(e.format, e.version), reverse=True)
            pruned.update(revisions[1:] if version in kept else revisions)
    return [e for e in entries if e in pruned]
