"""What a package is called in its format: the facts a build reports and inspect predicts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mmpkg.packaging.formats import PackageFormat


@dataclass(frozen=True, kw_only=True)
class PackageId:
    format: PackageFormat
    name: str
    version: str  # the full version the package manager compares: deb's and rpm's VERSION-RELEASE
    arch: str  # in the format's own spelling (amd64 / x86_64)
    file: str  # the conventional file name


@dataclass(frozen=True, kw_only=True)
class BuiltPackage:
    id: PackageId
    path: Path
    size: int
    sha256: str

    @classmethod
    def of(cls, id: PackageId, path: Path) -> BuiltPackage:
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return cls(id=id, path=path, size=path.stat().st_size, sha256=digest)
