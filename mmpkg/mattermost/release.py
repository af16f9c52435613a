"""What a release tarball is: its version, edition and architecture, and how it is named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

from mmpkg.mattermost.versions import MattermostVersion


class Edition(StrEnum):
    ENTERPRISE = "enterprise"
    TEAM = "team"

    @property
    def package_name(self) -> str:
        return "mattermost" if self is Edition.ENTERPRISE else "mattermost-team"

    @property
    def licence_file(self) -> str:
        """The licence file only this edition's tarball carries (upstream release.mk)."""
        if self is Edition.ENTERPRISE:
            return "ENTERPRISE-EDITION-LICENSE.txt"
        return "MIT-COMPILED-LICENSE.md"


class Arch(StrEnum):
    AMD64 = "amd64"
    ARM64 = "arm64"


# Upstream's name, also when a download tool or a mirror changed its case or its suffix: the
# claims in it are checked against the contents either way.
_NAME = re.compile(
    r"mattermost-(?:(?P<team>team)-)?(?P<version>\d+\.\d+\.\d+(?:-rc\d+)?)"
    r"-linux-(?P<arch>amd64|arm64)\.(?:tar\.gz|tgz)",
    re.IGNORECASE,
)


def tarball_name(version: MattermostVersion, edition: Edition, arch: Arch) -> str:
    """The file name upstream publishes a release under (releases.mattermost.com)."""
    team = "team-" if edition is Edition.TEAM else ""
    return f"mattermost-{team}{version}-linux-{arch}.tar.gz"


@dataclass(frozen=True)
class OpenTarball:
    """A tarball read through a file already open, from its start, and never by a path again:
    what was verified is what is read (mmpkg/upstream/download.py). `name` is its file name,
    for what it claims."""

    name: str
    file: BinaryIO


@dataclass(frozen=True)
class NameFacts:
    """What a tarball's file name claims; each may be unknown if the file was renamed."""

    version: MattermostVersion | None
    edition: Edition | None
    arch: Arch | None


def facts_from_name(name: str) -> NameFacts:
    m = _NAME.fullmatch(name)
    if m is None:
        return NameFacts(None, None, None)
    return NameFacts(
        MattermostVersion.parse(m["version"].lower()),
        Edition.TEAM if m["team"] else Edition.ENTERPRISE,
        Arch(m["arch"].lower()),
    )


@dataclass(frozen=True, kw_only=True)
class Release:
    """A release tarball after inspection: every fact here was checked against its contents."""

    version: MattermostVersion
    edition: Edition
    arch: Arch
    file_count: int
    unpacked_bytes: int  # of file content, once unpacked
    tarball_bytes: int
    sha256: str  # of the tarball itself
    source_date_epoch: int  # newest member mtime: the release's own build time
    # What the server rewrites in place when SiteURL has a sub-path (upstream's subpath.go):
    # client/root.html and every manifest.json and *.css below client/, paths in the release.
    rewritten: tuple[str, ...]
    # The release's config/config.json, as JSON text (a str keeps the model immutable): the
    # names and types build-time settings are checked against.
    config: str = "{}"
    # (path in the release, md5) of every file, read while it was unpacked.
    md5sums: tuple[tuple[str, str], ...] = ()
    # Every directory of the installed release (not config/ or logs/), parents first.
    directories: tuple[str, ...] = ()
