"""The dnf half: one repository per channel and architecture, `rpm/CHANNEL/ARCH/`.

Metadata from createrepo_c(8) into a fresh directory, signed as repodata/repomd.xml.asc
(read by dnf's repo_gpgcheck=1), then swapped in for the old repodata/.
"""

from __future__ import annotations

import gzip
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from mmpkg.repo import publish
from mmpkg.repo.signing import Signer
from mmpkg.run import run

ARCHES = ("x86_64", "aarch64")
_NS = {"c": "http://linux.duke.edu/metadata/common", "r": "http://linux.duke.edu/metadata/repo"}


def publish_arch(tree: Path, channel: str, arch: str, signer: Signer) -> None:
    repo = tree / "rpm" / channel / arch
    (repo / "Packages").mkdir(parents=True, exist_ok=True)
    out = publish.staging(repo.parent / f".{arch}.out")
    run(["createrepo_c", "--quiet", "--outputdir", str(out), str(repo)])
    new = out / "repodata"
    signer.detach(new / "repomd.xml", new / "repomd.xml.asc")
    publish.swap(new, repo / "repodata")
    shutil.rmtree(out)


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
