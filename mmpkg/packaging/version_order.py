"""How each package format orders its versions: dpkg's rules for a .deb, rpm's for an .rpm.

What apt and dnf install is decided by these rules, so the repository sorts by them too, and
by the formats' own code rather than ours: `10.12.0~rc1-1`, `10.11.1a-1` and `1.0+hotfix1-1`
are all versions a package may carry, and a hand-written order of dotted parts breaks on one
of them sooner or later.

- deb: python-debian's `debian.debian_support.Version`, the dpkg algorithm (also its syntax:
  it refuses what dpkg would).
- rpm: rpm-version, the rpm-rs project's port of rpm's rpmvercmp (`~` and `^` included). rpm's
  own C code is reachable from Python only through the system's python3-rpm (`rpm.labelCompare`),
  which is built for the system's interpreter alone: the `rpm` shim on PyPI finds it only when
  a virtual environment runs that same Python version, while mmpkg installs into any Python
  3.11+. tests/test_versions.py checks that both orders agree with `dpkg --compare-versions` and
  with the installed rpm's own `rpm.vercmp`.
"""

from __future__ import annotations

from functools import total_ordering

import rpm_version
from debian.debian_support import Version as DebVersion


def _rpm_compare(a: str, b: str) -> int:
    return int(rpm_version.evr_compare(a, b))


@total_ordering
class PackageVersion:
    """A package version as its format orders it; versions of different formats order by the
    format's name, so that any two compare (one total order over every version of both).

    `fmt` is "deb" or "rpm"; `text` is `[epoch:]version-revision` (deb) or
    `[epoch:]version-release` (rpm). A deb version dpkg would refuse raises ValueError."""

    __slots__ = ("_deb", "format", "text")

    def __init__(self, fmt: str, text: str) -> None:
        if fmt not in ("deb", "rpm"):
            raise ValueError(f"unknown package format {fmt!r}")
        self.format = fmt
        self.text = text
        self._deb = DebVersion(text) if fmt == "deb" else None

    def _compare(self, other: PackageVersion) -> int:
        if self.format != other.format:
            return -1 if self.format < other.format else 1
        if self._deb is not None and other._deb is not None:
            return -1 if self._deb < other._deb else int(self._deb > other._deb)
        return _rpm_compare(self.text, other.text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackageVersion):
            return NotImplemented
        return self._compare(other) == 0

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, PackageVersion):
            return NotImplemented
        return self._compare(other) < 0

    # Equal versions may be spelt differently (1.0 and 1.00): no hash agrees with that equality.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackageVersion({self.format!r}, {self.text!r})"
