"""What `sync` plans from: each channel's package files and how many versions retention keeps
there. The tree on disk (repository.Repository) and the tree as it is served (served.Served)
both answer, so the plan is the same whichever was read.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Protocol

from mmpkg.packaging.version_order import PackageVersion
from mmpkg.repo.packages import Entries, Entry


class Listing(Protocol):
    def list(self, channel: str) -> Entries:
        """Every package file in `channel`, in ordered()'s order; none for a channel it lacks."""
        ...

    def channels(self) -> builtins.list[str]:
        """The channels it has, sorted."""
        ...

    def keep(self, channel: str, given: int | None = None) -> int:
        """How many versions retention keeps in `channel`: `given`, else what it knows of it."""
        ...


def ordered(found: Iterable[Entry]) -> Entries:
    """`found` by name, format and architecture, newest first, without a file whose version its
    format does not allow (add never publishes one; a file named so by hand is no package)."""
    entries = [e for e in found if _orderable(e)]
    entries.sort(key=lambda e: PackageVersion(e.format, e.version), reverse=True)
    entries.sort(key=lambda e: (e.name, e.format, e.arch))
    return entries


def _orderable(entry: Entry) -> bool:
    try:
        PackageVersion(entry.format, entry.version)
    except ValueError:
        return False
    return True
