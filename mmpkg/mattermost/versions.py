"""Mattermost version strings and how each package format spells them.

Upstream versions are `X.Y.Z` or `X.Y.Z-rcN`. Both dpkg and rpm sort `~` before anything, so
`X.Y.Z~rcN` orders a release candidate below its final release in both formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from packaging.version import Version

from mmpkg.errors import ReleaseError

_VERSION = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-rc(?P<rc>[1-9]\d*))?"
)
# A release line, MAJOR.MINOR, as upstream names its lines and ESRs ("10.11").
_LINE = re.compile(r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)")


@total_ordering
@dataclass(frozen=True)
class MattermostVersion:
    major: int
    minor: int
    patch: int
    rc: int | None = None

    @classmethod
    def parse(cls, text: str) -> MattermostVersion:
        m = _VERSION.fullmatch(text)
        if m is None:
            raise ReleaseError(
                f"'{text}' is not a Mattermost version: expected X.Y.Z or X.Y.Z-rcN, e.g. 10.5.2"
            )
        rc = m["rc"]
        return cls(int(m["major"]), int(m["minor"]), int(m["patch"]), int(rc) if rc else None)

    @classmethod
    def parse_minimum(cls, text: str) -> MattermostVersion:
        """A lower bound (`--since`): a version, or a release line `X.Y` meaning its first release
        X.Y.0, which is what "since 10.0" says. A line is no release, so only a bound takes one."""
        if _LINE.fullmatch(text):
            return cls.parse(f"{text}.0")
        try:
            return cls.parse(text)
        except ReleaseError:
            raise ReleaseError(
                f"'{text}' is not a Mattermost version: expected X.Y, X.Y.Z or X.Y.Z-rcN, e.g. 10.5"
            ) from None

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return f"{base}-rc{self.rc}" if self.rc is not None else base

    @property
    def final(self) -> str:
        """The version without any -rcN, as `mattermost version` prints it."""
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def package_version(self) -> str:
        """The upstream part of the package version in both formats: `X.Y.Z` or `X.Y.Z~rcN`."""
        return str(self).replace("-rc", "~rc")

    @property
    def pep440(self) -> Version:
        return Version(str(self).replace("-rc", "rc"))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, MattermostVersion):
            return NotImplemented
        return self.pep440 < other.pep440

    def at_least(self, major: int, minor: int = 0, patch: int = 0) -> bool:
        return (self.major, self.minor, self.patch) >= (major, minor, patch)
