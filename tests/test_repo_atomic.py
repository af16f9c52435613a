"""The repository changes atomically: readers never see a broken index, concurrent adds
serialise, a killed add leaves the old state or the new one, an add reads only its packages;
real clients refuse what was tampered with and can still downgrade."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmpkg.build import omnibus
from mmpkg.mattermost.release import Edition
from mmpkg.repo import Entry, Repository, keyring, publish
from mmpkg.repo.journal import JOURNAL, PRIVATE
from tests.support import harness, repo_reader
from tests.support.packages import PackageFactory
from tests.test_repo import KEY, V1, V2, _apt_client, _dnf, gnupghome, published, repo, served

__all__ = ["gnupghome", "published", "repo", "served"]  # fixtures shared with test_repo.py

DNF_ARCHES = ("x86_64",)
INDICES = ("dists/stable", "rpm/stable/x86_64/repodata", "rpm/stable/aarch64/repodata")


@pytest.fixture(scope="module")
def ring(gnupghome: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    armored = subprocess.run(["gpg", "--armor", "--export", KEY], env=env, capture_output=True, text=True)
    return repo_reader.keyring(armored.stdout, tmp_path_factory.mktemp("ring"))


def _servers(repo: Repository) -> list[Entry]:
    """The channel's Mattermost servers, without the keyring and transitional packages every
    channel carries."""
    return [e for e in repo.list("stable") if e.name not in (keyring.NAME, omnibus.NAME)]


def served_files(tree: Path) -> dict[str, str]:
    """Every served path (not .mmpkg/) -> its content's sha256, or the target of a symlink."""
    found: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(tree):
        here = Path(dirpath)
        if here == tree:
            dirs[:] = [d for d in dirs if d != PRIVATE]
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            f = here / name
            rel = str(f.relative_to(tree))
            found[rel] = (
                f"-> {os.readlink(f)}" if f.is_symlink() else hashlib.sha256(f.read_bytes()).hexdigest()
            )
    return found


def view(tree: Path, index: str) -> dict[str, str]:
    """What a client finds below one index (through its symlink)."""
    d = tree / index
    if not d.is_dir():
        return {}
    return {
        str(f.relative_to(d)): hashlib.sha256(f.read_bytes()).hexdigest() for f in d.rglob("*") if f.is_file()
    }


# --- readers during a series of publishes --------------------------------------------------------


def test_readers_never_see_an_inconsistent_index(
    published: Repository, served: str, packages: PackageFactory, ring: Path
) -> None:
    fetch = repo_reader.http_fetch(served)
    assert repo_reader.problems(fetch, ring, "stable", DNF_ARCHES) == []
    stop = threading.Event()
    found: list[str] = []
    seen: set[bytes] = set()
    rounds = 0

    def read() -> None:
        nonlocal rounds
        while not stop.is_set():
            seen.add(fetch("dists/stable/InRelease") or b"")
            found.extend(repo_reader.problems(fetch, ring, "stable", DNF_ARCHES))
            rounds += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        v2, team = packages.build(V2), packages.build(V2, edition=Edition.TEAM)
        published.add([v2.deb, v2.rpm], "stable", KEY)
        published.add([team.deb, team.rpm], "stable", KEY)
        v1 = next(
            e.version for e in published.list("stable") if e.format == "deb" and e.version.startswith(V1)
        )
        published.remove("mattermost", v1, "stable", KEY)
        published.add([], "stable", KEY)
    finally:
        stop.set()
        reader.join()
    assert found == []
    # The reader really read across publishes: it saw more than one generation.
    assert rounds >= 4 and len(seen) >= 2, (rounds, len(seen))
    assert published.check() == []


def test_a_removed_package_is_served_until_no_kept_index_names_it(
    published: Repository, packages: PackageFactory
) -> None:
    v1 = next(e for e in published.list("stable") if e.format == "deb")
    published.remove("mattermost", v1.version, "stable", KEY)
    deb = published.path / v1.path
    assert _servers(published) == [] and published.check() == []
    for _ in range(publish.KEEP_GENERATIONS - 2):
        published.add([], "stable", KEY)
        assert deb.is_file()
    published.add([], "stable", KEY)
    assert not deb.exists()
    assert published.check() == []
    # Published again, withdrawn, and added again while still served: it is listed again.
    built = packages.build(V1)
    published.add([built.deb, built.rpm], "stable", KEY)
    published.remove("mattermost", v1.version, "stable", KEY)
    assert deb.is_file()
    published.add([built.deb, built.rpm], "stable", KEY)
    assert {e.format for e in published.list("stable")} == {"deb", "rpm"}
    assert published.check() == []


def test_a_withdrawn_file_counts_only_its_own_channels_publishes(
    published: Repository, packages: PackageFactory
) -> None:
    """Publishing stable is no new generation of esr: esr's kept indices may still name a file
    withdrawn from esr, however often stable changes."""
    built = packages.build(V2)  # not in stable, which would keep the one file of the pool
    published.add([built.deb], "esr", KEY)
    esr_deb = next(published.path / e.path for e in published.list("esr") if e.name == "mattermost")
    published.remove("mattermost", f"{V2}-1", "esr", KEY)
    for _ in range(publish.KEEP_GENERATIONS + 1):
        published.add([], "stable", KEY)
    assert esr_deb.is_file()
    for _ in range(publish.KEEP_GENERATIONS - 1):
        published.add([], "esr", KEY)
    assert not esr_deb.exists()
    assert published.check() == []


def test_a_tree_from_before_generations_is_taken_over(
    published: Repository, packages: PackageFactory, ring: Path
) -> None:
    """Real index directories, no private state: the next add makes them generations."""
    tree = published.path
    for index in INDICES:
        gen = tree / index
        target = gen.parent / os.readlink(gen)
        gen.unlink()
        target.rename(gen)
    shutil.rmtree(tree / PRIVATE)
    by_hash = {f.name for f in (tree / "dists/stable/main/binary-amd64/by-hash/SHA256").iterdir()}
    v2 = packages.build(V2)
    published.add([v2.deb, v2.rpm], "stable", KEY)
    assert all((tree / index).is_symlink() for index in INDICES)
    assert by_hash < {f.name for f in (tree / "dists/stable/main/binary-amd64/by-hash/SHA256").iterdir()}
    assert published.check() == []
    assert repo_reader.problems(repo_reader.file_fetch(tree), ring, "stable", DNF_ARCHES) == []


# --- killed adds ---------------------------------------------------------------------------------

# A `repo add` in a process of its own that SIGKILLs itself at its Nth step: before each tool
# mmpkg runs, and before each rename (every change to the served tree is one). N=0 counts steps.
CHILD = r"""
import json, os, signal, sys
from pathlib import Path
import mmpkg.tools.run
from mmpkg.repo import Repository, apt, dnf, keys, packages, signing

tree, home, key, at, *pkgs = sys.argv[1:]
steps = 0

def step() -> None:
    global steps
    steps += 1
    if steps == int(at):
        os.kill(os.getpid(), signal.SIGKILL)

real_run, real_replace = mmpkg.tools.run.run, os.replace
def run(*a, **k):
    step()
    return real_run(*a, **k)
def replace(*a, **k):
    step()
    return real_replace(*a, **k)
for module in (apt, dnf, keys, packages, signing):
    module.run = run
os.replace = replace
Repository(Path(tree), gnupghome=Path(home)).add([Path(p) for p in pkgs], "stable", key)
print(json.dumps({"steps": steps}))
"""


def _child(tree: Path, home: Path, at: int, pkgs: list[Path]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", CHILD, str(tree), str(home), KEY, str(at), *map(str, pkgs)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_add_killed_at_any_step_leaves_the_old_state_or_the_new(
    published: Repository, packages: PackageFactory, ring: Path, tmp_path: Path
) -> None:
    v2 = packages.build(V2)
    pkgs = [v2.deb, v2.rpm]
    counting = tmp_path / "counting"
    shutil.copytree(published.path, counting, symlinks=True)
    proc = _child(counting, published.gnupghome, 0, pkgs)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    total = json.loads(out)["steps"]
    points = range(1, total + 1)
    committed = 0
    for at in points:
        tree = tmp_path / f"killed-{at}"
        shutil.copytree(published.path, tree, symlinks=True)
        before = served_files(tree)
        views = {i: view(tree, i) for i in INDICES}
        proc = _child(tree, published.gnupghome, at, pkgs)
        _, err = proc.communicate()
        assert proc.returncode == -9, (at, err)
        # A client of the killed tree sees a consistent repository...
        assert repo_reader.problems(repo_reader.file_fetch(tree), ring, "stable", DNF_ARCHES) == [], at
        pending = (tree / PRIVATE / JOURNAL).exists()
        if not pending:
            # ... and before the commit point, exactly the tree as it was.
            assert served_files(tree) == before, at
        killed = {i: view(tree, i) for i in INDICES}
        with publish.locked(tree):  # what the next command does first
            pass
        assert not (tree / PRIVATE / JOURNAL).exists()
        recovered = {i: view(tree, i) for i in INDICES}
        for index in INDICES:
            # Each index is the old generation or the new one, never a mixture.
            assert killed[index] in (views[index], recovered[index]), (at, index)
            assert (recovered[index] != views[index]) == pending, (at, index)
        committed += pending
        again = Repository(tree, gnupghome=published.gnupghome)
        again.add(pkgs, "stable", KEY)
        assert again.check() == [], at
        assert {e.version.split("-")[0] for e in _servers(again)} == {V1, V2}
    assert 0 < committed < len(points), (total, committed)


def test_two_adds_in_two_processes_serialise(published: Repository, packages: PackageFactory) -> None:
    v2, team = packages.build(V2), packages.build(V2, edition=Edition.TEAM)
    procs = [_child(published.path, published.gnupghome, 0, [b.deb, b.rpm]) for b in (v2, team)]
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err
    assert {(e.name, e.version.split("-")[0]) for e in _servers(published)} == {
        ("mattermost", V1),
        ("mattermost", V2),
        ("mattermost-team", V2),
    }
    assert published.check() == []


# --- incremental ---------------------------------------------------------------------------------


def _garble(f: Path) -> None:
    """Same name, size and mtime, other bytes: what --update and the stanza cache compare."""
    st = f.stat()
    f.write_bytes(b"\0" * st.st_size)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_an_add_reads_only_its_own_packages(published: Repository, packages: PackageFactory) -> None:
    v2, team = packages.build(V2), packages.build(V2, edition=Edition.TEAM)
    published.add([v2.deb, v2.rpm], "stable", KEY)
    tree = published.path
    packages_index = tree / "dists/stable/main/binary-amd64/Packages"
    old_stanzas = packages_index.read_text()
    old_primary = published.check()
    assert old_primary == []
    published_files = [
        *(tree / "pool/main/m/mattermost").glob("mattermost_*.deb"),
        *(tree / "pool/main/m/mattermost").glob("mattermost-[0-9]*.rpm"),
    ]
    assert len(published_files) == 4
    for f in published_files:
        _garble(f)
    # apt-ftparchive and createrepo_c would fail on any of these if they read it.
    published.add([team.deb, team.rpm], "stable", KEY)
    for stanza in old_stanzas.split("\n\n"):
        assert stanza in packages_index.read_text()
    assert "Package: mattermost-team" in packages_index.read_text()
    problems = published.check()
    # The garbled files are still described by what they were, and only they are wrong.
    assert sorted(p.split(":")[0] for p in problems) == sorted(
        str(f.relative_to(tree)) for f in published_files
    ), problems


# --- real clients --------------------------------------------------------------------------------


def _other_key(gnupghome: Path) -> str:
    other = "intruder@example.invalid"
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    if subprocess.run(["gpg", "--list-secret-keys", other], env=env, capture_output=True).returncode != 0:
        subprocess.run(
            ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", other, "rsa3072", "sign", "never"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
    return other


def _sign(gnupghome: Path, key: str, *args: str) -> None:
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    base = ["gpg", "--batch", "--yes", "--local-user", key, "--digest-algo", "SHA256"]
    subprocess.run([*base, *args], env=env, check=True, capture_output=True)


@pytest.fixture
def apt_root(published: Repository, served: str, root: harness.Root) -> Iterator[harness.Root]:
    _apt_client(root, published, served)
    yield root


@pytest.mark.install
def test_apt_refuses_an_index_signed_by_another_key(published: Repository, apt_root: harness.Root) -> None:
    other = _other_key(published.gnupghome)
    suite = published.path / "dists/stable"
    _sign(
        published.gnupghome,
        other,
        "--clearsign",
        "--output",
        str(suite / "InRelease"),
        str(suite / "Release"),
    )
    sig = str(suite / "Release.gpg")
    _sign(published.gnupghome, other, "--armor", "--detach-sign", "--output", sig, str(suite / "Release"))
    proc = apt_root.run("apt-get", "update", "--error-on=any", check=False)
    assert proc.returncode != 0
    assert "NO_PUBKEY" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.install
def test_dnf_refuses_metadata_signed_by_another_key(
    published: Repository, served: str, root: harness.Root, tmp_path: Path
) -> None:
    harness.require(*harness.DNF_TOOLS)
    other = _other_key(published.gnupghome)
    repodata = published.path / "rpm/stable/x86_64/repodata"
    asc, xml = str(repodata / "repomd.xml.asc"), str(repodata / "repomd.xml")
    _sign(published.gnupghome, other, "--armor", "--detach-sign", "--output", asc, xml)
    out = _dnf(root, published, served, "install", "mattermost", check=False)
    assert not root.rpm_installed("mattermost")
    assert "repomd.xml GPG signature verification error" in out, out


@pytest.mark.install
def test_dnf_refuses_an_unsigned_rpm_in_the_pool(
    published: Repository, served: str, root: harness.Root, packages: PackageFactory, tmp_path: Path
) -> None:
    """Honest, signed metadata for an rpm that is not signed: gpgcheck=1 still refuses it."""
    harness.require(*harness.DNF_TOOLS)
    arch = published.path / "rpm/stable/x86_64"
    (rpm,) = (published.path / "pool/main/m/mattermost").glob("mattermost-[0-9]*.rpm")
    shutil.copyfile(packages.build(V1).rpm, rpm)
    (arch / "repodata").unlink()
    # Over the whole tree (its only rpms are the pool's), named from the repository's base.
    scan = ["--location-prefix", "../../../", "--outputdir", str(arch), str(published.path)]
    subprocess.run(["createrepo_c", "--quiet", *scan], check=True)
    xml = arch / "repodata/repomd.xml"
    _sign(published.gnupghome, KEY, "--armor", "--detach-sign", "--output", f"{xml}.asc", str(xml))
    out = _dnf(root, published, served, "install", "mattermost", check=False)
    assert not root.rpm_installed("mattermost")
    assert "is not signed" in out, out


@pytest.mark.install
def test_apt_downgrades_to_a_version_still_published(
    published: Repository, apt_root: harness.Root, packages: PackageFactory
) -> None:
    v2 = packages.build(V2)
    published.add([v2.deb, v2.rpm], "stable", KEY)
    apt_root.run("apt-get", "update", "--error-on=any")
    apt_root.apt_install("mattermost")
    assert _installed(apt_root) == V2
    v1 = next(e.version for e in published.list("stable") if e.format == "deb" and e.version.startswith(V1))
    opts = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
    apt_root.run(
        "apt-get", "install", "-y", "--allow-downgrades", *opts, f"mattermost={v1}",
        env={"MMPKG_ALLOW_DOWNGRADE": "1"},
    )  # fmt: skip
    assert _installed(apt_root) == V1


def _installed(root: harness.Root) -> str:
    return root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout.split("-")[0]


@pytest.mark.install
def test_dnf_downgrades_to_a_version_still_published(
    published: Repository, served: str, root: harness.Root, packages: PackageFactory, tmp_path: Path
) -> None:
    harness.require(*harness.DNF_TOOLS)
    v2 = packages.build(V2)
    published.add([v2.deb, v2.rpm], "stable", KEY)
    _dnf(root, published, served, "install", "mattermost")
    assert root.rpm_query("--qf", "%{VERSION}", "mattermost") == V2
    root.dnf(
        "--setopt=reposdir=/etc/yum.repos.d", "downgrade", "mattermost",
        repo_dir=None, env={"MMPKG_ALLOW_DOWNGRADE": "1"},
    )  # fmt: skip
    assert root.rpm_query("--qf", "%{VERSION}", "mattermost") == V1
