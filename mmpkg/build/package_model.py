"""What any package is, in either format: the model the deb and rpm backends build from.

A `Package` is one format's view: its relations, scripts and changelog are spelled as that
format's tool reads them (mmpkg/build/spec.py's Mattermost server becomes one per backend; the
archive keyring, mmpkg/repo/keyring.py, is the same in both). The payload is what the staged
tree holds plus `files`, which the backend writes into it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmpkg.mattermost.release import Arch
from mmpkg.packaging.formats import Compression
from mmpkg.packaging.targets import Target


@dataclass(frozen=True, kw_only=True)
class PackageFile:
    path: str  # absolute installed path
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True, kw_only=True)
class Relations:
    """Other packages, by the names of the format they are for."""

    pre_depends: tuple[str, ...] = ()  # deb Pre-Depends; rpm Requires(pre)
    depends: tuple[str, ...] = ()  # Depends; Requires
    recommends: tuple[str, ...] = ()  # Recommends, in both formats: installed unless declined
    suggests: tuple[str, ...] = ()  # Suggests (deb only)
    provides: tuple[str, ...] = ()  # versioned as this package in rpm
    conflicts: tuple[str, ...] = ()
    breaks: tuple[str, ...] = ()  # deb only: the older versions of another package it replaces
    replaces: tuple[str, ...] = ()  # deb only: rpm's Conflicts already allows the swap


@dataclass(frozen=True, kw_only=True)
class Package:
    name: str
    version: str  # the upstream part, as both formats compare it (11.0.0~rc1, 2026.01.31.1)
    revision: int
    arch: Arch | None  # None: architecture-independent (deb "all", rpm "noarch")
    maintainer: str
    summary: str
    description: str
    homepage: str
    licence: str  # the rpm License: tag (SPDX)
    section: str  # Debian's section; rpm's Group follows from it
    relations: Relations = Relations()
    files: tuple[PackageFile, ...] = ()
    conffiles: tuple[str, ...] = ()  # deb conffiles; rpm %config(noreplace)
    unchecked: tuple[str, ...] = ()  # files whose content is not the package's: no md5sum
    known_md5: tuple[tuple[str, str], ...] = ()  # (path, md5) of payload files already read
    scripts: tuple[tuple[str, str], ...] = ()  # (preinst / %pre ..., body)
    fields: tuple[tuple[str, str], ...] = ()  # extra deb control fields
    changes: tuple[str, ...] = ()  # this version's changelog entries; a newline continues one
    source_date_epoch: int
    compression: Compression = Compression.ZSTD
    # The distributions it must install on (none: not checked).
    targets: tuple[Target, ...] = ()

    @property
    def full_version(self) -> str:
        """VERSION-REVISION: deb's version and rpm's VERSION-RELEASE."""
        return f"{self.version}-{self.revision}"
