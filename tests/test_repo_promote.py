"""`mmpkg repo promote VERSION --from canary --to stable`: rings. The very files of the first
ring published in the next, no package rebuilt or signed again; a promotion before its soak
(--after) refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mmpkg.errors import RepoError, UsageError
from mmpkg.repo import Repository, journal, rings
from mmpkg.repo.apt import parse_deb822
from tests.support import harness, repo_reader
from tests.support.cli_runner import Mmpkg, runner
from tests.support.packages import PackageFactory
from tests.test_repo import KEY, V1, V2, _serve, gnupghome
from tests.test_repo_pool import _source

__all__ = ["gnupghome"]


@pytest.fixture
def mmpkg(capsys: pytest.CaptureFixture[str], gnupghome: Path, monkeypatch: pytest.MonkeyPatch) -> Mmpkg:
    monkeypatch.setenv("GNUPGHOME", str(gnupghome))
    return runner(capsys)


@pytest.fixture
def rings_repo(tmp_path: Path, gnupghome: Path, packages: PackageFactory) -> Repository:
    """V1 in stable and canary, V2 in canary only."""
    repo = Repository(tmp_path / "repo", gnupghome=gnupghome)
    v1, v2 = packages.build(V1), packages.build(V2)
    repo.add([v1.deb, v1.rpm], "stable", KEY)
    repo.add([v1.deb, v1.rpm, v2.deb, v2.rpm], "canary", KEY)
    return repo


def _pool(repo: Repository) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(repo.path)): (p.stat().st_ino, p.read_bytes())
        for p in sorted(repo.path.glob("pool/**/*.*"))
    }


def _versions(repo: Repository, channel: str) -> set[str]:
    return {e.version for e in repo.list(channel) if e.name == "mattermost"}


def test_a_promotion_publishes_the_same_files_in_the_next_ring(
    rings_repo: Repository, mmpkg: Mmpkg, tmp_path: Path
) -> None:
    before = _pool(rings_repo)
    code, out, err = mmpkg(
        "repo", "promote", rings_repo.path, V2, "--from", "canary", "--to", "stable", "--json"
    )
    assert code == 0, err
    promoted = {e["path"] for e in json.loads(out)["promoted"]}
    assert promoted == {
        f"pool/main/m/mattermost/mattermost_{V2}-1_amd64.deb",
        f"pool/main/m/mattermost/mattermost-{V2}-1.x86_64.rpm",
    }
    assert _versions(rings_repo, "stable") == {f"{V1}-1", f"{V2}-1"}
    # Not one package file new, changed or copied: the same inodes, the same bytes (an rpm
    # signed again would differ).
    assert _pool(rings_repo) == before
    stable = {str(e.path) for e in rings_repo.list("stable")}
    assert promoted <= stable
    ring = repo_reader.keyring(rings_repo.export_key(), tmp_path)
    fetch = repo_reader.file_fetch(rings_repo.path)
    assert repo_reader.problems(fetch, ring, "stable", ("x86_64", "aarch64")) == []
    code, out, _ = mmpkg("repo", "promote", rings_repo.path, V2, "--from", "canary", "--to", "stable")
    assert code == 0 and "nothing promoted: channel stable already had every package" in out


def test_a_dry_run_says_what_would_be_promoted_and_changes_nothing(
    rings_repo: Repository, mmpkg: Mmpkg
) -> None:
    state = (rings_repo.path / journal.PRIVATE / journal.STATE).read_bytes()
    code, out, _ = mmpkg(
        "repo", "promote", rings_repo.path, V2, "--from", "canary", "--to", "stable", "--dry-run"
    )
    assert code == 0 and f"would promote pool/main/m/mattermost/mattermost_{V2}-1_amd64.deb" in out
    assert _versions(rings_repo, "stable") == {f"{V1}-1"}
    assert (rings_repo.path / journal.PRIVATE / journal.STATE).read_bytes() == state


def test_a_promotion_before_its_soak_is_refused(rings_repo: Repository, mmpkg: Mmpkg) -> None:
    code, _, err = mmpkg(
        "repo", "promote", rings_repo.path, V2, "--from", "canary", "--to", "stable", "--after", "2d"
    )
    assert code == 7
    assert f"{V2} entered canary" in err and "less than --after 2d: promote it from" in err
    assert len(err.splitlines()) == 1
    assert _versions(rings_repo, "stable") == {f"{V1}-1"}
    # Two days on, the same promotion goes through.
    rings_repo.promote(V2, "canary", "stable", KEY, after=2 * 86400, now=time.time() + 2 * 86400 + 60)
    assert _versions(rings_repo, "stable") == {f"{V1}-1", f"{V2}-1"}


def test_a_file_that_entered_before_the_record_is_promoted_only_without_after(rings_repo: Repository) -> None:
    state_file = rings_repo.path / journal.PRIVATE / journal.STATE
    state = json.loads(state_file.read_text())
    del state[rings.STATE_KEY]
    state_file.write_text(json.dumps(state))
    with pytest.raises(RepoError, match=r"no record of when .* entered canary .* promote it without --after"):
        rings_repo.promote(V2, "canary", "stable", KEY, after=60)
    rings_repo.promote(V2, "canary", "stable", KEY)
    assert _versions(rings_repo, "stable") == {f"{V1}-1", f"{V2}-1"}


def test_what_cannot_be_promoted_is_one_line(rings_repo: Repository, mmpkg: Mmpkg) -> None:
    code, _, err = mmpkg("repo", "promote", rings_repo.path, "10.12.0", "--from", "canary", "--to", "stable")
    assert code == 7 and f"10.12.0 is not published in canary; it has {V2}-1, {V1}-1" in err
    code, _, err = mmpkg("repo", "promote", rings_repo.path, V2, "--from", "stable", "--to", "stable")
    assert code == 7 and "--from and --to are both stable" in err
    code, _, err = mmpkg(
        "repo", "promote", rings_repo.path, V2, "--from", "canary", "--to", "stable", "--after", "soon"
    )
    assert code == 2 and "not a duration" in err
    code, _, err = mmpkg("repo", "promote", rings_repo.path, V2, "--from", "nightly", "--to", "stable")
    assert code == 7 and "nightly" in err
    assert all(len(e.splitlines()) == 1 for e in [err])


def test_spans_read_and_print_as_people_write_them() -> None:
    assert rings.parse_span("1d12h") == 36 * 3600
    assert rings.parse_span("2w") == 14 * 86400
    assert rings.span(36 * 3600) == "36h" and rings.span(2 * 86400) == "2d" and rings.span(90 * 60) == "90m"
    with pytest.raises(UsageError):
        rings.parse_span("12")


def _stanzas(repo: Repository, channel: str) -> list[dict[str, str]]:
    return parse_deb822((repo.path / f"dists/{channel}/main/binary-amd64/Packages").read_text())


def test_a_phased_channel_marks_only_its_newest_versions(
    rings_repo: Repository, mmpkg: Mmpkg, tmp_path: Path
) -> None:
    code, _, err = mmpkg(
        "repo", "promote", rings_repo.path, V2, "--from", "canary", "--to", "stable", "--phased", "10"
    )
    assert code == 0, err
    phased = {
        (s["Package"], s["Version"]): s.get("Phased-Update-Percentage")
        for s in _stanzas(rings_repo, "stable")
    }
    assert phased[("mattermost", f"{V2}-1")] == "10"
    assert phased[("mattermost", f"{V1}-1")] is None
    assert all(v is None for (name, _), v in phased.items() if name != "mattermost")
    ring = repo_reader.keyring(rings_repo.export_key(), tmp_path)
    assert repo_reader.apt_problems(repo_reader.file_fetch(rings_repo.path), ring, "stable") == []
    code, out, _ = mmpkg("repo", "phase", rings_repo.path, "100", "--channel", "stable")
    assert code == 0 and "offered to every apt server" in out
    assert all("Phased-Update-Percentage" not in s for s in _stanzas(rings_repo, "stable"))
    code, _, err = mmpkg("repo", "phase", rings_repo.path, "101", "--channel", "stable")
    assert code == 2 and "not a percentage" in err


@pytest.mark.install
def test_apt_holds_back_a_phased_version_and_takes_it_once_fully_phased(
    rings_repo: Repository, mmpkg: Mmpkg, root: harness.Root
) -> None:
    with _serve(rings_repo.path) as url:
        _source(root, rings_repo, url, "stable")
        root.apt_install("mattermost")
        assert (
            mmpkg(
                "repo", "promote", rings_repo.path, V2, "--from", "canary", "--to", "stable", "--phased", "0"
            )[0]
            == 0
        )
        root.run("apt-get", "update", "--error-on=any")
        # apt applies phasing on a machine, not in a chroot, where it takes every phased update;
        # Never-Include-Phased-Updates holds back exactly the versions the index phases.
        never = ("-o", "APT::Get::Never-Include-Phased-Updates=true", "-o", "Dpkg::Options::=--force-confold")
        out = root.run("apt-get", "upgrade", "-y", *never).stdout
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V1}-1", out
        assert "deferred due to phasing" in out or "kept back" in out, out
        assert mmpkg("repo", "phase", rings_repo.path, "100", "--channel", "stable")[0] == 0
        root.run("apt-get", "update", "--error-on=any")
        root.run("apt-get", "upgrade", "-y", *never)
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V2}-1"
