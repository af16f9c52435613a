"""`mattermost-pkg upgrade`: a chain of upgrades along upstream's tested path (every ESR on the
way), planned on the server from what its apt repository offers, each stop a real
`apt-get install`."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmpkg.mattermost.upgrade_path import plan, step_advice
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo import Repository
from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.repo_client import RepoClient
from tests.support.scenario import Site, assert_nothing_lost
from tests.test_lifecycle import schema
from tests.test_repo import KEY, _serve, gnupghome

__all__ = ["gnupghome"]  # the signing key, shared with test_repo.py

V = MattermostVersion.parse
# Five releases, four upgrades: through three ESRs (5.37, 6.3, 7.1), then on to 7.2. The first
# two stops predate `db migrate` (6.5); 7.1.8 is the first that runs it.
CHAIN = ("5.35.0", "5.37.10", "6.3.10", "7.1.8", "7.2.0")


def _published(
    tmp: Path, gnupghome: Path, packages: PackageFactory, versions: tuple[str, ...], fmt: str
) -> Repository:
    repo = Repository(tmp / "repo", gnupghome=gnupghome)
    files = [packages.deb(v) if fmt == "deb" else packages.build(v).rpm for v in versions]
    repo.add(files, "stable", KEY, keep=len(versions))
    return repo


@pytest.fixture(params=["deb", "rpm"])
def client(request: pytest.FixtureRequest, root: harness.Root) -> Iterator[tuple[RepoClient, Site]]:
    yield RepoClient(root, str(request.param)), Site(root)


@pytest.mark.generations
@pytest.mark.install
def test_a_five_release_chain_from_the_repository(
    client: tuple[RepoClient, Site], packages: PackageFactory, gnupghome: Path, tmp_path: Path
) -> None:
    pm, site = client
    root = pm.root
    repo = _published(tmp_path, gnupghome, packages, CHAIN, pm.fmt)
    with _serve(repo.path) as url:
        pm.install_from(repo, url, CHAIN[0])
        site.create_database()
        site.edit_config("TeamSettings", "SiteName", "Chained")
        site.add_override("50-team.json", {"ServiceSettings": {"SiteURL": "https://chat.example.com"}})
        site.add_files()
        root.run("mattermost-pkg", "apply-overrides")
        before, schema = site.state(), site.schema()

        dry = root.run("mattermost-pkg", "upgrade", "--dry-run")
        stops = [str(v) for v in plan(V(CHAIN[0]), V(CHAIN[-1]), map(V, CHAIN))]
        assert stops == list(CHAIN[1:])  # every ESR on the way
        assert dry.stdout == f"mattermost: upgrade plan: {' -> '.join([CHAIN[0], *stops])}\n"
        assert pm.installed() == f"{CHAIN[0]}-1"

        # Through the ESRs to a chosen version, then on to the newest: five releases.
        to = root.run("mattermost-pkg", "upgrade", "--to", "7.1.8")
        assert "mattermost: upgrade plan: 5.35.0 -> 5.37.10 -> 6.3.10 -> 7.1.8\n" in to.stdout
        assert pm.installed() == "7.1.8-1"
        done = root.run("mattermost-pkg", "upgrade")
        assert pm.installed() == f"{CHAIN[-1]}-1"
        assert done.stdout.splitlines()[-1] == f"mattermost: mattermost is at {CHAIN[-1]}"
        again = root.run("mattermost-pkg", "upgrade")
        assert again.stdout == f"mattermost: mattermost {CHAIN[-1]} is installed: nothing to upgrade\n"
    # Each stop was a real upgrade: its guard, its snapshot, its migration.
    assert site.schema() > schema
    assert_nothing_lost(before, site.state())
    snapshots = json.loads(root.run("mattermost-pkg", "list-backups", "--json").stdout)
    steps = sorted((s["from"], s["to"]) for s in snapshots if s["kind"] == "upgrade")
    assert steps == sorted(itertools.pairwise(CHAIN))


@pytest.mark.install
def test_a_chain_missing_a_stop_is_refused_before_anything_changes(
    client: tuple[RepoClient, Site], packages: PackageFactory, gnupghome: Path, tmp_path: Path
) -> None:
    pm, site = client
    root = pm.root
    without_esr = tuple(v for v in CHAIN if not v.startswith("7.1."))
    repo = _published(tmp_path, gnupghome, packages, without_esr, pm.fmt)
    with _serve(repo.path) as url:
        pm.install_from(repo, url, CHAIN[0])
        site.create_database()
        before = site.state()
        proc = root.run("mattermost-pkg", "upgrade", check=False)
    assert proc.returncode == 1
    why = step_advice(V("6.3.10"), V(CHAIN[-1]))
    assert why == "upgrade to 7.1 (ESR) first"
    assert proc.stderr == (
        f"mattermost: error: no upgrade path from 6.3.10 to {CHAIN[-1]} among the versions the "
        f"repositories offer: {why}. Publish the missing release in the repository, then try again\n"
    )
    assert pm.installed() == f"{CHAIN[0]}-1"
    assert_nothing_lost(before, site.state())


@pytest.mark.install
def test_a_chain_stops_at_the_first_failing_stop(
    client: tuple[RepoClient, Site], packages: PackageFactory, gnupghome: Path, tmp_path: Path
) -> None:
    """A stop whose migration fails ends the chain there, with the package's own message and
    mattermost-pkg's one line; once the cause is gone the package finishes, and the chain goes on."""
    pm, site = client
    root = pm.root
    chain = CHAIN  # the first stop that migrates (6.5 and later do) is 7.1.8
    repo = _published(tmp_path, gnupghome, packages, chain, pm.fmt)
    with _serve(repo.path) as url:
        pm.install_from(repo, url, chain[0])
        site.create_database()
        site.set_env(MMPKG_SAMPLE_MIGRATION_FAIL="1")
        proc = root.run("mattermost-pkg", "upgrade", check=False)
        assert proc.returncode != 0
        ours = [line for line in proc.stderr.splitlines() if "mattermost-pkg upgrade" in line]
        assert ours == [
            f"mattermost: error: the upgrade to {chain[3]} failed (the package's messages above say why "
            f"and what to do); mattermost is at {chain[3]}-1. Fix that, then run "
            f"'mattermost-pkg upgrade --to {chain[4]}' again to go on"
        ], proc.stderr
        assert "simulated failure" in proc.stdout + proc.stderr
        # Nothing went past the failing stop, and its migration took nothing with it.
        assert pm.installed() == f"{chain[3]}-1"
        assert site.schema() < schema(chain[3])
        site.set_env(MMPKG_SAMPLE_MIGRATION_FAIL="0")
        pm.finish()
        assert site.schema() == schema(chain[3])
        root.run("mattermost-pkg", "upgrade")
        assert pm.installed() == f"{chain[4]}-1"
