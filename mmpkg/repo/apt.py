"""The apt half: Packages, Release with by-hash copies, InRelease and Release.gpg.

Format: https://wiki.debian.org/DebianRepository/Format; indices come from apt-ftparchive(1).
Debs are stored once, in the pool all channels share (`pool/main/m/mattermost/`, packages.place()),
or, published before it, in the channel's own `pool/CHANNEL/`; each channel is a suite
`dists/CHANNEL` with one component, main, whose Packages names each deb where it lies. Packages is
assembled from one cached stanza per deb, so publishing reads only the new debs.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from mmpkg.backends.deb import DEB_ARCH
from mmpkg.mattermost.release import Arch
from mmpkg.repo import publish, rings
from mmpkg.repo.journal import PRIVATE, Transaction
from mmpkg.repo.layout import is_shared
from mmpkg.repo.signing import Signer
from mmpkg.tools.run import run

# Every architecture a release is built for, as the deb backend names it, and its name for a
# package that runs on any of them.
ARCHES = tuple(DEB_ARCH[arch] for arch in Arch)
ALL = DEB_ARCH[None]
COMPONENT = "main"
# Release's Origin and Label: what apt pinning and unattended-upgrades match on (clients.py).
ORIGIN = "mmpkg"
# The content-addressed files of a generation, carried by the next ones (publish.py).
BY_HASH = f"{COMPONENT}/binary-*/by-hash/SHA256/*"


def prepare_suite(
    tx: Transaction,
    channel: str,
    signer: Signer,
    *,
    debs: list[Path],
    staged: Mapping[Path, Path],
    removed: list[Path],
    phased: int | None = None,
) -> None:
    """Stage the next generation of dists/CHANNEL, listing `debs` (paths relative to the tree;
    those in `staged` are still in staging, and are read from there); `removed`, which it no
    longer lists, lose their cached stanzas. `phased`: the Phased-Update-Percentage of the
    newest versions (rings.py)."""
    stanzas = rings.phase_stanzas(_stanzas(tx, channel, debs, staged, removed), phased)
    new = tx.path(f"dists-{channel}")
    indices: list[Path] = []
    for arch in ARCHES:
        d = new / COMPONENT / f"binary-{arch}"
        d.mkdir(parents=True)
        raw = "".join(text for text in stanzas.values() if _arch(text) in (arch, ALL)).encode()
        (d / "Packages").write_bytes(raw)
        (d / "Packages.gz").write_bytes(gzip.compress(raw, 9, mtime=0))
        (d / "Packages.xz").write_bytes(lzma.compress(raw))
        indices += [d / "Packages", d / "Packages.gz", d / "Packages.xz"]
    opts = {
        "Origin": ORIGIN, "Label": ORIGIN, "Suite": channel, "Codename": channel,
        "Architectures": " ".join(ARCHES), "Components": COMPONENT, "Acquire-By-Hash": "yes",
    }  # fmt: skip
    args = [a for k, v in opts.items() for a in ("-o", f"APT::FTPArchive::Release::{k}={v}")]
    release = run(["apt-ftparchive", *args, "release", "."], cwd=new).stdout
    # By-hash copies, written after Release so that it does not list them.
    for index in indices:
        digest = hashlib.sha256(index.read_bytes()).hexdigest()
        by_hash = index.parent / "by-hash" / "SHA256"
        by_hash.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(index, by_hash / digest)
    (new / "Release").write_text(release)
    signer.clearsign(new / "Release", new / "InRelease")
    signer.detach(new / "Release", new / "Release.gpg")
    publish.publish_generation(tx, tx.tree / "dists" / channel, new, BY_HASH)


def _cached(tx: Transaction, channel: str, deb: Path) -> Path:
    """Where .mmpkg/stanzas/CHANNEL keeps the stanza of `deb`: by file name for one of the
    channel's own directory (as trees made before the shared pool have them), by path for one
    of the shared pool."""
    cache = tx.tree / PRIVATE / "stanzas" / channel
    return cache / (deb if is_shared(deb) else Path(deb.name))


def _stanzas(
    tx: Transaction, channel: str, debs: list[Path], staged: Mapping[Path, Path], removed: list[Path]
) -> dict[Path, str]:
    """Each of `debs`' Packages stanza by path, read from the cache in .mmpkg/stanzas/CHANNEL;
    apt-ftparchive reads only the debs that are not there yet (new ones, and those of a tree
    published before the cache)."""
    # apt-ftparchive names each deb by the path it was given: a scratch tree with the tree's
    # shape, so that Filename is the deb's path in the tree, whichever pool it is in.
    scan = tx.path("apt-scan")
    stanzas: dict[Path, str] = {}
    for deb in debs:
        cached = _cached(tx, channel, deb)
        if deb not in staged and cached.is_file():
            stanzas[deb] = cached.read_text()
            continue
        link = scan / deb
        link.parent.mkdir(parents=True, exist_ok=True)
        os.link(staged.get(deb, tx.tree / deb), link)
    if scan.is_dir():
        out = run(["apt-ftparchive", "packages", "pool"], cwd=scan).stdout
        for para in out.split("\n\n"):
            found = re.search(r"^Filename: (.+)$", para, re.MULTILINE)
            if found:
                deb = Path(found.group(1))
                stanzas[deb] = para.strip("\n") + "\n\n"
                text = tx.path(f"stanza-{deb.name}")
                text.write_text(stanzas[deb])
                tx.move(text, _cached(tx, channel, deb))
    for deb in removed:
        if _cached(tx, channel, deb).exists():
            tx.delete(_cached(tx, channel, deb))
    return dict(sorted(stanzas.items()))


def _arch(stanza: str) -> str:
    found = re.search(r"^Architecture: (\S+)$", stanza, re.MULTILINE)
    return found.group(1) if found else ""


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Paragraphs of a Packages or Release file (continuation lines joined with newlines)."""
    paras: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if cur:
                paras.append(cur)
            cur = {}
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            cur[key] = value.strip()
    if cur:
        paras.append(cur)
    return paras
