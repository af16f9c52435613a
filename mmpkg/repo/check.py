"""Consistency check of a published tree: indices against files, signatures against the current
key set (any current key may have signed), and each channel's keyring package."""

from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mmpkg.repo import apt, dnf, keyring, keys
from mmpkg.repo.journal import JOURNAL, PRIVATE
from mmpkg.repo.layout import SHARED_POOL
from mmpkg.repo.publish import withdrawn
from mmpkg.repo.signing import rpm_verifies, verify

if TYPE_CHECKING:
    from mmpkg.repo.repository import Repository


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def problems(repo: Repository) -> list[str]:
    tree = repo.path
    keyset = keys.load(tree)
    if keyset is None or not (tree / keys.KEYRING_ASC).exists():
        return [f"{keys.STATE} or {keys.KEYRING_ASC} is missing"]
    key = (tree / keys.KEYRING_ASC).read_text()
    found: list[str] = []
    if (tree / PRIVATE / JOURNAL).exists():
        found.append(f"{PRIVATE}/{JOURNAL}: a change was interrupted; the next add or remove finishes it")
    if set(fpr for fpr, *_ in keys.describe(key)) != set(keyset.keys):
        found.append(f"{keys.KEYRING_ASC}: does not hold the keys {keys.STATE} lists")
    listed: set[Path] = set()
    for channel in repo.channels():
        found += _apt(tree, channel, key)
        for arch in dnf.ARCHES:
            found += _dnf(tree, channel, arch, keyset)
        entries = repo.list(channel)
        listed |= {e.path for e in entries}
        current = keyring.version(keyset)
        have = {e.format for e in entries if e.name == keyring.NAME and e.version == current}
        if have != {"deb", "rpm"}:
            found.append(f"{channel}: lacks {keyring.NAME} {current}, the current key set")
        found += _keyrings(repo, channel, keyset)
    return found + _shared_pool(tree, listed)


def _shared_pool(tree: Path, listed: set[Path]) -> list[str]:
    """A file of the shared pool that no channel lists and none withdrew is in no index."""
    hidden = withdrawn(tree)
    pool = tree / SHARED_POOL
    return [
        f"{f.relative_to(tree)}: not in any index"
        for f in sorted(pool.glob("*/*/*"))
        if pool.is_dir()
        if f.relative_to(tree) not in listed and str(f.relative_to(tree)) not in hidden
    ]


def _keyrings(repo: Repository, channel: str, keyset: keys.KeySet) -> list[str]:
    """Clients trust the keys of the newest keyring package they can get: every one in the
    channel must be one the repository made, version N-R for a key set N up to the current one
    and a revision R up to keyring.REVISION (the older ones are superseded), and those of the
    current key set must hold the current keys."""
    found: list[str] = []
    for e in repo.list(channel):
        if e.name != keyring.NAME:
            continue
        number = re.fullmatch(r"([1-9][0-9]*)-([1-9][0-9]*)", e.version)
        if number is None or int(number.group(1)) > keyset.version or int(number.group(2)) > keyring.REVISION:
            found.append(
                f"{channel}: {e.path} is not the repository's own {keyring.NAME}: its key sets go up "
                f"to {keyset.version} ({keys.STATE})"
            )
        elif int(number.group(1)) == keyset.version and (
            keyring.installed_keys(repo.path / e.path, e.format) != set(keyset.keys)
        ):
            found.append(f"{channel}: {e.path} does not hold the repository's keys ({keys.STATE})")
    return found


def _apt(tree: Path, channel: str, key: str) -> list[str]:
    suite = tree / "dists" / channel
    found: list[str] = []
    if not verify(key, suite / "InRelease"):
        found.append(f"dists/{channel}/InRelease: signature does not verify")
    if not verify(key, suite / "Release", suite / "Release.gpg"):
        found.append(f"dists/{channel}/Release.gpg: signature does not verify")
    release = apt.parse_deb822((suite / "Release").read_text())[0]
    for line in release.get("SHA256", "").splitlines():
        if not line.strip():
            continue
        digest, size, name = line.split()
        f = suite / name
        if not f.exists() or f.stat().st_size != int(size) or _sha256(f) != digest:
            found.append(f"dists/{channel}/{name}: does not match Release")
        # apt fetches by hash (Acquire-By-Hash), so that copy is the one clients see.
        by_hash = f.parent / "by-hash" / "SHA256" / digest
        if not by_hash.is_file() or _sha256(by_hash) != digest:
            found.append(f"dists/{channel}/{name}: its by-hash copy is missing or differs")
    indexed: set[str] = set()
    for arch in apt.ARCHES:
        packages = suite / apt.COMPONENT / f"binary-{arch}" / "Packages"
        for para in apt.parse_deb822(packages.read_text()):
            name = para.get("Filename", "")
            indexed.add(name)
            f = tree / name
            if not f.is_file():
                found.append(f"{name}: listed in dists/{channel} but missing")
            elif f.stat().st_size != int(para.get("Size", -1)) or _sha256(f) != para.get("SHA256"):
                found.append(f"{name}: size or SHA256 differs from dists/{channel}")
    # The channel's own directory, where debs were stored before the shared pool (which a
    # channel called main holds, one level deeper: _shared_pool()).
    pool = tree / "pool" / channel
    hidden = withdrawn(tree)
    for deb in sorted(pool.glob("*")) if pool.is_dir() else []:
        if deb.is_file() and str(deb.relative_to(tree)) not in indexed | hidden:
            found.append(f"{deb.relative_to(tree)}: not in any index")
    return found


def _dnf(tree: Path, channel: str, arch: str, keyset: keys.KeySet) -> list[str]:
    repo = tree / "rpm" / channel / arch
    rel = f"rpm/{channel}/{arch}"
    repomd = repo / "repodata" / "repomd.xml"
    if not repomd.exists():
        return [f"{rel}/repodata/repomd.xml is missing"]
    found: list[str] = []
    if not verify("".join(keyset.keys.values()), repomd, repomd.with_name("repomd.xml.asc")):
        found.append(f"{rel}/repodata/repomd.xml.asc: signature does not verify")
    try:
        listed = dnf.primary_locations(repo)
    except (OSError, ValueError, SyntaxError) as exc:
        return [*found, f"{rel}/repodata: unreadable ({exc})"]
    paths = set()
    for href, (size, digest) in listed.items():
        # An href is relative to the repository's base: ../../../pool/main/... (dnf.py).
        path = posixpath.normpath(f"{rel}/{href}")
        paths.add(path)
        f = tree / path
        if path.startswith(("../", "/")):
            found.append(f"{rel}: repodata lists {href}, outside the tree")
        elif not f.is_file():
            found.append(f"{path}: listed in {rel}/repodata but missing")
        elif f.stat().st_size != size or _sha256(f) != digest:
            found.append(f"{path}: size or SHA256 differs from {rel}/repodata")
        elif not rpm_verifies(f, list(keyset.keys.values())):
            found.append(f"{path}: not signed by a current key")
    hidden = withdrawn(tree)
    for rpm in sorted((repo / "Packages").glob("*")):
        if str(rpm.relative_to(tree)) not in paths | hidden:
            found.append(f"{rel}/{rpm.relative_to(repo)}: not in repodata")
    return found
