"""Whatever version a package's header says, the repository orders it as its format does and
never builds a path from it that leads anywhere but its own place in the tree."""

from __future__ import annotations

from pathlib import Path

import minimal_packages as minimal
from packages import PackageFactory
from test_repo import KEY, V1, gnupghome, published, repo

from mmpkg.release import Arch, Edition
from mmpkg.repo import Repository
from mmpkg.sync import Item, lacking, previous
from mmpkg.versions import MattermostVersion

__all__ = ["gnupghome", "published", "repo"]  # fixtures shared with test_repo.py

# Versions upstream never used but either format allows, as someone may publish by hand.
ODD = ("10.11.1a-1", "10.11.1+hotfix1-1")


def _versions(repo: Repository, fmt: str) -> list[str]:
    return [e.version for e in repo.list("stable") if e.name == "mattermost" and e.format == fmt]


def test_every_version_either_format_allows_is_ordered_checked_and_removed(
    published: Repository, packages: PackageFactory, tmp_path: Path
) -> None:
    rc, final = packages.build("10.12.0-rc1"), packages.build("10.12.0")
    published.add([rc.deb, rc.rpm, final.deb, final.rpm], "stable", KEY)
    odd = [minimal.deb(tmp_path, "mattermost", v, arch="amd64") for v in ODD]
    odd += [minimal.rpm(tmp_path, "mattermost", v[: v.index("-")], v[-1], arch="x86_64") for v in ODD]
    published.add(odd, "stable", KEY)
    # Newest first, as dpkg --compare-versions and rpm's rpmvercmp order them (test_versions.py).
    newest_first = ["10.12.0-1", "10.12.0~rc1-1", "10.11.1+hotfix1-1", "10.11.1a-1", f"{V1}-1"]
    assert _versions(published, "deb") == newest_first
    assert _versions(published, "rpm") == newest_first
    assert published.check() == []
    # sync plans against such a channel, and names the release a server upgrades from.
    item = Item(MattermostVersion.parse("10.12.1"), Edition.ENTERPRISE, Arch.AMD64, ("stable",))
    assert lacking(published, [item], keep=5) == [item]
    assert previous(published.path, item) == MattermostVersion.parse("10.12.0")
    # What was published by mistake can be withdrawn again.
    for version in ODD:
        assert {e.format for e in published.remove("mattermost", version, "stable", KEY)} == {"deb", "rpm"}
    assert _versions(published, "deb") == ["10.12.0-1", "10.12.0~rc1-1", f"{V1}-1"]
    assert published.check() == []
