from __future__ import annotations

import pytest

from mmpkg.errors import ReleaseError
from mmpkg.versions import MattermostVersion


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
