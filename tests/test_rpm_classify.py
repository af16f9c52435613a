"""rpmbuild's file classifier, narrowed to rpm/classify.magic, still gives every file the colour
file(1)'s full database gives it, and names ELF files in the same words.

The same package is built twice, once with libmagic's own database; rpm itself reads both
headers back.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from mmpkg.backends import rpm
from mmpkg.build.package_model import Package, PackageFile
from mmpkg.mattermost.release import Arch

pytestmark = pytest.mark.tools

# ELF files of the kinds every Debian machine has: a PIE, a static PIE, a shared library.
SYSTEM_ELF = ("/bin/true", "/sbin/ldconfig", "/usr/lib/x86_64-linux-gnu/libc.so.6")


def _elf_variants(true: bytes) -> dict[str, bytes]:
    """/bin/true as built for aarch64, as an object file's header would say, and as a
    big-endian and a 32-bit file would start."""
    aarch64 = bytearray(true)
    aarch64[18:20] = (183).to_bytes(2, "little")
    relocatable = bytearray(true)
    relocatable[16:18] = (1).to_bytes(2, "little")
    big = bytearray(true)
    big[5] = 2
    small = bytearray(true)
    small[4] = 1
    return {
        "aarch64": bytes(aarch64),
        "object.o": bytes(relocatable),
        "msb": bytes(big),
        "elf32": bytes(small),
    }


def _plugin() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("plugin/server/dist/plugin-linux-amd64")
        data = Path("/bin/true").read_bytes()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _payload() -> tuple[PackageFile, ...]:
    files = {Path(p).name: Path(p).read_bytes() for p in SYSTEM_ELF}
    files.update(_elf_variants(files["true"]))
    files["plugin.tar.gz"] = _plugin()
    files["chunk.js"] = b'"use strict";(self.webpackChunk=self.webpackChunk||[]).push([[1],{}]);\n' * 40
    files["manifest.json"] = b'{"id": "com.example.plugin", "version": "1.0.0"}\n'
    files["start.sh"] = b"#!/bin/sh\nexec /opt/x/true\n"
    return tuple(PackageFile(path=f"/opt/x/{name}", data=data, mode=0o755) for name, data in files.items())


def _build(payload: tuple[PackageFile, ...], work: Path) -> Path:
    pkg = Package(
        name="classified",
        version="1.0",
        revision=1,
        arch=Arch.AMD64,
        maintainer="A B <a@b.example>",
        summary="classified files",
        description="Files of every kind rpmbuild classifies.",
        homepage="https://example.com",
        licence="MIT",
        section="misc",
        files=payload,
        source_date_epoch=1_700_000_000,
    )
    root = work / "root"
    rpm.stage_package(pkg, root)
    return rpm.build_package(pkg, rpm.render_package_spec(pkg), root, work)


def _classes(path: Path) -> dict[str, tuple[str, str]]:
    out = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILENAMES}\t%{FILECLASS}\t%{FILECOLORS}\n]", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {name: (cls, colour) for name, cls, colour in (line.split("\t") for line in out.splitlines())}


def test_the_narrow_classifier_agrees_with_file1s_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = _payload()
    narrow = _classes(_build(payload, tmp_path / "narrow"))
    monkeypatch.setattr(rpm, "classifier", lambda: None)
    full = _classes(_build(payload, tmp_path / "full"))

    assert narrow.keys() == full.keys()
    colours = {name: colour for name, (_, colour) in full.items()}
    assert {name: colour for name, (_, colour) in narrow.items()} == colours
    # Not all colourless: the ELF files are told apart, 64-bit (2) from 32-bit (1).
    assert colours["/opt/x/true"] == "2" and colours["/opt/x/elf32"] == "1"
    # The two architectures a release is built for, in every kind of ELF file, are named alike.
    for name in ("true", "ldconfig", "libc.so.6", "object.o", "aarch64"):
        assert narrow[f"/opt/x/{name}"][0] == full[f"/opt/x/{name}"][0], name
    assert "ARM aarch64" in full["/opt/x/aarch64"][0]
