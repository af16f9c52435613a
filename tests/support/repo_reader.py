"""What a client fetching the repository sees, checked the way apt and dnf check it.

apt: InRelease (verified with gpgv against the archive key alone), each index it lists by its
by-hash name (Acquire-By-Hash), and every deb the Packages index names. dnf: repomd.xml and
repomd.xml.asc (gpgv), every metadata file repomd.xml lists, and every rpm primary names; sizes
and SHA256 compared each time. `fetch` is HTTP against the served tree, or the files of a tree.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import posixpath
import subprocess
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from mmpkg.repo.apt import parse_deb822

Fetch = Callable[[str], bytes | None]
_NS = {"c": "http://linux.duke.edu/metadata/common", "r": "http://linux.duke.edu/metadata/repo"}


def http_fetch(base: str) -> Fetch:
    def fetch(rel: str) -> bytes | None:
        # As curl (apt's and dnf's) does, dot segments are resolved before the request: dnf
        # metadata names the shared pool as ../../../pool/..., which no object store resolves.
        rel = posixpath.normpath(rel)
        try:
            with urllib.request.urlopen(f"{base}/{rel}", timeout=30) as resp:
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    return fetch


def file_fetch(tree: Path) -> Fetch:
    def fetch(rel: str) -> bytes | None:
        f = tree / rel
        return f.read_bytes() if f.is_file() else None

    return fetch


def keyring(armored: str, where: Path) -> Path:
    """A keyring gpgv can read holding only the archive key."""
    out = where / "archive.gpg"
    out.write_bytes(subprocess.run(["gpg", "--dearmor"], input=armored.encode(), capture_output=True).stdout)
    return out


def gpgv(ring: Path, data: bytes, signature: bytes | None = None) -> bytes | None:
    """The signed content when the signature verifies against `ring`, else None."""
    with tempfile.TemporaryDirectory(prefix="reader-") as tmp:
        d, out = Path(tmp) / "data", Path(tmp) / "out"
        d.write_bytes(data)
        args = ["--output", str(out), str(d)]
        if signature is not None:
            (Path(tmp) / "sig").write_bytes(signature)
            args = [str(Path(tmp) / "sig"), str(d)]
        proc = subprocess.run(["gpgv", "--keyring", str(ring), *args], capture_output=True)
        if proc.returncode != 0:
            return None
        return out.read_bytes() if signature is None else data


def _matches(data: bytes | None, size: int, sha256: str) -> bool:
    return data is not None and len(data) == size and hashlib.sha256(data).hexdigest() == sha256


def apt_problems(fetch: Fetch, ring: Path, channel: str) -> list[str]:
    suite = f"dists/{channel}"
    inrelease = fetch(f"{suite}/InRelease")
    if inrelease is None:
        return [f"{suite}/InRelease is missing"]
    release = gpgv(ring, inrelease)
    if release is None:
        return [f"{suite}/InRelease does not verify"]
    found: list[str] = []
    for line in parse_deb822(release.decode())[0]["SHA256"].split("\n")[1:]:
        digest, size, name = line.split()
        index = f"{suite}/{name.rsplit('/', 1)[0]}/by-hash/SHA256/{digest}"
        data = fetch(index)
        if not _matches(data, int(size), digest):
            found.append(f"{index} ({name}) is missing or differs from InRelease")
            continue
        assert data is not None
        text = (
            gzip.decompress(data)
            if name.endswith(".gz")
            else lzma.decompress(data)
            if name.endswith(".xz")
            else data
        )
        for para in parse_deb822(text.decode()):
            deb = para["Filename"]
            if not _matches(fetch(deb), int(para["Size"]), para["SHA256"]):
                found.append(f"{deb} (in {name}) is missing or differs")
    return found


def dnf_problems(fetch: Fetch, ring: Path, channel: str, arch: str) -> list[str]:
    base = f"rpm/{channel}/{arch}"
    # repomd.xml and its signature are two requests: a publish between them pairs one
    # generation's repomd.xml with the other's signature. dnf sees that window too and it
    # cannot be closed in dnf's format; fetching the pair again sees one generation.
    for _ in range(2):
        repomd, asc = fetch(f"{base}/repodata/repomd.xml"), fetch(f"{base}/repodata/repomd.xml.asc")
        if repomd is not None and asc is not None and gpgv(ring, repomd, asc) is not None:
            break
    else:
        return [f"{base}/repodata/repomd.xml is missing or its signature does not verify"]
    found: list[str] = []
    primary = None
    for data in ET.fromstring(repomd).findall("r:data", _NS):
        href = str(data.find("r:location", _NS).get("href"))  # type: ignore[union-attr]
        digest = (data.findtext("r:checksum", "", _NS)).strip()
        content = fetch(f"{base}/{href}")
        if not _matches(content, int(data.findtext("r:size", "-1", _NS)), digest):
            found.append(f"{base}/{href} is missing or differs from repomd.xml")
        elif data.get("type") == "primary":
            primary = content
    if primary is None:
        return [*found, f"{base}: no readable primary metadata"]
    for pkg in ET.fromstring(gzip.decompress(primary)).findall("c:package", _NS):
        href = str(pkg.find("c:location", _NS).get("href"))  # type: ignore[union-attr]
        size = int(str(pkg.find("c:size", _NS).get("package")))  # type: ignore[union-attr]
        if not _matches(fetch(f"{base}/{href}"), size, pkg.findtext("c:checksum", "", _NS).strip()):
            found.append(f"{base}/{href} (in primary) is missing or differs")
    return found


def problems(fetch: Fetch, ring: Path, channel: str, arches: tuple[str, ...]) -> list[str]:
    return apt_problems(fetch, ring, channel) + [
        p for a in arches for p in dnf_problems(fetch, ring, channel, a)
    ]
