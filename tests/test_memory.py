"""Memory stays flat however large the release: the same build with 512 MiB more payload.

Peak resident memory is read from the kernel's accounting of the build process and everything
it ran (dpkg-deb, rpmbuild, compressors), not timed.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.harness import require
from tests.support.packages import PackageFactory

pytestmark = pytest.mark.tools

EXTRA = 512 * 1024 * 1024


class Zeros:
    """A file-like source of `size` zero bytes that never holds more than one chunk."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def with_extra_payload(src: Path, dest: Path) -> Path:
    with (
        tarfile.open(src) as old,
        gzip.open(dest, "wb", compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w") as new,
    ):
        for info in old.getmembers():
            new.addfile(info, old.extractfile(info) if info.isfile() else None)
        big = tarfile.TarInfo("mattermost/client/large-asset.bin")
        big.size = EXTRA
        big.mode = 0o644
        big.mtime = max(m.mtime for m in old.getmembers())
        new.addfile(big, Zeros(EXTRA))
    return dest


def peak_rss_kib(tarball: Path, out: Path) -> int:
    """The largest peak RSS among one `mmpkg build` and the tools it ran (RUSAGE_CHILDREN's
    ru_maxrss), measured from a fresh process."""
    code = (
        "import resource, subprocess, sys;"
        "subprocess.run([sys.executable, '-m', 'mmpkg', 'build', sys.argv[1], '--out', sys.argv[2],"
        " '--maintainer', 'A B <a@b.example>'], check=True,"
        " stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tarball), str(out)], check=True, capture_output=True, text=True
    )
    return int(proc.stdout.strip())


def test_memory_does_not_grow_with_the_release(packages: PackageFactory, tmp_path: Path) -> None:
    require("dpkg-deb", "rpmbuild", root=False)
    small = packages.tarball("10.5.2")
    large = with_extra_payload(small, tmp_path / small.name)
    small_peak = peak_rss_kib(small, tmp_path / "small")
    large_peak = peak_rss_kib(large, tmp_path / "large")
    print(f"peak RSS: {small_peak} KiB for the sample, {large_peak} KiB with {EXTRA >> 20} MiB more")
    # Holding the payload would cost 512 MiB; flat means the difference stays far below that.
    assert large_peak - small_peak < 64 * 1024, (small_peak, large_peak)
