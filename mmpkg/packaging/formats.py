"""The package formats and payload compressions mmpkg writes: the names every other table uses."""

from __future__ import annotations

from enum import StrEnum


class PackageFormat(StrEnum):
    DEB = "deb"
    RPM = "rpm"


class Compression(StrEnum):
    """In order of preference: where every target reads the first, it is the one chosen."""

    ZSTD = "zstd"
    XZ = "xz"
    GZIP = "gzip"
