"""The apt half: Packages, Release with by-hash copies, InRelease and Release.gpg.

Format: https://wiki.debian.org/DebianRepository/Format; indices come from apt-ftparchive(1).
Debs live in `pool/CHANNEL/`; each channel is a suite `dists/CHANNEL` with one component, main.
Packages is assembled from one cached stanza per deb, so publishing reads only the new debs.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
from pathlib import Path

from mmpkg.backends.deb import DEB_ARCH
from mmpkg.mattermost.release import Arch
from mmpkg.repo import publish
from mmpkg.repo.journal import PRIVATE, Transaction
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
    tx: Transaction, channel: str, signer: Signer, *, added: list[tuple[Path, Path]], removed: list[Path]
) -> None:
    """Stage the next generation of dists/CHANNEL: the pool as it will be after `added`
    (staged file, path in the tree) and `removed` (paths in the tree)."""
    stanzas = _stanzas(tx, channel, added, removed)
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


def _stanzas(
    tx: Transaction, channel: str, added: list[tuple[Path, Path]], removed: list[Path]
) -> dict[str, str]:
    """Each deb's Packages stanza by file name, read from the cache in .mmpkg/stanzas/CHANNEL;
    apt-ftparchive reads only the debs that are not there yet (new ones, and those of a tree
    published before the cache)."""
    cache = tx.tree / PRIVATE / "stanzas" / channel
    pool = tx.tree / "pool" / channel
    # A change may carry the channel's rpms too.
    added = [(staged, dest) for staged, dest in added if dest.parent == pool]
    removed = [path for path in removed if path.parent == pool]
    gone = {p.name for p in removed} | {dest.name for _, dest in added}
    # apt-ftparchive names each deb by the path it was given: a scratch tree with the pool's shape.
    scan = tx.path("apt-scan")
    (scan / "pool" / channel).mkdir(parents=True)
    for staged, dest in added:
        os.link(staged, scan / "pool" / channel / dest.name)
    stanzas: dict[str, str] = {}
    for deb in sorted(pool.glob("*.deb")) if pool.is_dir() else []:
        if deb.name in gone:
            continue
        if (cache / deb.name).is_file():
            stanzas[deb.name] = (cache / deb.name).read_text()
        else:
            os.link(deb, scan / "pool" / channel / deb.name)
    if any((scan / "pool" / channel).iterdir()):
        out = run(["apt-ftparchive", "packages", f"pool/{channel}"], cwd=scan).stdout
        for para in out.split("\n\n"):
            found = re.search(r"^Filename: (.+)$", para, re.MULTILINE)
            if found:
                name = Path(found.group(1)).name
                stanzas[name] = para.strip("\n") + "\n\n"
                staged = tx.path(f"stanza-{name}")
                staged.write_text(stanzas[name])
                tx.move(staged, cache / name)
    for path in removed:
        if (cache / path.name).exists():
            tx.delete(cache / path.name)
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
