"""Whatever version a package's header says, the repository orders it as its format does and
never builds a path from it that leads anywhere but its own place in the tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mmpkg.errors import RepoError
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo import Repository
from mmpkg.repo.journal import Transaction
from mmpkg.repo.packages import place
from mmpkg.sync.pipeline import Item, lacking, previous
from tests.support import minimal_packages as minimal
from tests.support.packages import PackageFactory
from tests.test_repo import KEY, V1, gnupghome, published, repo, tree_hash

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
    assert previous(published, item) == MattermostVersion.parse("10.12.0")
    # What was published by mistake can be withdrawn again.
    for version in ODD:
        assert {e.format for e in published.remove("mattermost", version, "stable", KEY)} == {"deb", "rpm"}
    assert _versions(published, "deb") == ["10.12.0-1", "10.12.0~rc1-1", f"{V1}-1"]
    assert published.check() == []


# Six levels up from rpm/stable/ARCH/Packages/NAME-...: beside the tree.
ESCAPE = "1" + "/.." * 6 + "/evil"


@pytest.mark.parametrize("tag", ["VERSION", "RELEASE"])
def test_an_rpm_whose_header_leads_out_of_the_tree_is_refused(
    published: Repository, tmp_path: Path, tag: str
) -> None:
    """The header is forged after rpmbuild (which refuses such a value), its digests fixed:
    rpm -K says it is intact, so only the repository's own check stands in the way."""
    version, release = ("1" * len(ESCAPE), "1") if tag == "VERSION" else ("10.5.3", "1" * len(ESCAPE))
    made = minimal.rpm(tmp_path / "made", "mattermost", version, release, arch="x86_64")
    forged = minimal.forge_rpm_header(made, tmp_path / "made" / "forged.rpm", tag, ESCAPE)
    assert subprocess.run(["rpm", "-K", forged], capture_output=True).returncode == 0
    outside = sorted(p for p in tmp_path.iterdir() if p != published.path)
    before = tree_hash(published.path)
    with pytest.raises(RepoError, match=rf"{tag.title()} '1/\.\./.*' is not a valid rpm {tag.lower()}"):
        published.add([forged], "stable", KEY)
    assert sorted(p for p in tmp_path.iterdir() if p != published.path) == outside
    assert tree_hash(published.path) == before


@pytest.mark.parametrize(
    ("fmt", "name", "version", "arch"),
    [
        ("deb", "mattermost", "1/../../x", "amd64"),
        ("deb", "mattermost", "10.5.2-1", "amd64/.."),
        ("deb", "../mattermost", "10.5.2-1", "amd64"),
        ("rpm", "mattermost", "10.5.2-1/..", "x86_64"),
        ("rpm", "mattermost", "10.5.2/..-1", "x86_64"),
        ("rpm", "mattermost", "10.5.2-1", "../x86_64"),
        ("rpm", "mattermost/..", "10.5.2-1", "x86_64"),
    ],
)
def test_fields_that_would_make_a_path_are_refused(fmt: str, name: str, version: str, arch: str) -> None:
    """dpkg-deb itself refuses to read such a deb; the repository does not rely on it."""
    with pytest.raises(RepoError, match=r"^(package|architecture|Version|Release) '.*' is not"):
        place(fmt, name, version, arch)


def test_the_journal_moves_nothing_out_of_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "repo"
    tx = Transaction(tree)
    for dest in (tree / "pool/stable/../../../evil.deb", tmp_path / "evil.deb", tree / ".." / "evil"):
        with pytest.raises(RepoError, match="outside the repository"):
            tx.move(tx.path("x"), dest)
        with pytest.raises(RepoError, match="outside the repository"):
            tx.delete(dest)
