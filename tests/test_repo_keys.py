"""Key rotation without outages: the keyring package, a new key, the switch, the old key retired.

Real apt in throw-away roots follows each step from the served tree; a client that never got
the new keyring package is refused by apt itself.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mmpkg.build.templates import data_dir
from mmpkg.errors import RepoError
from mmpkg.repo import Repository, keyring, publish
from mmpkg.repo.clients import ClientFormat, client_config
from mmpkg.repo.keys import KeyInfo, KeySet, describe
from mmpkg.repo.packages import inspect
from mmpkg.repo.signing import Signer
from tests.support import harness
from tests.support import minimal_packages as minimal
from tests.support.cli_runner import runner
from tests.support.packages import PackageFactory
from tests.test_repo import KEYRING, TOOLS, V1, V2, _apt_client, _Handler, _serve, tree_hash
from tests.test_repo_pool import _dnf

A, B, SOON = "key-a@example.invalid", "key-b@example.invalid", "key-soon@example.invalid"
CONF_OLD = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")


def _gen(home: Path, email: str, expire: str = "0") -> str:
    params = (
        "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
        f"Name-Real: Repo {email[4]}\nName-Email: {email}\nExpire-Date: {expire}\n%commit\n"
    )
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--gen-key"], input=params, text=True, env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys", email],
        env=env,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


@pytest.fixture(scope="module")
def gnupghome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Keys A and B, and one that expires in 30 days; their fingerprints by e-mail."""
    harness.require(*TOOLS, root=False)
    home = tmp_path_factory.mktemp("gnupg-keys")
    home.chmod(0o700)
    return home, {email: _gen(home, email, "30d" if email == SOON else "0") for email in (A, B, SOON)}


def _fingerprints_in(keyring_file: Path) -> set[str]:
    """What gpg itself reads in a keyring file."""
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys", str(keyring_file)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {line.split(":")[9] for line in out.splitlines() if line.startswith("fpr")}


def test_keyring_package_builds_and_lints(gnupghome: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    harness.require("lintian", "rpmlint", root=False)
    home, fprs = gnupghome
    repo = Repository(tmp_path / "repo", gnupghome=home)
    repo.add([], "stable", A)
    repo.add_key(B, sign_key=A)
    assert repo.check() == []
    deb = next((repo.path / "pool/main/m").glob("*/mattermost-archive-keyring_2-2_all.deb"))
    rpm = next((repo.path / "pool/main/m").glob("*/mattermost-archive-keyring-2-2.noarch.rpm"))
    # Both keys, as apt and rpm will read them.
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "x")], check=True)
    assert _fingerprints_in(tmp_path / "x" / KEYRING.lstrip("/")) == {fprs[A], fprs[B]}
    subprocess.run(f"rpm2cpio {rpm} | (cd {tmp_path / 'x'} && cpio -idm --quiet)", shell=True, check=True)
    assert _fingerprints_in(tmp_path / "x" / keyring.RPM_KEY.lstrip("/")) == {fprs[A], fprs[B]}

    lintian = subprocess.run(
        ["lintian", "-I", "--pedantic", "--display-experimental", "--tag-display-limit", "0", str(deb)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert re.findall(r"^[EWIPX]: ", lintian.stdout, re.MULTILINE) == [], lintian.stdout
    rpmlint = subprocess.run(
        ["rpmlint", "-c", str(data_dir() / "rpm/keyring-rpmlintrc.toml"), str(rpm)],
        capture_output=True,
        text=True,
    )
    assert re.findall(r"^\S+: [EW]: ", rpmlint.stdout, re.MULTILINE) == [], rpmlint.stdout


def test_refusals(gnupghome: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    home, _ = gnupghome
    repo = Repository(tmp_path / "repo", gnupghome=home)
    repo.add([], "stable", A)
    with pytest.raises(RepoError, match="is not one of the repository's keys"):
        repo.add([], "stable", B)
    with pytest.raises(RepoError, match="cannot retire"):
        repo.retire_key(A, sign_key=A)
    with pytest.raises(RepoError, match="already one of the repository's keys"):
        repo.add_key(A, sign_key=A)


def test_a_key_expiring_within_90_days_warns(
    gnupghome: tuple[Path, dict[str, str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home, fprs = gnupghome
    repo = Repository(tmp_path / "repo", gnupghome=home)
    with caplog.at_level(logging.WARNING, logger="mmpkg"):
        repo.add([], "stable", SOON)
    assert any(fprs[SOON] in r.getMessage() and "expires" in r.getMessage() for r in caplog.records)
    (info,) = repo.keys()
    assert info.fingerprint == fprs[SOON] and info.signing
    assert info.expires is not None and info.expires - datetime.now(UTC) < timedelta(days=31)


# -- rotation seen by real apt clients ---------------------------------------------------------


@pytest.fixture
def tree(gnupghome: tuple[Path, dict[str, str]], tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo", gnupghome=gnupghome[0])


@pytest.fixture
def served(tree: Repository) -> Iterator[str]:
    import functools
    import http.server
    import threading

    tree.path.mkdir(parents=True, exist_ok=True)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(tree.path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _keys(tree: Repository) -> list[KeyInfo]:
    """tree.keys(), which ruff's SIM118 would take for a dict's in a comprehension."""
    return tree.keys()


def _installed(root: harness.Root, name: str) -> str:
    return root.run("dpkg-query", "-W", "-f=${Version}", name).stdout


def _update_and_upgrade(root: harness.Root) -> None:
    root.run("apt-get", "update", "--error-on=any")
    root.run("apt-get", "upgrade", "-y", *CONF_OLD)


@pytest.mark.install
@pytest.mark.generations
def test_apt_follows_a_rotation_with_no_manual_step(
    tree: Repository,
    served: str,
    distro: harness.Distro,
    packages: PackageFactory,
    gnupghome: tuple[Path, dict[str, str]],
) -> None:
    """The keyring package installs, and apt (gpgv before Debian 13, sqv from it) follows the
    repository's keys, on each generation."""
    _, fprs = gnupghome
    v1, v2 = packages.build(V1), packages.build(V2)
    tree.add([v1.deb, v1.rpm], "stable", A)
    lower = harness.pristine_root(suite=distro.suite)
    with (
        harness.Root(lower, name="rotating", distro=distro) as client,
        harness.Root(lower, name="stale", distro=distro) as stale,
    ):
        for root in (client, stale):
            _apt_client(root, tree, served)
            root.run("apt-get", "update", "--error-on=any")
        client.apt_install("mattermost-archive-keyring", "mattermost")
        assert _installed(client, "mattermost-archive-keyring") == "1-2"

        # The next key: published in a keyring package signed by the current one.
        tree.add_key(B, sign_key=A)
        assert [(k.fingerprint, k.signing) for k in _keys(tree)] == [(fprs[A], True), (fprs[B], False)]
        assert tree.check() == []
        _update_and_upgrade(client)
        assert _installed(client, "mattermost-archive-keyring") == "2-2"
        assert _fingerprints_in(client.path(KEYRING)) == {fprs[A], fprs[B]}

        # The switch: v2 and the indices signed with B only.
        tree.add([v2.deb, v2.rpm], "stable", B)
        assert [k.signing for k in _keys(tree)] == [False, True]
        assert tree.check() == []
        _update_and_upgrade(client)
        assert _installed(client, "mattermost").startswith(f"{V2}-")

        # A client that never upgraded the keyring package trusts A alone: apt says why it stops.
        proc = stale.run("apt-get", "update", "--error-on=any", check=False)
        assert proc.returncode != 0
        said = proc.stdout + proc.stderr
        # gpgv names the key id, apt 3.0's sqv (Debian 13) the whole fingerprint.
        assert f"NO_PUBKEY {fprs[B][-16:]}" in said or f"Missing key {fprs[B]}," in said, said

        # A retired: the rpms it signed are signed again with B, and clients drop it.
        tree.retire_key(A, sign_key=B)
        assert [k.fingerprint for k in _keys(tree)] == [fprs[B]]
        assert tree.check() == []
        assert {fpr for fpr, *_ in describe(tree.export_key())} == {fprs[B]}
        _update_and_upgrade(client)
        assert _installed(client, "mattermost-archive-keyring") == "3-2"
        assert _fingerprints_in(client.path(KEYRING)) == {fprs[B]}
        client.run("apt-get", "update", "--error-on=any")


def test_the_keyring_needs_a_maintainer_user_id() -> None:
    """The signing key's user id is the keyring package's Maintainer; a bare e-mail is refused."""
    with pytest.raises(RepoError, match="not a Maintainer"):
        keyring.build(KeySet({}, "", 1), Path("/nonexistent"), maintainer="nobody@example.invalid")


# -- a keyring package the repository did not make -----------------------------------------------


def _impostors(home: Path, out: Path, version: str = "99", revision: int = 1) -> tuple[Path, Path]:
    """A deb and an rpm named like the keyring package, of a version above the repository's,
    that install another key (SOON's) where apt and dnf look for the repository's."""
    env = {**os.environ, "GNUPGHOME": str(home)}
    export = ["gpg", "--batch", "--export", SOON]
    binary = subprocess.run(export, env=env, capture_output=True, check=True).stdout
    armored = subprocess.run([*export, "--armor"], env=env, capture_output=True, check=True).stdout
    deb = minimal.deb(out, keyring.NAME, f"{version}-{revision}", arch="all", files={KEYRING: binary})
    rpm = minimal.rpm(
        out, keyring.NAME, version, str(revision), arch="noarch", files={keyring.RPM_KEY: armored}
    )
    return deb, rpm


def test_add_refuses_a_keyring_package_the_repository_did_not_make(
    gnupghome: tuple[Path, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home, _ = gnupghome
    monkeypatch.setenv("GNUPGHOME", str(home))
    mmpkg = runner(capsys)
    tree = tmp_path / "repo"
    Repository(tree, gnupghome=home).add([], "stable", A)
    before = tree_hash(tree)
    for impostor in _impostors(home, tmp_path):
        code, out, err = mmpkg("repo", "add", tree, impostor)
        assert (code, out) == (7, "")
        assert err.count("\n") == 1 and f"{keyring.NAME} 99-1 is not the repository's own" in err, err
    assert tree_hash(tree) == before
    # Its own keyring package, given again, is the same package: nothing to add.
    own = tmp_path / "own.deb"
    own.write_bytes(
        (tree / "pool/main/m/mattermost-archive-keyring/mattermost-archive-keyring_1-2_all.deb").read_bytes()
    )
    assert mmpkg("repo", "add", tree, own)[:2] == (
        0,
        "nothing added: channel stable already had every package\n",
    )


def test_check_reports_a_keyring_package_the_repository_did_not_make(
    gnupghome: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """As one added before add refused them, or copied in by hand and indexed by hand."""
    home, _ = gnupghome
    repo = Repository(tmp_path / "repo", gnupghome=home)
    repo.add([], "stable", A)
    deb, rpm = _impostors(home, tmp_path)
    signer = Signer(A, home)
    signer.check_usable()
    signer.sign_rpm(rpm)
    # Indexed as an add before the refusal indexed them: stored in the pool, then published.
    new = [inc for p in (deb, rpm) for inc in inspect(p)]
    for inc in new:
        (repo.path / inc.entry.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(inc.src, repo.path / inc.entry.path)
    with publish.locked(repo.path) as tx:
        repo._publish(tx, "stable", signer, staged={}, added=[inc.entry for inc in new], removed=[])
        tx.commit()
    assert {e.version for e in repo.list("stable") if e.name == keyring.NAME} == {"1-2", "99-1"}
    assert sorted(repo.check()) == [
        "stable: pool/main/m/mattermost-archive-keyring/mattermost-archive-keyring-99-1.noarch.rpm is not the "
        "repository's own mattermost-archive-keyring: its key sets go up to 1 (keys/keys.json)",
        "stable: pool/main/m/mattermost-archive-keyring/mattermost-archive-keyring_99-1_all.deb is not the "
        "repository's own mattermost-archive-keyring: its key sets go up to 1 (keys/keys.json)",
    ]
    for e in repo.remove(keyring.NAME, "99-1", "stable", A):
        assert e.version == "99-1"
    assert repo.check() == []


def test_check_reports_a_current_keyring_package_with_other_keys(
    gnupghome: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, _ = gnupghome
    repo = Repository(tmp_path / "repo", gnupghome=home)
    repo.add([], "stable", A)
    # The index says what the file says: the version of the one it replaces.
    deb, _ = _impostors(home, tmp_path, version="1", revision=keyring.REVISION)
    published = repo.path / "pool/main/m/mattermost-archive-keyring/mattermost-archive-keyring_1-2_all.deb"
    published.write_bytes(deb.read_bytes())
    (repo.path / ".mmpkg/stanzas/stable" / published.relative_to(repo.path)).unlink()
    repo.add([], "stable", A)  # indexes what is in the pool now
    assert repo.check() == [
        "stable: pool/main/m/mattermost-archive-keyring/mattermost-archive-keyring_1-2_all.deb does not hold the repository's "
        "keys (keys/keys.json)"
    ]


# -- the move of the deb's keyring off the path Mattermost's own repository uses ---------------


def _dpkg_owner(root: harness.Root, path: str) -> str | None:
    proc = root.run("dpkg-query", "-S", path, check=False)
    return proc.stdout.split(":")[0] if proc.returncode == 0 else None


def _upstreams_setup(root: harness.Root, key: bytes) -> None:
    """What Mattermost's own set-up does with its key (its install guide): remove the file, then
    `gpg --dearmor | tee` a new one in its place."""
    root.run("rm", "-f", keyring.LEGACY_DEB_KEYRING)
    root.path(keyring.LEGACY_DEB_KEYRING).write_bytes(key)


def _sources_for_revision_1(url: str) -> str:
    [source] = client_config(url, "stable", ClientFormat.APT)
    return source.text.replace(keyring.DEB_KEYRING, keyring.LEGACY_DEB_KEYRING)


@pytest.mark.install
def test_clients_of_the_old_keyring_path_keep_working_and_upstreams_key_is_never_touched(
    gnupghome: tuple[Path, dict[str, str]],
    pristine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Revision 1 of the deb (what earlier versions of this project published) put the keys at
    the path Mattermost's own set-up writes its key to, and client-config's sources named it.
    Revision 2 moves them; a copy stays at the old path while, and only while, it is its own."""
    home, fprs = gnupghome
    upstream = subprocess.run(
        ["gpg", "--batch", "--export", SOON],
        env={**os.environ, "GNUPGHOME": str(home)},
        capture_output=True,
        check=True,
    ).stdout
    repo = Repository(tmp_path / "repo", gnupghome=home)
    with monkeypatch.context() as old:
        old.setattr(keyring, "REVISION", 1)
        old.setattr(keyring, "DEB_KEYRING", keyring.LEGACY_DEB_KEYRING)
        old.setattr(keyring, "_DEB_SCRIPTS", ())
        repo.add([], "stable", A)
    assert {e.version for e in repo.list("stable") if e.name == keyring.NAME} == {"1-1"}
    # An already-published repository lacks the new revision until its next add makes it.
    assert repo.check() == ["stable: lacks mattermost-archive-keyring 1-2, the current key set"]
    with (
        _serve(repo.path) as url,
        harness.Root(pristine, name="keeps") as client,
        harness.Root(pristine, name="overwritten") as overwritten,
    ):
        for root in (client, overwritten):
            root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings")
            root.path(keyring.LEGACY_DEB_KEYRING).write_bytes(
                (repo.path / "keys/archive-keyring.gpg").read_bytes()
            )
            root.write_text("/etc/apt/sources.list.d/mattermost.sources", _sources_for_revision_1(url))
            root.run("apt-get", "update", "--error-on=any")
            root.apt_install(keyring.NAME)
            assert _installed(root, keyring.NAME) == "1-1"
            assert _dpkg_owner(root, keyring.LEGACY_DEB_KEYRING) == keyring.NAME

        repo.add([], "stable", A)
        assert repo.check() == []
        assert {e.version for e in repo.list("stable") if e.name == keyring.NAME} == {"1-1", "1-2"}

        # Its sources unchanged, the client upgrades: the keys move, a copy of them stays.
        _update_and_upgrade(client)
        assert _installed(client, keyring.NAME) == "1-2"
        assert _dpkg_owner(client, keyring.DEB_KEYRING) == keyring.NAME
        assert _dpkg_owner(client, keyring.LEGACY_DEB_KEYRING) is None
        assert not client.path(keyring.LEGACY_DEB_KEYRING, follow_symlinks=False).is_symlink()
        assert _fingerprints_in(client.path(keyring.LEGACY_DEB_KEYRING)) == {fprs[A]}
        client.run("apt-get", "update", "--error-on=any")

        # A rotation reaches the copy too.
        repo.add_key(B, sign_key=A)
        _update_and_upgrade(client)
        assert _installed(client, keyring.NAME) == "2-2"
        assert _fingerprints_in(client.path(keyring.LEGACY_DEB_KEYRING)) == {fprs[A], fprs[B]}

        # Then upstream's repository is set up beside this one (and this one's source is
        # written anew by client-config): the file is upstream's now, never touched again.
        _upstreams_setup(client, upstream)
        [source] = client_config(url, "stable", ClientFormat.APT)
        client.write_text(source.path, source.text)
        repo.add([], "stable", B)
        repo.retire_key(A, sign_key=B)
        _update_and_upgrade(client)
        assert _installed(client, keyring.NAME) == "3-2"
        assert client.path(keyring.LEGACY_DEB_KEYRING).read_bytes() == upstream
        client.run("apt-get", "remove", "-y", keyring.NAME)
        assert client.path(keyring.LEGACY_DEB_KEYRING).read_bytes() == upstream

        # A client whose revision-1 file upstream's set-up wrote over: dpkg would remove it with
        # the old version, but it is upstream's key now and stays.
        _upstreams_setup(overwritten, upstream)
        overwritten.path(keyring.DEB_KEYRING).write_bytes(
            (repo.path / "keys/archive-keyring.gpg").read_bytes()
        )
        overwritten.write_text(source.path, source.text)
        _update_and_upgrade(overwritten)
        assert _installed(overwritten, keyring.NAME) == "3-2"
        assert overwritten.path(keyring.LEGACY_DEB_KEYRING).read_bytes() == upstream
        assert _fingerprints_in(overwritten.path(keyring.DEB_KEYRING)) == {fprs[B]}


# ---- the signing key, as docs/hosting-a-repository.md says to make, export, extend ----

HOSTING = Path(__file__).resolve().parent.parent / "docs" / "hosting-a-repository.md"


def _shell_blocks(heading: str) -> str:
    """The ```sh blocks of one section of docs/hosting-a-repository.md, in order."""
    text = HOSTING.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return "".join(re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL))


def test_the_signing_key_section_runs_as_written(
    tmp_path: Path, packages: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its commands, run as they are written (paths aside): the key is made, exported, signs the
    first add, and its extended expiry reaches a new keyring package."""
    harness.require(*TOOLS, root=False)
    built = packages.build(V1)
    script = _shell_blocks("The signing key")
    assert "gpg --batch --gen-key" in script and "mmpkg repo add-key" in script
    for doc, here in (
        ("/secure/mmpkg-gnupg", str(tmp_path / "gnupg")),
        ("/srv/mattermost", str(tmp_path / "repo")),
        ("dist/*.deb dist/*.rpm", f"{built.deb} {built.rpm}"),
    ):
        assert doc in script
        script = script.replace(doc, here)
    shim = tmp_path / "bin" / "mmpkg"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m mmpkg "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(HOSTING.parent.parent),
    }
    env.pop("MMPKG_SIGN_KEY", None)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "repo-signing-key.asc").read_text().startswith("-----BEGIN PGP PRIVATE KEY BLOCK-----")
    repo = Repository(tmp_path / "repo", gnupghome=tmp_path / "gnupg")
    (key,) = repo.keys()
    assert key.signing and key.uid == "Example Mattermost packages <repo@example.com>"
    assert key.expires is not None and key.expires - key.created > timedelta(days=3 * 365)
    # The first add's keyring package, and the extension's.
    versions = sorted(e.version for e in repo.list("stable") if e.name == keyring.NAME and e.format == "deb")
    assert versions == ["1-2", "2-2"]
    assert repo.check() == []
    # The same expiry again is no change.
    code, _, err = runner_in(tmp_path / "gnupg")("repo", "add-key", tmp_path / "repo", key.fingerprint)
    assert code == 7 and "with the same expiry" in err, err
    # CI's home, from the export: it signs the next add.
    ci = tmp_path / "ci"
    ci.mkdir(mode=0o700)
    subprocess.run(
        ["gpg", "--batch", "--import", str(tmp_path / "repo-signing-key.asc")],
        env={**os.environ, "GNUPGHOME": str(ci)}, check=True, capture_output=True,
    )  # fmt: skip
    code, _, err = runner_in(ci)("repo", "add", tmp_path / "repo", packages.build(V2).deb)
    assert code == 0, err


def runner_in(home: Path) -> Callable[..., tuple[int, str, str]]:
    """`mmpkg ARGS...` in a process of its own, with `home` as its GnuPG home."""

    def call(*args: object) -> tuple[int, str, str]:
        env = {**os.environ, "GNUPGHOME": str(home)}
        proc = subprocess.run(
            [sys.executable, "-m", "mmpkg", *map(str, args)], env=env, capture_output=True, text=True
        )
        return proc.returncode, proc.stdout, proc.stderr

    return call


def _protected_key(home: Path, email: str, passphrase: str) -> str:
    home.mkdir(mode=0o700)
    params = (
        f"Key-Type: RSA\nKey-Length: 3072\nKey-Usage: sign\nName-Real: Protected\nName-Email: {email}\n"
        f"Expire-Date: 0\nPassphrase: {passphrase}\n%commit\n"
    )
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--gen-key"], input=params, text=True, env=env, check=True, capture_output=True
    )
    (home / "gpg-agent.conf").write_text("allow-preset-passphrase\n")
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=True)
    return email


def test_a_key_that_cannot_sign_is_refused_and_its_probe_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpg deletes its output file when it cannot sign: the probe writes a file of its own, so
    that run as root it cannot delete /dev/null (here a stand-in for it)."""
    harness.require("gpg", "gpgconf", root=False)
    home = tmp_path / "gnupg"
    key = _protected_key(home, "protected@example.invalid", "s3cret")
    stand_in = tmp_path / "devnull"
    stand_in.write_bytes(b"")
    monkeypatch.setattr(os, "devnull", str(stand_in))
    with pytest.raises(RepoError, match=r"cannot sign in .*gpg-preset-passphrase"):
        Signer(key, home).check_usable()
    assert stand_in.exists()


def test_a_key_with_a_passphrase_signs_once_the_agent_has_it(
    tmp_path: Path, packages: PackageFactory
) -> None:
    """As the CI templates give it: allow-preset-passphrase, then gpg-preset-passphrase."""
    harness.require(*TOOLS, "gpgconf", root=False)
    preset = Path("/usr/lib/gnupg/gpg-preset-passphrase")
    if not preset.exists():
        harness.require("gpg-preset-passphrase", root=False)
    home = tmp_path / "gnupg"
    key = _protected_key(home, "protected@example.invalid", "s3cret")
    mmpkg = runner_in(home)
    built = packages.build(V1)
    code, _, err = mmpkg("repo", "add", tmp_path / "repo", built.rpm, "--sign-key", key)
    assert code == 7 and "cannot sign" in err
    env = {**os.environ, "GNUPGHOME": str(home)}
    grips = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--with-keygrip", "-K"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for grip in [line.split(":")[9] for line in grips.splitlines() if line.startswith("grp")]:
        subprocess.run([str(preset), "--preset", "--passphrase", "s3cret", grip], env=env, check=True)
    code, _, err = mmpkg("repo", "add", tmp_path / "repo", built.deb, built.rpm, "--sign-key", key)
    assert code == 0, err
    assert Repository(tmp_path / "repo", gnupghome=home).check() == []


# ---- retirement in the shared pool: each stored rpm signed again once ----


@pytest.mark.install
def test_retire_key_signs_a_shared_rpm_once_and_dnf_of_both_channels_verifies_it(
    gnupghome: tuple[Path, dict[str, str]],
    tmp_path: Path,
    packages: PackageFactory,
    root: harness.Root,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness.require(*harness.DNF_TOOLS)
    home, _ = gnupghome
    repo = Repository(tmp_path / "repo", gnupghome=home)
    v1 = packages.build(V1)
    for channel in ("stable", "esr"):
        repo.add([v1.deb, v1.rpm], channel, A)
    repo.add_key(B, sign_key=A)
    stored = sorted({e.path for c in ("stable", "esr") for e in repo.list(c) if e.format == "rpm"})
    assert len(stored) == 3  # the release's rpm and the noarch keyring rpms of key sets 1 and 2
    resigned: list[str] = []
    sign_rpm = Signer.sign_rpm

    def counted(self: Signer, rpm: Path, *, resign: bool = False) -> None:
        if resign:
            resigned.append(rpm.name.split("-", 1)[1])
        sign_rpm(self, rpm, resign=resign)

    monkeypatch.setattr(Signer, "sign_rpm", counted)
    repo.retire_key(A, sign_key=B)
    assert sorted(resigned) == sorted(p.name for p in stored)
    assert repo.check() == []
    with _serve(repo.path) as url:
        _dnf(root, repo, url, "stable", "install", "mattermost")
        assert root.rpm_query("--qf", "%{VERSION}", "mattermost") == V1
        out = _dnf(root, repo, url, "esr", "reinstall", "mattermost")
        assert "Complete!" in out, out
