"""`Repository`: one static tree that is a signed apt repository and a signed dnf repository.

    pool/CHANNEL/NAME_VERSION_ARCH.deb          dists/CHANNEL/{InRelease,Release,Release.gpg}
    dists/CHANNEL/main/binary-{amd64,arm64}/    rpm/CHANNEL/{x86_64,aarch64}/{Packages,repodata}/
    keys/                                       (the public keys clients trust: keys.py)

Every channel also carries the mattermost-archive-keyring package of the current key set
(keyring.py), which is how clients learn of a new key before it signs.

Every change validates all its inputs first, so a refused `add` leaves the tree as it was.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mmpkg.errors import CommandError, RepoError
from mmpkg.repo import apt, client, dnf, keyring, keys, publish
from mmpkg.repo.keys import KeyInfo, KeySet
from mmpkg.repo.signing import Signer
from mmpkg.run import run

NAMES = ("mattermost", "mattermost-team", keyring.NAME)
CHANNEL = re.compile(r"[a-z][a-z0-9]{0,31}")
DEB_TO_RPM_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
# Architecture-independent packages: a noarch rpm is published in every architecture's repository.
ANY_ARCH = ("all", "noarch")


@dataclass(frozen=True)
class Entry:
    """One package file in a channel."""

    name: str
    version: str
    arch: str
    format: str
    path: Path


Entries = list[Entry]


@dataclass(frozen=True)
class _Incoming:
    src: Path
    entry: Entry  # path is where it will live, relative to the tree
    identity: str  # sha256 of a deb; header digest of an rpm (unchanged by signing)


def check_channel(channel: str) -> None:
    if not CHANNEL.fullmatch(channel):
        raise RepoError(f"bad channel name {channel!r}: use one lower-case word such as stable, esr or rc")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _version_key(version: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.~+-]", version))


class Repository:
    def __init__(self, path: Path, *, gnupghome: Path | None = None) -> None:
        self.path = Path(path).resolve()
        home = gnupghome or os.environ.get("GNUPGHOME") or Path.home() / ".gnupg"
        self.gnupghome = Path(home)

    # -- inspection -------------------------------------------------------------------------

    def _inspect(self, pkg: Path, channel: str) -> list[_Incoming]:
        pkg = Path(pkg)
        if not pkg.is_file():
            raise RepoError(f"{pkg} is not a file")
        try:
            if pkg.suffix == ".deb":
                out = run(
                    [
                        "dpkg-deb",
                        "--showformat",
                        "${Package}\t${Version}\t${Architecture}",
                        "--show",
                        str(pkg),
                    ]
                )
                name, version, arch = out.stdout.strip().split("\t")
                rel = Path("pool") / channel / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
                entries, ident = [Entry(name, version, arch, "deb", rel)], _sha256(pkg)
            elif pkg.suffix == ".rpm":
                qf = "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SHA256HEADER}"
                out = run(["rpm", "-qp", "--nosignature", "--qf", qf, str(pkg)])
                name, version, arch, ident = out.stdout.strip().split("\t")
                dirs = dnf.ARCHES if arch == "noarch" else (arch,)
                rels = [Path("rpm") / channel / d / "Packages" / f"{name}-{version}.{arch}.rpm" for d in dirs]
                entries = [Entry(name, version, arch, "rpm", rel) for rel in rels]
            else:
                raise RepoError(f"{pkg} is not a .deb or .rpm package")
        except (CommandError, ValueError) as exc:
            raise RepoError(f"{pkg} is not a readable package") from exc
        if name not in NAMES:
            raise RepoError(f"{pkg}: package {name!r} is not {' or '.join(NAMES)}")
        if arch not in (*apt.ARCHES, *dnf.ARCHES, *ANY_ARCH):
            raise RepoError(f"{pkg}: architecture {arch!r} is not published")
        return [_Incoming(pkg, entry, ident) for entry in entries]

    def _identity(self, entry: Entry) -> str:
        if entry.format == "deb":
            return _sha256(self.path / entry.path)
        qf = "%{SHA256HEADER}"
        return run(["rpm", "-qp", "--nosignature", "--qf", qf, str(self.path / entry.path)]).stdout.strip()

    # -- changes ----------------------------------------------------------------------------

    def add(self, packages: list[Path], channel: str, sign_key: str) -> Entries:
        """Publish `packages` in `channel`, signed with `sign_key`, one of the repository's
        keys (the first `add` makes it the first); return what was new."""
        check_channel(channel)
        signer = self._signer(sign_key)
        incoming = [inc for p in packages for inc in self._inspect(p, channel)]
        with publish.locked(self.path):
            keyset = self._current(signer, first=True)
            new = self._new(incoming, channel)
            with tempfile.TemporaryDirectory(prefix=".mmpkg-add-", dir=self.path) as tmp:
                new += self._new(self._keyring(keyset, channel, Path(tmp)), channel)
                self._store(new, signer, Path(tmp))
            self._publish(channel, signer, keyset)
        return [inc.entry for inc in new]

    def remove(self, name: str, version: str, channel: str, sign_key: str) -> Entries:
        """Withdraw every file of `name` `version` from `channel`; return what went."""
        check_channel(channel)
        signer = self._signer(sign_key)
        with publish.locked(self.path):
            keyset = self._current(signer)
            gone = [e for e in self.list(channel) if e.name == name and e.version == version]
            if not gone:
                raise RepoError(f"{name} {version} is not published in {channel}")
            for e in gone:
                (self.path / e.path).unlink()
            self._publish(channel, signer, keyset)
        return gone

    def add_key(self, new_key: str | Path, sign_key: str) -> builtins.list[KeyInfo]:
        """Make `new_key` (an armoured public key file, or a key in the GnuPG home) one of the
        repository's keys: every channel gets a keyring package holding it, signed with
        `sign_key`, a current key. Sign with the new key once clients have upgraded that package."""
        signer = self._signer(sign_key)
        if isinstance(new_key, Path):
            armoured = new_key.read_text()
        else:
            armoured = Signer(new_key, self.gnupghome).export()
        described = keys.describe(armoured)
        if len(described) != 1:
            raise RepoError(f"{new_key} holds {len(described)} public keys, not one")
        fpr = described[0][0]
        with publish.locked(self.path):
            keyset = self._current(signer)
            if fpr in keyset.keys:
                raise RepoError(f"key {fpr} is already one of the repository's keys")
            changed = KeySet({**keyset.keys, fpr: armoured}, keyset.signing, keyset.version + 1)
            self._republish(changed, signer, resign=False)
        return self.keys()

    def retire_key(self, old_key: str, sign_key: str) -> builtins.list[KeyInfo]:
        """Drop `old_key` (a fingerprint, or a user id, of a current key) from the repository:
        rpms it signed are signed again with `sign_key`, which must be another current key,
        and every channel gets a keyring package without it."""
        signer = self._signer(sign_key)
        with publish.locked(self.path):
            keyset = self._current(signer)
            fpr = self._find(keyset, old_key)
            if fpr == signer.fingerprint:
                raise RepoError(f"cannot retire {fpr} and sign with it: sign with the next key")
            remaining = {k: v for k, v in keyset.keys.items() if k != fpr}
            self._republish(KeySet(remaining, signer.fingerprint, keyset.version + 1), signer, resign=True)
        return self.keys()

    def _signer(self, sign_key: str) -> Signer:
        signer = Signer(sign_key, self.gnupghome)
        signer.check_usable()
        return signer

    def _current(self, signer: Signer, *, first: bool = False) -> KeySet:
        """The key set, refusing a signer outside it; on the first `add`, the signer's key alone."""
        keyset = keys.load(self.path)
        if keyset is None:
            if not first:
                raise RepoError(f"{self.path} has no keys yet: add a package first")
            keyset = KeySet({signer.fingerprint: signer.export()}, signer.fingerprint, 1)
        elif signer.fingerprint not in keyset.keys:
            raise RepoError(
                f"signing key {signer.key!r} is not one of the repository's keys ({keys.KEYRING_ASC})"
            )
        return KeySet(keyset.keys, signer.fingerprint, keyset.version)

    def _find(self, keyset: KeySet, key: str) -> str:
        matches = [
            k.fingerprint
            for k in keys.infos(keyset)
            if key.upper().replace(" ", "") in (k.fingerprint, k.fingerprint[-16:], k.fingerprint[-8:])
            or key in k.uid
        ]
        if len(matches) != 1:
            raise RepoError(f"{key!r} names {len(matches)} of the repository's keys, not one")
        return matches[0]

    def _new(self, incoming: builtins.list[_Incoming], channel: str) -> builtins.list[_Incoming]:
        """What of `incoming` is not yet in the tree; refuses other contents under a taken name."""
        new = []
        for inc in incoming:
            if (self.path / inc.entry.path).exists():
                if self._identity(inc.entry) != inc.identity:
                    raise RepoError(
                        f"{inc.src}: {inc.entry.name} {inc.entry.version} ({inc.entry.arch}) is already "
                        f"published in {channel} with different contents"
                    )
                continue
            new.append(inc)
        return new

    def _keyring(self, keyset: KeySet, channel: str, tmp: Path) -> builtins.list[_Incoming]:
        """The keyring packages of `keyset` for `channel`, built into `tmp` if it lacks them."""
        version = f"{keyset.version}-1"
        built = [e for e in self.list(channel) if e.name == keyring.NAME and e.version == version]
        if len(built) == 1 + len(dnf.ARCHES):
            return []
        uid = next(k.uid for k in keys.infos(keyset) if k.fingerprint == keyset.signing)
        out = tmp / f"keyring-{channel}"
        out.mkdir()
        return [inc for p in keyring.build(keyset, out, maintainer=uid) for inc in self._inspect(p, channel)]

    def _store(self, new: builtins.list[_Incoming], signer: Signer, tmp: Path) -> None:
        """Copy (and sign, for an rpm) each of `new` beside the tree, then rename it into place."""
        staged = []
        for i, inc in enumerate(new):
            copy = tmp / f"{i}-{inc.entry.path.name}"
            shutil.copyfile(inc.src, copy)
            if inc.entry.format == "rpm":
                signer.sign_rpm(copy)
            copy.chmod(0o644)
            staged.append((copy, self.path / inc.entry.path))
        for copy, dest in staged:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(copy, dest)

    def _republish(self, keyset: KeySet, signer: Signer, *, resign: bool) -> None:
        """Every channel with the keyring package of the changed `keyset`, and its indices."""
        with tempfile.TemporaryDirectory(prefix=".mmpkg-keys-", dir=self.path) as tmp:
            if resign:
                for rpm in sorted(self.path.glob("rpm/*/*/Packages/*.rpm")):
                    copy = Path(tmp) / rpm.name
                    shutil.copyfile(rpm, copy)
                    signer.sign_rpm(copy, resign=True)
                    os.replace(copy, rpm)
            for channel in self.channels():
                self._store(self._new(self._keyring(keyset, channel, Path(tmp)), channel), signer, Path(tmp))
        for channel in self.channels():
            self._publish(channel, signer, keyset)

    def _publish(self, channel: str, signer: Signer, keyset: KeySet) -> None:
        # keys/ first: a client that fetches the new key set before the new indices still
        # trusts the signature of the old ones.
        keys.save(self.path, keyset)
        keys.warn_expiring(keys.infos(keyset))
        apt.publish_suite(self.path, channel, signer)
        for arch in dnf.ARCHES:
            dnf.publish_arch(self.path, channel, arch, signer)

    # -- reading ----------------------------------------------------------------------------

    def list(self, channel: str) -> Entries:
        """Every package file in `channel`, by name and architecture, newest first."""
        check_channel(channel)
        found: list[Entry] = []
        pool = self.path / "pool" / channel
        # A file not named as add names it is no package of the channel (check reports it).
        for deb in sorted(pool.glob("*_*_*.deb")) if pool.is_dir() else []:
            name, version, arch = deb.stem.split("_")
            found.append(Entry(name, version.replace("%3a", ":"), arch, "deb", deb.relative_to(self.path)))
        for arch in dnf.ARCHES:
            for rpm in sorted((self.path / "rpm" / channel / arch / "Packages").glob("*-*-*.*.rpm")):
                stem, own_arch, _ = rpm.name.rsplit(".", 2)
                name, version, release = stem.rsplit("-", 2)
                found.append(Entry(name, f"{version}-{release}", own_arch, "rpm", rpm.relative_to(self.path)))
        found.sort(key=lambda e: _version_key(e.version), reverse=True)
        found.sort(key=lambda e: (e.name, e.format, e.arch))
        return found

    def channels(self) -> builtins.list[str]:
        dists = self.path / "dists"
        return sorted(p.name for p in dists.iterdir() if CHANNEL.fullmatch(p.name)) if dists.is_dir() else []

    def keys(self) -> builtins.list[KeyInfo]:
        """The repository's current keys, the signing one marked; each expiring within 90 days
        is also logged as a warning."""
        keyset = keys.load(self.path)
        if keyset is None:
            return []
        found = keys.infos(keyset)
        keys.warn_expiring(found)
        return found

    def export_key(self) -> str:
        """Every current public key, armoured: what clients trust before the keyring package."""
        key_file = self.path / keys.KEYRING_ASC
        if not key_file.exists():
            raise RepoError(f"{self.path} has no key yet: add a package first")
        return key_file.read_text()

    def client_config(self, url: str, channel: str, fmt: str) -> str:
        """A deb822 .sources file (fmt "deb") or a .repo file (fmt "rpm") for `channel`."""
        check_channel(channel)
        return client.config(url, channel, fmt)

    def client_commands(self, url: str, channel: str, fmt: str) -> builtins.list[str]:
        """The shell commands a new client runs: fetch the key set, then install the keyring package."""
        check_channel(channel)
        return client.commands(url, channel, fmt)

    def check(self) -> builtins.list[str]:
        """Every problem found: missing or wrong files, bad signatures, unsigned or unindexed packages."""
        from mmpkg.repo.check import problems

        return problems(self)
