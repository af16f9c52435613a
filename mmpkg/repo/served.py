"""A repository read from its URL as apt and dnf read it: from the signed indices alone, never
a package. `mmpkg sync URL --plan` plans from it, so a CI pipeline need not copy the whole
served tree (hundreds of MB a package) down just to learn what it lacks.

    dists/CHANNEL/InRelease (else Release)      -> main/binary-ARCH/Packages[.xz|.gz], by-hash
    rpm/CHANNEL/ARCH/repodata/repomd.xml        -> its primary metadata

Each index is checked against the size and digest the file that names it lists: an index read
while a publish replaced it (a mirror half synced, a cache holding one generation's Release
and another's Packages) is an error, never a plan made from two generations. The signatures
are not checked: a plan changes nothing, and what it says is built and published from the
tree on disk. A channel whose InRelease or repomd.xml is not found (404) is an empty one.

The private state (`.mmpkg/`) is not served, so neither is a channel's stored --keep: keep()
is the --keep given, else retention.KEEP.
"""

from __future__ import annotations

import builtins
import bz2
import hashlib
import lzma
import posixpath
import tempfile
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from debian import deb822
from mmpkg.errors import CommandError, UpstreamError
from mmpkg.repo import apt, dnf, retention
from mmpkg.repo.listing import ordered
from mmpkg.repo.packages import Entries, Entry, check_channel
from mmpkg.tools.run import run
from mmpkg.upstream.http import Http, check, shown

WHAT = "sync --plan"
# Of the Packages indices a Release lists, the one read: the smallest.
PACKAGES = ("Packages.xz", "Packages.gz", "Packages")
# The largest index taken once uncompressed: some thousand times what a channel's are.
MAX_INDEX = 256 << 20
NS = {"c": "http://linux.duke.edu/metadata/common", "r": "http://linux.duke.edu/metadata/repo"}


class Served:
    """The repository at `url`, its `channels` read when first listed. A URL cannot be listed
    as a directory can: `channels` are those to look for (sync's rules name them)."""

    def __init__(self, url: str, channels: Sequence[str], *, http: Http | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = http or Http()
        self._wanted = tuple(channels)
        self._listed: dict[str, Entries] = {}
        self._present: set[str] = set()

    def list(self, channel: str) -> Entries:
        check_channel(channel)
        if channel not in self._listed:
            # A noarch rpm of the shared pool is in both architectures' metadata, and one file.
            found = {e.path: e for e in [*self._debs(channel), *self._rpms(channel)]}
            self._listed[channel] = ordered(found.values())
        return self._listed[channel]

    def channels(self) -> builtins.list[str]:
        """Those of the channels to look for that the URL serves."""
        for channel in self._wanted:
            self.list(channel)
        return sorted(self._present)

    def keep(self, channel: str, given: int | None = None) -> int:
        """`given`, else retention.KEEP: the channel's stored --keep is private, and not served."""
        return given if given is not None else retention.KEEP

    # -- apt ------------------------------------------------------------------------------

    def _debs(self, channel: str) -> Entries:
        suite = f"dists/{channel}"
        for name in ("InRelease", "Release"):
            body = self._find(f"{suite}/{name}")
            if body is not None:
                break
        else:
            return []
        self._present.add(channel)
        release = f"{suite}/{name}"
        by_hash, listed = release_indices(self._text(body, release), self._where(release))
        found: dict[Path, Entry] = {}
        for arch in apt.ARCHES:
            index = f"{apt.COMPONENT}/binary-{arch}"
            chosen = next((f"{index}/{p}" for p in PACKAGES if f"{index}/{p}" in listed), None)
            if chosen is None:
                # Every suite mmpkg publishes has both; a page that is no Release has neither.
                raise UpstreamError(f"{WHAT}: {self._where(release)} lists no {index}/Packages")
            digest, size = listed[chosen]
            path = f"{suite}/{index}/by-hash/SHA256/{digest}" if by_hash else f"{suite}/{chosen}"
            data = self._verified(path, "sha256", digest, size, release)
            text = self._text(decompress(chosen, data, self._where(path)), path)
            # An Architecture: all deb is in every architecture's index, and one file.
            found |= {e.path: e for e in packages_entries(text, self._where(path))}
        return list(found.values())

    # -- dnf ------------------------------------------------------------------------------

    def _rpms(self, channel: str) -> Entries:
        found: Entries = []
        for arch in dnf.ARCHES:
            base = f"rpm/{channel}/{arch}"
            repomd = self._find(f"{base}/repodata/repomd.xml")
            if repomd is None:
                continue
            self._present.add(channel)
            named_by = f"{base}/repodata/repomd.xml"
            href, algorithm, digest, size = primary_of(repomd, self._where(named_by))
            path = f"{base}/{href}"
            data = self._verified(path, algorithm, digest, size, named_by)
            found += primary_entries(decompress(href, data, self._where(path)), base, self._where(path))
        return found

    # -- fetching -------------------------------------------------------------------------

    def _where(self, path: str) -> str:
        """`path` as messages show it: its URL, without the URL's user and password."""
        return shown(f"{self.url}/{path}")

    def _find(self, path: str) -> bytes | None:
        """The body at `path`, or None when the server has no such file (404)."""
        response = self.http.get(f"{self.url}/{path}", what=WHAT)
        return None if response.status_code == 404 else check(response, WHAT).content

    def _verified(self, path: str, algorithm: str, digest: str, size: int | None, named_by: str) -> bytes:
        """The body at `path`, refused unless it is the file `named_by` describes."""
        data = check(self.http.get(f"{self.url}/{path}", what=WHAT), WHAT).content
        try:
            actual = hashlib.new(algorithm, data).hexdigest()
        except ValueError:
            raise UpstreamError(
                f"{WHAT}: {self._where(named_by)} names {path} by a {algorithm} checksum, which "
                "cannot be checked"
            ) from None
        if actual != digest.lower() or (size is not None and len(data) != size):
            raise UpstreamError(
                f"{WHAT}: {self._where(path)} is not the file {named_by} lists ({algorithm} {digest}, "
                f"{size} bytes; got {actual}, {len(data)} bytes): the repository was being published "
                "while it was read, or a mirror or cache mixes two publishes; run again"
            )
        return data

    def _text(self, data: bytes, path: str) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise UpstreamError(f"{WHAT}: {self._where(path)} is not UTF-8 text") from None


# -- the formats: small pure functions, each told where its input came from for its errors -----


def release_indices(text: str, where: str) -> tuple[bool, dict[str, tuple[str, int]]]:
    """Whether a Release (or InRelease) says Acquire-By-Hash: yes, and the sha256 and size of
    each index it lists, by its path below the suite."""
    release = deb822.Release(text)
    try:
        listed = {f["name"]: (f["sha256"], int(f["size"])) for f in release.get("SHA256", [])}
    except (KeyError, ValueError):
        raise UpstreamError(
            f"{WHAT}: {where}: its SHA256 field is not lines of digest, size and name"
        ) from None
    return release.get("Acquire-By-Hash", "").strip().lower() == "yes", listed


def packages_entries(text: str, where: str) -> Entries:
    """The debs a Packages index lists, as Repository.list() names them."""
    found = []
    for para in deb822.Packages.iter_paragraphs(text, use_apt_pkg=False):
        fields = [para.get(k, "").strip() for k in ("Package", "Version", "Architecture", "Filename")]
        if not all(fields):
            raise UpstreamError(f"{WHAT}: {where}: a stanza lacks Package, Version, Architecture or Filename")
        name, version, arch, filename = fields
        found.append(Entry(name, version, arch, "deb", Path(filename)))
    return found


def primary_of(repomd: bytes, where: str) -> tuple[str, str, str, int | None]:
    """The location, checksum algorithm, checksum and size of the primary metadata that a
    repomd.xml names."""
    root = _xml(repomd, where)
    for data in root.findall("r:data", NS):
        if data.get("type") != "primary":
            continue
        location, checksum = data.find("r:location", NS), data.find("r:checksum", NS)
        href = location.get("href") if location is not None else None
        if not href or checksum is None or not (checksum.text or "").strip():
            break
        size = (data.findtext("r:size", "", NS) or "").strip()
        algorithm = checksum.get("type", "sha256")
        # createrepo_c's name for sha1, as yum's was.
        algorithm = "sha1" if algorithm == "sha" else algorithm
        return href, algorithm, (checksum.text or "").strip(), int(size) if size.isdigit() else None
    raise UpstreamError(f"{WHAT}: {where} names no primary metadata with its location and checksum")


def primary_entries(primary: bytes, base: str, where: str) -> Entries:
    """The rpms primary metadata lists, as Repository.list() names them: their paths below the
    tree, their versions VERSION-RELEASE (mmpkg's rpms have no epoch, nor their file names)."""
    found = []
    for pkg in _xml(primary, where).findall("c:package", NS):
        name, arch = pkg.findtext("c:name", "", NS), pkg.findtext("c:arch", "", NS)
        version, location = pkg.find("c:version", NS), pkg.find("c:location", NS)
        ver = version.get("ver", "") if version is not None else ""
        rel = version.get("rel", "") if version is not None else ""
        href = location.get("href", "") if location is not None else ""
        if not (name and arch and ver and rel and href):
            raise UpstreamError(f"{WHAT}: {where}: a package lacks its name, arch, version or location")
        # The shared pool's rpms are named from the repository's base up: ../../../pool/main/...
        path = posixpath.normpath(f"{base}/{href}")
        if path.startswith(("../", "/")) or path == "..":
            raise UpstreamError(f"{WHAT}: {where}: {href} leads out of the repository")
        found.append(Entry(name, f"{ver}-{rel}", arch, "rpm", Path(path)))
    return found


def tree_entries(tree: Path, channel: str) -> Entries:
    """The package files `channel` of the tree on disk lists, read from its live indices by the
    same parsers as a served one (Repository.list()), each file once: an Architecture: all deb
    and a noarch rpm of the shared pool are in several indices."""
    found: dict[Path, Entry] = {}
    for arch in apt.ARCHES:
        packages = tree / "dists" / channel / apt.COMPONENT / f"binary-{arch}" / "Packages"
        if packages.is_file():
            found |= {e.path: e for e in packages_entries(packages.read_text(), str(packages))}
    for arch in dnf.ARCHES:
        base = f"rpm/{channel}/{arch}"
        repomd = tree / base / "repodata" / "repomd.xml"
        if repomd.is_file():
            href, *_ = primary_of(repomd.read_bytes(), str(repomd))
            primary = tree / base / href
            data = decompress(href, primary.read_bytes(), str(primary))
            found |= {e.path: e for e in primary_entries(data, base, str(primary))}
    return list(found.values())


def _xml(data: bytes, where: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise UpstreamError(f"{WHAT}: {where} is not XML: {exc}") from None


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


# The compressions apt-ftparchive and createrepo_c write (mmpkg passes createrepo_c none: its
# own default, gzip up to 0.x as on Debian 11 and 12, zstd from 1.0 as on Debian 13), by suffix.
_STDLIB: dict[str, Callable[[], _Decompressor]] = {
    ".gz": lambda: zlib.decompressobj(wbits=zlib.MAX_WBITS | 16),
    ".xz": lzma.LZMADecompressor,
    ".bz2": bz2.BZ2Decompressor,
}


def decompress(name: str, data: bytes, where: str) -> bytes:
    """`data`, the file `name`, uncompressed as its suffix says; never more than MAX_INDEX bytes
    (a small file can unpack to gigabytes)."""
    suffix = Path(name).suffix
    try:
        if suffix == ".zst":
            # No zstd in Python's library before 3.14: the tool, which mmpkg needs anyway.
            out = _unzstd(data)
        elif suffix in _STDLIB:
            stream = _STDLIB[suffix]()
            out = stream.decompress(data, MAX_INDEX + 1)
            if len(out) <= MAX_INDEX and not stream.eof:
                raise EOFError("it is cut short")
        else:
            out = data
    except (OSError, EOFError, lzma.LZMAError, zlib.error, CommandError) as exc:
        raise UpstreamError(f"{WHAT}: {where} does not uncompress as {suffix}: {exc}") from None
    if len(out) > MAX_INDEX:
        raise UpstreamError(f"{WHAT}: {where} uncompresses to more than {MAX_INDEX} bytes")
    return out


def _unzstd(data: bytes) -> bytes:
    with tempfile.NamedTemporaryFile(prefix="mmpkg-index-", suffix=".zst") as fh:
        fh.write(data)
        fh.flush()
        # The text is XML, UTF-8: run() reads a tool's output as text.
        return run(["zstd", "--decompress", "--stdout", "--quiet", fh.name]).stdout.encode()
