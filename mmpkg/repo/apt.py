"""The apt half: Packages, Release with by-hash copies, InRelease and Release.gpg.

Format: https://wiki.debian.org/DebianRepository/Format; indices come from apt-ftparchive(1).
Debs live in `pool/CHANNEL/`; each channel is a suite `dists/CHANNEL` with one component, main.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import shutil
from pathlib import Path

from mmpkg.repo import publish
from mmpkg.repo.signing import Signer
from mmpkg.run import run

ARCHES = ("amd64", "arm64")
# by-hash copies of each index kept from earlier generations, for clients still reading those.
KEEP_BY_HASH = 3
COMPONENT = "main"


def publish_suite(tree: Path, channel: str, signer: Signer) -> None:
    """Write a new generation of dists/CHANNEL from pool/CHANNEL and swap it in."""
    live = tree / "dists" / channel
    new = publish.staging(live)
    indices: list[Path] = []
    for arch in ARCHES:
        d = new / COMPONENT / f"binary-{arch}"
        d.mkdir(parents=True)
        pool = f"pool/{channel}"
        text = ""
        if (tree / pool).is_dir():
            text = run(["apt-ftparchive", "--arch", arch, "packages", pool], cwd=tree).stdout
        raw = text.encode()
        (d / "Packages").write_bytes(raw)
        (d / "Packages.gz").write_bytes(gzip.compress(raw, 9, mtime=0))
        (d / "Packages.xz").write_bytes(lzma.compress(raw))
        indices += [d / "Packages", d / "Packages.gz", d / "Packages.xz"]
    opts = {
        "Origin": "mmpkg", "Label": "mmpkg", "Suite": channel, "Codename": channel,
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
    _keep_old_by_hash(live, new)
    (new / "Release").write_text(release)
    signer.clearsign(new / "Release", new / "InRelease")
    signer.detach(new / "Release", new / "Release.gpg")
    publish.swap(new, live)


def _keep_old_by_hash(live: Path, new: Path) -> None:
    """Carry the newest KEEP_BY_HASH earlier copies of each index's by-hash directory over."""
    for old_dir in live.glob(f"{COMPONENT}/binary-*/by-hash/SHA256"):
        new_dir = new / old_dir.relative_to(live)
        if not new_dir.is_dir():
            continue
        old = sorted(old_dir.iterdir(), key=lambda f: f.stat().st_mtime, reverse=True)
        for f in old[: KEEP_BY_HASH * 3]:  # three compressions of Packages per generation
            if not (new_dir / f.name).exists():
                shutil.copy2(f, new_dir / f.name)


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
