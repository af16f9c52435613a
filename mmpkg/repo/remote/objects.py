"""The tree as a destination serves it: every file a client may fetch, under the name it
fetches it by, with its SHA-256, and what kind of object it is.

A destination holds no links: `dists/CHANNEL` and `rpm/CHANNEL/ARCH/repodata` are read through
the links to their live generation (publish.py), and the generation directories themselves,
hidden names, are never carried. Nor is the private state in `.mmpkg/`.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mmpkg.repo.journal import PRIVATE
from mmpkg.repo.packages import sha256


class Kind(enum.Enum):
    """In the order a publish carries them: a reader of the destination that read a top file
    finds every object it names (the content-addressed ones went first), and a reader of an
    older top file still finds its own (they go only generations later)."""

    # Named by their content (the pool's packages, by-hash indices, hash-named dnf metadata):
    # never change under their name, so a CDN may cache them for good.
    CONTENT = "content"
    # Named by their role (apt's Packages at its plain name, the keys): clients reading by
    # hash never fetch the plain index; older clients do, after the top file that names it.
    NAMED = "named"
    # The signed entry points (InRelease, Release, Release.gpg, repomd.xml and its signature).
    TOP = "top"


APT_TOP = frozenset({"InRelease", "Release", "Release.gpg"})
DNF_TOP = frozenset({"repomd.xml", "repomd.xml.asc"})

# A CDN's cache: content-named objects for a year (they never change); the others a minute, so
# a new generation reaches clients within a minute of its publish.
CACHE_CONTROL = {
    Kind.CONTENT: "public, max-age=31536000, immutable",
    Kind.NAMED: "public, max-age=60",
    Kind.TOP: "public, max-age=60",
}

CONTENT_TYPES = {
    ".deb": "application/vnd.debian.binary-package",
    ".rpm": "application/x-rpm",
    ".gz": "application/gzip",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".xml": "application/xml",
    ".json": "application/json",
    ".asc": "application/pgp-signature",
    ".gpg": "application/pgp-keys",
}


def kind_of(key: str) -> Kind:
    """What kind of object `key` (a path relative to the tree) is."""
    parts = PurePosixPath(key).parts
    name = parts[-1]
    if parts[0] == "dists" and len(parts) == 3 and name in APT_TOP:
        return Kind.TOP
    if parts[0] == "rpm" and len(parts) == 5 and parts[3] == "repodata":
        return Kind.TOP if name in DNF_TOP else Kind.CONTENT
    if parts[0] == "pool" or "by-hash" in parts or (parts[0] == "rpm" and parts[3:4] == ("Packages",)):
        return Kind.CONTENT
    return Kind.NAMED


def content_type(key: str) -> str:
    name = PurePosixPath(key).name
    if name in ("InRelease", "Release", "Packages") or "by-hash" in key:
        return "text/plain" if name != "Release.gpg" else CONTENT_TYPES[".gpg"]
    return CONTENT_TYPES.get(PurePosixPath(key).suffix, "application/octet-stream")


@dataclass(frozen=True)
class Local:
    """One file of the tree, as the destination holds it under `key`."""

    key: str
    path: Path
    sha256: str
    size: int

    @property
    def kind(self) -> Kind:
        return kind_of(self.key)


def files(tree: Path) -> list[Local]:
    """Every file the tree serves, sorted by key; hashes are remembered by inode, size and
    modification time in the tree's private state, so a publish of one new release into a tree
    of fifty reads only the new files."""
    cache_file = tree / PRIVATE / "hashes.json"
    try:
        cache: dict[str, list[object]] = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    found: list[Local] = []
    fresh: dict[str, list[object]] = {}
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=True):
        # Hidden names are private state and generations no link shows.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath, name)
            key = path.relative_to(tree).as_posix()
            st = path.stat()
            stamp: list[object] = [st.st_ino, st.st_size, st.st_mtime_ns]
            cached = cache.get(key)
            digest = str(cached[3]) if cached and cached[:3] == stamp else sha256(path)
            fresh[key] = [*stamp, digest]
            found.append(Local(key=key, path=path, sha256=digest, size=st.st_size))
    try:
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(fresh))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # only a cache: the next publish hashes again
    return sorted(found, key=lambda f: f.key)
