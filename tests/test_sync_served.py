"""The served repository's indices, read as apt and dnf read them (mmpkg/repo/served.py)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmpkg.errors import UpstreamError
from mmpkg.repo import Entry
from mmpkg.repo.retention import KEEP
from mmpkg.repo.served import (
    Served,
    decompress,
    packages_entries,
    primary_entries,
    primary_of,
    release_indices,
)

# -- the formats, on small inputs -------------------------------------------------------------

INRELEASE = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: mmpkg
Acquire-By-Hash: yes
SHA256:
 aaaa 10 main/binary-amd64/Packages
 bbbb 20 main/binary-amd64/Packages.xz
-----BEGIN PGP SIGNATURE-----

iQ==
-----END PGP SIGNATURE-----
"""

PACKAGES = """\
Package: mattermost
Version: 10.5.2-1
Architecture: amd64
Filename: pool/stable/mattermost_10.5.2-1_amd64.deb
Description: a server
 over two lines

Package: mattermost-archive-keyring
Version: 1:3-1
Architecture: all
Filename: pool/stable/mattermost-archive-keyring_1%3a3-1_all.deb
"""

REPOMD = b"""<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <data type="filelists"><checksum type="sha256">ffff</checksum>
    <location href="repodata/ffff-filelists.xml.gz"/><size>9</size></data>
  <data type="primary"><checksum type="sha256">abcd</checksum><open-checksum type="sha256">0</open-checksum>
    <location href="repodata/abcd-primary.xml.zst"/><size>123</size><open-size>456</open-size></data>
</repomd>
"""

PRIMARY = b"""<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">
<package type="rpm"><name>mattermost</name><arch>x86_64</arch>
  <version epoch="0" ver="10.12.0~rc1" rel="1"/><checksum type="sha256" pkgid="YES">00</checksum>
  <location href="Packages/mattermost-10.12.0~rc1-1.x86_64.rpm"/></package>
</metadata>
"""


def test_release_packages_repomd_and_primary_read_as_the_repository_names_them() -> None:
    by_hash, listed = release_indices(INRELEASE, "InRelease")
    assert by_hash
    assert listed == {
        "main/binary-amd64/Packages": ("aaaa", 10),
        "main/binary-amd64/Packages.xz": ("bbbb", 20),
    }
    assert packages_entries(PACKAGES, "Packages") == [
        Entry("mattermost", "10.5.2-1", "amd64", "deb", Path("pool/stable/mattermost_10.5.2-1_amd64.deb")),
        Entry("mattermost-archive-keyring", "1:3-1", "all", "deb",
              Path("pool/stable/mattermost-archive-keyring_1%3a3-1_all.deb")),
    ]  # fmt: skip
    assert primary_of(REPOMD, "repomd.xml") == ("repodata/abcd-primary.xml.zst", "sha256", "abcd", 123)
    assert primary_entries(PRIMARY, "rpm/rc/x86_64", "primary") == [
        Entry("mattermost", "10.12.0~rc1-1", "x86_64", "rpm",
              Path("rpm/rc/x86_64/Packages/mattermost-10.12.0~rc1-1.x86_64.rpm")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        lambda: packages_entries("Package: mattermost\nVersion: 1-1\n", "P"),
        lambda: primary_of(b"<repomd/>", "R"),
        lambda: primary_of(b"<html>not found", "R"),
        lambda: primary_entries(PRIMARY.replace(b' rel="1"', b""), "b", "P"),
        lambda: release_indices("SHA256:\n aaaa ten main/binary-amd64/Packages\n", "R"),
        lambda: decompress("Packages.xz", lzma.compress(b"x" * 1000)[:-8], "P"),
        lambda: decompress("primary.xml.gz", b"not gzip", "P"),
    ],
    ids=["stanza", "no-primary", "not-xml", "no-rel", "sha256-field", "cut-short", "not-gzip"],
)
def test_a_malformed_index_is_an_upstream_error(bad: Any) -> None:
    with pytest.raises(UpstreamError):
        bad()


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2", ".zst", ""])
def test_each_compression_createrepo_c_and_apt_ftparchive_write_is_read(suffix: str) -> None:
    text = b"<metadata/>\n" * 100
    if suffix == ".zst":
        if not shutil.which("zstd"):
            pytest.skip("zstd is not installed")
        data = subprocess.run(["zstd", "-q", "-c"], input=text, capture_output=True, check=True).stdout
    else:
        compressions: dict[str, Callable[[bytes], bytes]] = {
            ".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress, "": bytes
        }  # fmt: skip
        data = compressions[suffix](text)
    assert decompress(f"primary.xml{suffix}", data, "here") == text


def test_over_http_the_keep_is_the_given_one_else_the_default() -> None:
    """The channel's stored --keep is in the private state, which is not served."""
    served = Served("http://127.0.0.1:1/repo", ["stable"])
    assert (served.keep("stable"), served.keep("stable", 2)) == (KEEP, 2)
