"""Where package files lie in the tree: once, in the pool every channel shares, or, published
before it, in the channel's own directory. Trees keep the files of both layouts (no migration):
each index names each file where it lies.

    pool/main/m/NAME/FILE                       the shared pool: debs and rpms, each once
    pool/CHANNEL/FILE                           the channel's own debs, before the shared pool
    rpm/CHANNEL/ARCH/Packages/FILE              the channel's own rpms, before the shared pool
"""

from __future__ import annotations

from pathlib import Path

SHARED_POOL = "pool/main"
# From a dnf repository's base, rpm/CHANNEL/ARCH/, back to the tree: its metadata names every
# rpm by its path in the tree behind this (createrepo_c --location-prefix).
TO_TREE = "../../../"


def pool_dir(name: str) -> Path:
    """The shared pool's directory for package `name`, as Debian lays out its pools. Deeper than
    any file of a channel's own `pool/CHANNEL/FILE`, so a channel called main is never taken
    for it (is_shared())."""
    return Path(SHARED_POOL) / name[0] / name


def is_shared(path: Path) -> bool:
    """Whether `path` (relative to the tree) is a file of the shared pool."""
    return len(path.parts) == 5 and path.parts[:2] == tuple(SHARED_POOL.split("/"))


def owner(path: Path) -> str | None:
    """The channel whose own directory holds `path`; None for a file of the shared pool."""
    return None if is_shared(path) else path.parts[1]
