"""The lock and the atomic publish shared by the apt and dnf halves of a repository.

Writers take an exclusive flock(2) on the tree's lock file, so two concurrent `add`s run one
after the other. A new generation of an index directory is built beside the live one and
swapped in with renames, so a failure leaves the old generation in place.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".mmpkg-lock"


@contextmanager
def locked(tree: Path) -> Iterator[None]:
    """Hold the repository's write lock for the duration of the block."""
    tree.mkdir(parents=True, exist_ok=True)
    with open(tree / LOCK_NAME, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def staging(live: Path) -> Path:
    """A fresh, empty directory beside `live` to build its next generation in."""
    new = live.with_name(f".{live.name}.new")
    if new.exists():
        shutil.rmtree(new)
    new.mkdir(parents=True)
    return new


def swap(new: Path, live: Path) -> None:
    """Replace directory `live` by `new`: two renames; the old generation is removed after."""
    old = live.with_name(f".{live.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if live.exists():
        os.rename(live, old)
    os.rename(new, live)
    if old.exists():
        shutil.rmtree(old)
