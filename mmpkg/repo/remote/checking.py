"""`mmpkg repo check DEST`: what a publish left at DEST, read as apt and dnf read it. Every
top file must verify against the archive keys DEST serves, every index a top file names must
be there with the size and SHA-256 it lists, and every package an index names must be there
with its size and SHA-256 (recorded at upload; `deep` reads each one through)."""

from __future__ import annotations

import hashlib
import posixpath
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from debian import deb822
from mmpkg.errors import MmpkgError
from mmpkg.repo.remote.publishing import STATE, read_state
from mmpkg.repo.remote.stores import Stat, Store
from mmpkg.repo.served import NS, decompress, release_indices
from mmpkg.tools.run import run

KEYRING = "keys/archive-keyring.gpg"


def problems(store: Store, *, deep: bool = False) -> list[str]:
    """Each problem at DEST, one line each; none when every reader would be served whole."""
    found: list[str] = []
    keys = read_state(store).objects
    channels = sorted({k.split("/")[1] for k in keys if re.fullmatch(r"dists/[^/]+/InRelease", k)})
    arches = sorted(
        {
            (k.split("/")[1], k.split("/")[2])
            for k in keys
            if re.fullmatch(r"rpm/[^/]+/[^/]+/repodata/repomd\.xml", k)
        }
    )
    if not channels and not arches:
        return [f"{store.url}: no channel published here (no {STATE})"]
    ring = store.read(KEYRING)
    if ring is None:
        found.append(f"{KEYRING}: missing: no signature can be checked")
    named: dict[str, tuple[str, int]] = {}  # package key -> (sha256, size), from every index
    for channel in channels:
        found += _apt(store, channel, ring, named)
    for channel, arch in arches:
        found += _dnf(store, channel, arch, ring, named)
    stats = store.stat(sorted(named))
    for key, (digest, size) in sorted(named.items()):
        found += _object(store, key, digest, size, stats.get(key), deep=deep)
    return found


def _object(store: Store, key: str, digest: str, size: int, stat: Stat | None, *, deep: bool) -> list[str]:
    if stat is None:
        return [f"{key}: named by an index, missing"]
    if stat.size != size:
        return [f"{key}: {stat.size} bytes, its index says {size}"]
    recorded = store.sha256(key) if deep else stat.sha256
    if recorded is not None and recorded != digest:
        return [f"{key}: SHA-256 {recorded}, its index says {digest}"]
    return []


def _verified(
    store: Store, key: str, digest: str, size: int, named_by: str
) -> tuple[bytes | None, list[str]]:
    data = store.read(key)
    if data is None:
        return None, [f"{key}: named by {named_by}, missing"]
    if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
        return None, [f"{key}: not the file {named_by} names ({size} bytes, SHA-256 {digest})"]
    return data, []


def _gpgv(ring: bytes | None, data: bytes, signature: bytes | None = None) -> bool:
    if ring is None:
        return True  # reported once, above
    with tempfile.TemporaryDirectory(prefix="mmpkg-check-") as tmp:
        Path(tmp, "ring.gpg").write_bytes(ring)
        Path(tmp, "data").write_bytes(data)
        args = ["gpgv", "--keyring", f"{tmp}/ring.gpg"]
        if signature is not None:
            Path(tmp, "sig").write_bytes(signature)
            args.append(f"{tmp}/sig")
        return run([*args, f"{tmp}/data"], check=False).returncode == 0


def _apt(store: Store, channel: str, ring: bytes | None, named: dict[str, tuple[str, int]]) -> list[str]:
    suite = f"dists/{channel}"
    inrelease = store.read(f"{suite}/InRelease")
    if inrelease is None:
        return [f"{suite}/InRelease: missing"]
    found = [] if _gpgv(ring, inrelease) else [f"{suite}/InRelease: its signature does not verify"]
    try:
        by_hash, listed = release_indices(inrelease.decode(), f"{suite}/InRelease")
    except (MmpkgError, UnicodeDecodeError) as exc:
        return [*found, f"{suite}/InRelease: unreadable ({exc})"]
    for name, (digest, size) in sorted(listed.items()):
        where = f"{suite}/{name}"
        data, wrong = _verified(store, where, digest, size, f"{suite}/InRelease")
        found += wrong
        if by_hash:
            _, wrong = _verified(
                store,
                f"{posixpath.dirname(where)}/by-hash/SHA256/{digest}",
                digest,
                size,
                f"{suite}/InRelease",
            )
            found += wrong
        if data is not None and Path(name).name == "Packages":
            for para in deb822.Packages.iter_paragraphs(data.decode(), use_apt_pkg=False):
                named[para["Filename"]] = (para["SHA256"], int(para["Size"]))
    return found


def _dnf(
    store: Store, channel: str, arch: str, ring: bytes | None, named: dict[str, tuple[str, int]]
) -> list[str]:
    base = f"rpm/{channel}/{arch}"
    repomd = store.read(f"{base}/repodata/repomd.xml")
    if repomd is None:
        return [f"{base}/repodata/repomd.xml: missing"]
    signature = store.read(f"{base}/repodata/repomd.xml.asc")
    found = (
        []
        if signature is not None and _gpgv(ring, repomd, signature)
        else [f"{base}/repodata/repomd.xml.asc: missing, or not a signature of repomd.xml"]
    )
    for data in ET.fromstring(repomd).findall("r:data", NS):
        location, checksum = data.find("r:location", NS), data.find("r:checksum", NS)
        href = location.get("href", "") if location is not None else ""
        size = int(data.findtext("r:size", "0", NS) or 0)
        body, wrong = _verified(
            store,
            f"{base}/{href}",
            (checksum.text or "") if checksum is not None else "",
            size,
            f"{base}/repodata/repomd.xml",
        )
        found += wrong
        if body is not None and data.get("type") == "primary":
            for pkg in ET.fromstring(decompress(href, body, f"{base}/{href}")).findall("c:package", NS):
                loc, sum_ = pkg.find("c:location", NS), pkg.find("c:checksum", NS)
                size_el = pkg.find("c:size", NS)
                key = posixpath.normpath(f"{base}/{loc.get('href', '') if loc is not None else ''}")
                named[key] = (
                    (sum_.text or "") if sum_ is not None else "",
                    int(size_el.get("package", "0")) if size_el is not None else 0,
                )
    return found
