from __future__ import annotations

import itertools
import subprocess

import pytest

from mmpkg.errors import ReleaseError
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.version_order import PackageVersion
from tests.support import harness


@pytest.mark.parametrize(
    ("text", "package", "final"),
    [
        ("10.5.2", "10.5.2", "10.5.2"),
        ("9.11.0", "9.11.0", "9.11.0"),
        ("11.0.0-rc1", "11.0.0~rc1", "11.0.0"),
        ("10.11.12-rc10", "10.11.12~rc10", "10.11.12"),
    ],
)
def test_package_version(text: str, package: str, final: str) -> None:
    version = MattermostVersion.parse(text)
    assert str(version) == text
    assert version.package_version == package
    assert version.final == final


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("9.11.0", "10.5.2"),
        ("10.5.2", "10.11.1"),
        ("10.9.9", "10.11.0"),
        ("11.0.0-rc1", "11.0.0"),
        ("11.0.0-rc2", "11.0.0-rc10"),
        ("10.11.1", "11.0.0-rc1"),
    ],
)
def test_ordering(older: str, newer: str) -> None:
    assert MattermostVersion.parse(older) < MattermostVersion.parse(newer)
    assert not MattermostVersion.parse(newer) < MattermostVersion.parse(older)


@pytest.mark.parametrize("bad", ["10.5", "v10.5.2", "10.5.2-beta1", "10.05.2", "10.5.2-rc0", "", "10.5.2 "])
def test_rejects(bad: str) -> None:
    with pytest.raises(ReleaseError, match="not a Mattermost version"):
        MattermostVersion.parse(bad)


def test_db_migrate_threshold() -> None:
    assert MattermostVersion.parse("6.5.0").at_least(6, 5)
    assert not MattermostVersion.parse("6.4.9").at_least(6, 5)


# Versions either format allows that a hand-written order of dotted parts gets wrong.
DEB_VERSIONS = (
    "10.12.0~rc1-1", "10.12.0-1", "10.12.0-2", "10.12.0-1.1", "10.12.0-1~bpo1", "10.11.1a-1",
    "10.11.1+hotfix1-1", "10.11.1-1", "10.11.01-1", "10.11.1.0-1", "1:9.0.0-1", "10.11.1~~-1",
    "10.11.1~-1", "10.11.1", "1-1", "3-1", "99-1",
)  # fmt: skip
RPM_VERSIONS = (
    "10.12.0~rc1-1", "10.12.0-1", "10.12.0-2", "10.12.0-1.el9", "10.12.0^post1-1", "10.11.1a-1",
    "10.11.1+hotfix1-1", "10.11.1-1", "10.11.01-1", "10.11.1.0-1", "1:9.0.0-1", "10.11.1~~-1",
    "10.11.1_1-1", "10.11.1^-1", "1-1", "3-1", "99-1",
)  # fmt: skip


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def _ours(fmt: str, a: str, b: str) -> int:
    x, y = PackageVersion(fmt, a), PackageVersion(fmt, b)
    return -1 if x < y else 1 if x > y else 0


def test_deb_versions_order_as_dpkg_does() -> None:
    harness.require("dpkg", root=False)
    for a, b in itertools.combinations(DEB_VERSIONS, 2):
        dpkg = [
            op
            for op in ("lt", "eq", "gt")
            if subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
        ]
        assert dpkg == [("lt", "eq", "gt")[_ours("deb", a, b) + 1]], (a, b)


def test_rpm_versions_order_as_rpm_does() -> None:
    harness.require("rpm", root=False)
    pairs = list(itertools.combinations(RPM_VERSIONS, 2))
    lua = "".join(f'print(rpm.vercmp("{a}", "{b}") .. " ") ' for a, b in pairs)
    out = subprocess.run(["rpm", "--eval", f"%{{lua: {lua}}}"], capture_output=True, text=True, check=True)
    theirs = [_sign(int(n)) for n in out.stdout.split()]
    assert theirs == [_ours("rpm", a, b) for a, b in pairs]


def test_versions_of_both_formats_are_one_total_order() -> None:
    mixed = [PackageVersion("rpm", v) for v in RPM_VERSIONS] + [
        PackageVersion("deb", v) for v in DEB_VERSIONS
    ]
    ordered = sorted(mixed)
    assert [v.format for v in ordered] == ["deb"] * len(DEB_VERSIONS) + ["rpm"] * len(RPM_VERSIONS)
    assert all(not b < a for a, b in itertools.pairwise(ordered))


@pytest.mark.parametrize("bad", ["1/../x-1", "", "1.0 -1", "a:1.0-1"])
def test_a_deb_version_dpkg_refuses_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        PackageVersion("deb", bad)


@pytest.mark.parametrize(
    ("text", "bound"),
    [("10.0", "10.0.0"), ("10.11", "10.11.0"), ("10.5.2", "10.5.2"), ("11.0.0-rc1", "11.0.0-rc1")],
)
def test_a_minimum_may_be_a_release_line(text: str, bound: str) -> None:
    """`--since 10.0` means the line's first release, 10.0.0; a full version means itself."""
    assert MattermostVersion.parse_minimum(text) == MattermostVersion.parse(bound)


@pytest.mark.parametrize("bad", ["10", "10.05", "v10.5", "10.5.", "10.x", ""])
def test_a_minimum_rejects_what_is_neither(bad: str) -> None:
    with pytest.raises(ReleaseError, match=r"expected X\.Y, X\.Y\.Z or X\.Y\.Z-rcN"):
        MattermostVersion.parse_minimum(bad)
