"""The sample's bin/mattermost is an executable of its release's architecture, stamped as
upstream's release build stamps the real one (sample_release/elf.py)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from mmpkg.build.gobinary import read_build_values
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import elf, write_sample_release
from tests.support import harness

ASSEMBLER = {Arch.AMD64: ("as", "objcopy"), Arch.ARM64: ("aarch64-linux-gnu-as", "aarch64-linux-gnu-objcopy")}
# What runs an executable of each architecture here: itself on amd64, qemu's user mode on arm64.
RUNNER = {Arch.AMD64: (), Arch.ARM64: ("qemu-aarch64",)}


def _binary(tmp_path: Path, version: str, edition: Edition, arch: Arch) -> Path:
    tarball = write_sample_release(
        MattermostVersion.parse(version), edition=edition, arch=arch, dest=tmp_path
    )
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    return tmp_path / "x/mattermost/bin/mattermost"


@pytest.mark.parametrize("arch", list(Arch))
def test_the_stub_is_what_its_source_assembles_to(arch: Arch, tmp_path: Path) -> None:
    assembler, objcopy = ASSEMBLER[arch]
    harness.require(assembler, objcopy, root=False)
    (tmp_path / "stub.s").write_text(elf.STUB_SOURCE[arch])
    subprocess.run([assembler, "-o", tmp_path / "stub.o", tmp_path / "stub.s"], check=True)
    subprocess.run(
        [objcopy, "-O", "binary", "-j", ".text", tmp_path / "stub.o", tmp_path / "stub.bin"], check=True
    )
    assert (tmp_path / "stub.bin").read_bytes() == elf.STUB[arch]


@pytest.mark.parametrize(
    ("version", "edition", "arch", "model"),
    [
        ("10.11.1", Edition.ENTERPRISE, Arch.AMD64, "github.com/mattermost/mattermost/server/public/model"),
        ("10.11.1", Edition.TEAM, Arch.ARM64, "github.com/mattermost/mattermost/server/public/model"),
        ("7.8.4", Edition.ENTERPRISE, Arch.AMD64, "github.com/mattermost/mattermost-server/v6/model"),
    ],
)
def test_the_binary_runs_and_its_symbol_table_names_its_build(
    version: str, edition: Edition, arch: Arch, model: str, tmp_path: Path
) -> None:
    harness.require(*RUNNER[arch], "readelf", root=False)
    binary = _binary(tmp_path, version, edition, arch)
    header = subprocess.run(["readelf", "-h", binary], check=True, capture_output=True, text=True).stdout
    assert {Arch.AMD64: "X86-64", Arch.ARM64: "AArch64"}[arch] in header and "EXEC" in header
    symbols = subprocess.run(["readelf", "-sW", binary], check=True, capture_output=True, text=True).stdout
    assert f"{model}.BuildNumber" in symbols
    with binary.open("rb") as f:
        values = read_build_values(f, ("BuildNumber", "BuildEnterpriseReady"))
    ready = "true" if edition is Edition.ENTERPRISE else "false"
    assert values == {"BuildNumber": version, "BuildEnterpriseReady": ready}
    # Run from another directory through a link, as a unit's ExecStart or an admin would.
    (tmp_path / "link").symlink_to(binary)
    said = subprocess.run(
        [*RUNNER[arch], tmp_path / "link", "version"], check=True, capture_output=True, text=True, cwd="/"
    ).stdout
    assert f"Build Number: {version}\n" in said and f"Build Enterprise Ready: {ready}\n" in said


def test_without_proc_it_runs_by_the_path_it_was_given(tmp_path: Path) -> None:
    """In a chroot without its API file systems (as a booted root's directory is, seen from the
    host), /proc/self/exe cannot be read: the path it was run by serves instead."""
    harness.require("unshare", "mount")
    binary = _binary(tmp_path, "10.11.1", Edition.ENTERPRISE, Arch.AMD64)
    said = subprocess.run(
        [
            "unshare",
            "--mount",
            "--fork",
            "sh",
            "-c",
            'mount -t tmpfs none /proc && exec "$0" version',
            binary,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "Build Number: 10.11.1\n" in said
