"""Lint tier: lintian and rpmlint find nothing beyond the documented override lists.

The overrides that ship with the package (debian/lintian-overrides) and rpm/rpmlintrc.toml say
why each tag is accepted. TEST_ONLY below lists tags caused by this test environment, never by
a real release; any other tag lintian shows, down to info and pedantic ones, or rpmlint error
or warning fails the test.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mmpkg.build.templates import data_dir
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.packaging.formats import Compression
from tests.support.harness import require
from tests.support.packages import PackageFactory

pytestmark = pytest.mark.tools

TEST_ONLY = {
    # The sample releases' bin/mattermost is a Python program standing in for upstream's Go
    # binary; a real release has an ELF executable here.
    "python3-script-but-no-python3-dep",
    "no-binary",
}
# Debian 12's lintian (2.116) predates zstd-compressed .debs, which dpkg reads since 1.21.18.
ZSTD_ONLY = {"malformed-deb-archive"}

# Every level lintian shows with the options below: errors, warnings, info, pedantic and
# experimental tags.
_TAG = re.compile(r"^(?P<level>[EWIPX]): \S+: (?P<tag>[\w.+-]+)", re.MULTILINE)
_RPM_TAG = re.compile(r"^\S+: (?P<level>[EW]): (?P<tag>[\w%.+-]+)", re.MULTILINE)

CASES = [
    ("10.5.2", Edition.ENTERPRISE, Arch.AMD64, Compression.ZSTD),
    ("10.5.2", Edition.ENTERPRISE, Arch.AMD64, Compression.XZ),
    ("11.0.0-rc1", Edition.TEAM, Arch.ARM64, Compression.GZIP),
]


def _ids(case: tuple[str, Edition, Arch, Compression]) -> str:
    return "-".join(str(part) for part in case)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_lintian(packages: PackageFactory, case: tuple[str, Edition, Arch, Compression]) -> None:
    require("lintian", root=False)
    version, edition, arch, compression = case
    deb = packages.build(version, edition=edition, arch=arch, compression=compression).deb
    proc = subprocess.run(
        ["lintian", "-I", "--pedantic", "--display-experimental", "--tag-display-limit", "0", str(deb)],
        capture_output=True,
        text=True,
    )
    allowed = TEST_ONLY | (ZSTD_ONLY if compression is Compression.ZSTD else set())
    found = {m["tag"] for m in _TAG.finditer(proc.stdout)}
    assert found <= allowed, proc.stdout
    assert "internal error" not in proc.stderr.lower(), proc.stderr


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_rpmlint(packages: PackageFactory, case: tuple[str, Edition, Arch, Compression]) -> None:
    require("rpmlint", root=False)
    version, edition, arch, compression = case
    rpm = packages.build(version, edition=edition, arch=arch, compression=compression).rpm
    config = data_dir() / "rpm" / "rpmlintrc.toml"
    proc = subprocess.run(["rpmlint", "-c", str(config), str(rpm)], capture_output=True, text=True)
    found = {m["tag"] for m in _RPM_TAG.finditer(proc.stdout)}
    assert found <= TEST_ONLY, proc.stdout


def test_lint_catches_what_it_should(packages: PackageFactory, tmp_path: Path) -> None:
    """The parsers above really see tags: a package stripped of its lintian overrides shows one."""
    require("lintian", "dpkg-deb", root=False)
    deb = packages.build("10.5.2", compression=Compression.XZ).deb
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    (tree / "usr/share/lintian/overrides/mattermost").unlink()
    bare = tmp_path / "bare.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(tree), str(bare)],
        check=True,
        capture_output=True,
    )
    proc = subprocess.run(["lintian", str(bare)], capture_output=True, text=True)
    assert "dir-or-file-in-opt" in {m["tag"] for m in _TAG.finditer(proc.stdout)}
