"""The dnf half: one repository per channel and architecture, `rpm/CHANNEL/ARCH/`.

Its primary metadata names each rpm by its path in the tree, relative to the repository's base:
`../../../pool/main/m/mattermost/FILE` for one of the pool all channels share (each rpm stored
once, a noarch one listed by both architectures), `../../../rpm/CHANNEL/ARCH/Packages/FILE` for
one a tree published before it keeps in the channel's own directory. dnf resolves such hrefs
against the baseurl, over HTTP (the client removes the dot segments) and file:// alike.

Metadata from createrepo_c(8) `--update`, which reads only the rpms its previous metadata does
not describe, into a fresh generation of repodata/ (publish.py), signed as repomd.xml.asc (read
by dnf's repo_gpgcheck=1).
"""

from __future__ import annotations

import gzip
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from mmpkg.backends.rpm import RPM_ARCH
from mmpkg.build.workspace import free_bytes
from mmpkg.errors import CommandError, no_space, out_of_space
from mmpkg.mattermost.release import Arch
from mmpkg.repo import publish
from mmpkg.repo.journal import Transaction
from mmpkg.repo.layout import TO_TREE
from mmpkg.repo.signing import Signer
from mmpkg.tools.run import run

# Every architecture a release is built for, as the rpm backend names it, and its name for a
# package that runs on any of them.
ARCHES = tuple(RPM_ARCH[arch] for arch in Arch)
NOARCH = RPM_ARCH[None]
# The hash-named metadata files of a generation, carried by the next ones (publish.py).
HASHED = "?*-*"
# Below this much room left, a createrepo_c that failed most likely ran out of it.
ROOM = 1 << 20
_NS = {"c": "http://linux.duke.edu/metadata/common", "r": "http://linux.duke.edu/metadata/repo"}


def prepare_arch(
    tx: Transaction,
    channel: str,
    arch: str,
    signer: Signer,
    *,
    rpms: list[Path],
    staged: Mapping[Path, Path],
) -> None:
    """Stage the next generation of rpm/CHANNEL/ARCH/repodata, listing `rpms` (paths relative to
    the tree; those in `staged` are still in staging, and are read from there)."""
    repo = tx.tree / "rpm" / channel / arch
    # The rpms as hard links (same size and mtime, which is what --update compares) at their
    # paths in the tree, so that each href is that path behind TO_TREE, whichever pool it is in.
    scan = tx.path(f"rpm-{channel}-{arch}")
    scan.mkdir()
    for rpm in rpms:
        link = scan / rpm
        link.parent.mkdir(parents=True, exist_ok=True)
        os.link(staged.get(rpm, tx.tree / rpm), link)
    out = tx.path(f"repodata-{channel}-{arch}")
    out.mkdir()
    has_metadata = (repo / "repodata" / "repomd.xml").is_file()
    # --update trusts a file's old metadata when its href, size and mtime (in seconds) match: a
    # file replaced in place (re-signed when a key is retired) can match all three, so then
    # everything is read again. (Metadata published before the shared pool named its rpms
    # Packages/FILE, not by TO_TREE: the first publish after reads them again, once.)
    replaced = any(rpm in staged and (tx.tree / rpm).exists() for rpm in rpms)
    update = ["--update", "--update-md-path", str(repo)] if has_metadata and not replaced else []
    prefix = ["--location-prefix", TO_TREE]
    # gzip, said: createrepo_c 1.0 (Debian 13, Ubuntu 24.04) writes zstd by default, which the
    # dnf and yum of older clients (EL7) cannot read, and a tree would change format with the
    # host that publishes it (createrepo_c#371, #383).
    gz = ["--general-compress-type=gz", "--compress-type=gz"]
    try:
        run(["createrepo_c", "--quiet", *update, *prefix, *gz, "--outputdir", str(out), str(scan)])
    except CommandError as exc:
        # createrepo_c reports a full disk as "gzclose(): file operation error", without why.
        if out_of_space(exc) or free_bytes(out) < ROOM:
            raise no_space(tx.tree, str(exc), hint="") from exc
        raise
    new = out / "repodata"
    signer.detach(new / "repomd.xml", new / "repomd.xml.asc")
    publish.publish_generation(tx, repo / "repodata", new, HASHED)


def primary_locations(repo: Path) -> dict[str, tuple[int, str]]:
    """href -> (size, sha256) of every package the repository's primary metadata lists."""
    repomd = ET.parse(repo / "repodata" / "repomd.xml").getroot()
    entries: dict[str, tuple[int, str]] = {}
    for data in repomd.findall("r:data", _NS):
        if data.get("type") != "primary":
            continue
        loc = data.find("r:location", _NS)
        assert loc is not None
        root = ET.fromstring(gzip.decompress((repo / str(loc.get("href"))).read_bytes()))
        for pkg in root.findall("c:package", _NS):
            href = pkg.find("c:location", _NS)
            size = pkg.find("c:size", _NS)
            csum = pkg.find("c:checksum", _NS)
            if href is None or size is None or csum is None:
                continue
            entries[str(href.get("href"))] = (int(str(size.get("package"))), (csum.text or "").strip())
    return entries
