"""`Repository`: one static tree that is a signed apt repository and a signed dnf repository.

    pool/CHANNEL/NAME_VERSION_ARCH.deb          dists/CHANNEL/{InRelease,Release,Release.gpg}
    dists/CHANNEL/main/binary-{amd64,arm64}/    rpm/CHANNEL/{x86_64,aarch64}/{Packages,repodata}/
    keys/archive-key.asc                        (the public key clients trust)
    .mmpkg/                                     private: lock, journal, staging, stanza cache

Every change validates all its inputs first, so a refused `add` leaves the tree as it was, and
is published all-or-nothing (journal.py, publish.py). `.mmpkg/` need not be served (and should
not be: it is the publisher's state, not the clients').
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
from mmpkg.repo import apt, dnf, publish, retention
from mmpkg.repo.journal import Transaction
from mmpkg.repo.signing import Signer, verify
from mmpkg.run import run

NAMES = ("mattermost", "mattermost-team")
CHANNEL = re.compile(r"[a-z][a-z0-9]{0,31}")
DEB_TO_RPM_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
KEY_FILE = "keys/archive-key.asc"


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
class AddResult:
    added: Entries  # the files that were new
    pruned: Entries  # the files retention deleted (an added file among them, if it was too old)


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

    def _inspect(self, pkg: Path, channel: str) -> _Incoming:
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
                entry, ident = Entry(name, version, arch, "deb", rel), _sha256(pkg)
            elif pkg.suffix == ".rpm":
                qf = "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SHA256HEADER}"
                out = run(["rpm", "-qp", "--nosignature", "--qf", qf, str(pkg)])
                name, version, arch, ident = out.stdout.strip().split("\t")
                rel = Path("rpm") / channel / arch / "Packages" / f"{name}-{version}.{arch}.rpm"
                entry = Entry(name, version, arch, "rpm", rel)
            else:
                raise RepoError(f"{pkg} is not a .deb or .rpm package")
        except (CommandError, ValueError) as exc:
            raise RepoError(f"{pkg} is not a readable package") from exc
        if name not in NAMES:
            raise RepoError(f"{pkg}: package {name!r} is not {' or '.join(NAMES)}")
        if arch not in (*apt.ARCHES, *dnf.ARCHES):
            raise RepoError(f"{pkg}: architecture {arch!r} is not published")
        return _Incoming(pkg, entry, ident)

    def _identity(self, entry: Entry) -> str:
        if entry.format == "deb":
            return _sha256(self.path / entry.path)
        qf = "%{SHA256HEADER}"
        return run(["rpm", "-qp", "--nosignature", "--qf", qf, str(self.path / entry.path)]).stdout.strip()

    # -- changes ----------------------------------------------------------------------------

    def add(self, packages: list[Path], channel: str, sign_key: str, *, keep: int = 5) -> AddResult:
        """Publish `packages` in `channel`, signed with `sign_key`, keeping the newest `keep`
        versions and the upgrade path's stops (retention.py); return what came and went."""
        check_channel(channel)
        retention.check_keep(keep)
        signer = Signer(sign_key, self.gnupghome)
        signer.check_usable()
        incoming = [self._inspect(p, channel) for p in packages]
        with publish.locked(self.path) as tx:
            self._check_key(signer)
            new: list[_Incoming] = []
            hidden = publish.withdrawn(self.path)
            for inc in incoming:
                dest = self.path / inc.entry.path
                if dest.exists() and str(inc.entry.path) not in hidden:
                    if self._identity(inc.entry) != inc.identity:
                        raise RepoError(
                            f"{inc.src}: {inc.entry.name} {inc.entry.version} ({inc.entry.arch}) is already "
                            f"published in {channel} with different contents"
                        )
                    continue
                new.append(inc)
            # Retention looks at the channel as it will be; a new file it would drop at once
            # (an old version that no kept one needs) is not published at all.
            pruned = retention.to_prune([*self.list(channel), *(inc.entry for inc in new)], keep)
            new = [inc for inc in new if inc.entry not in pruned]
            staged = []
            for inc in new:
                copy = tx.path(inc.entry.path.name)
                shutil.copyfile(inc.src, copy)
                if inc.entry.format == "rpm":
                    signer.sign_rpm(copy)
                copy.chmod(0o644)
                staged.append((copy, self.path / inc.entry.path))
            gone = [self.path / e.path for e in pruned if (self.path / e.path).exists()]
            self._publish(tx, channel, signer, added=staged, removed=gone)
        return AddResult(added=[inc.entry for inc in new], pruned=pruned)

    def remove(self, name: str, version: str, channel: str, sign_key: str) -> Entries:
        """Withdraw every file of `name` `version` from `channel`; return what went."""
        check_channel(channel)
        signer = Signer(sign_key, self.gnupghome)
        signer.check_usable()
        with publish.locked(self.path) as tx:
            self._check_key(signer)
            gone = [e for e in self.list(channel) if e.name == name and e.version == version]
            if not gone:
                raise RepoError(f"{name} {version} is not published in {channel}")
            self._publish(tx, channel, signer, added=[], removed=[self.path / e.path for e in gone])
        return gone

    def _check_key(self, signer: Signer) -> None:
        key_file = self.path / KEY_FILE
        exported = signer.export()
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(exported)
            return
        with tempfile.TemporaryDirectory(prefix="mmpkg-probe-") as tmp:
            data, sig = Path(tmp) / "data", Path(tmp) / "data.asc"
            data.write_text("probe\n")
            signer.detach(data, sig)
            if not verify(key_file.read_text(), data, sig):
                raise RepoError(f"signing key {signer.key!r} is not the repository's key ({KEY_FILE})")

    def _publish(
        self,
        tx: Transaction,
        channel: str,
        signer: Signer,
        *,
        added: builtins.list[tuple[Path, Path]],
        removed: builtins.list[Path],
    ) -> None:
        """Stage the indices of `channel` with `added` (staged copy, destination) and without
        `removed`, then commit: new packages first, the indices after, expired files last."""
        for copy, dest in added:
            tx.move(copy, dest)
        readded = [dest for _, dest in added]
        unlisted = [self.path / p for p in publish.withdrawn(self.path)]
        unlisted = [p for p in unlisted if p not in readded] + removed
        publish.withdraw(tx, removed, readded)
        apt.prepare_suite(tx, channel, signer, added=added, removed=unlisted)
        for arch in dnf.ARCHES:
            dnf.prepare_arch(tx, channel, arch, signer, added=added, removed=unlisted)
        tx.commit()

    # -- reading ----------------------------------------------------------------------------

    def list(self, channel: str) -> Entries:
        """Every package file in `channel`, by name and architecture, newest first."""
        check_channel(channel)
        found: list[Entry] = []
        hidden = publish.withdrawn(self.path)
        pool = self.path / "pool" / channel
        for deb in sorted(pool.glob("*.deb")) if pool.is_dir() else []:
            if str(deb.relative_to(self.path)) in hidden:
                continue
            name, version, arch = deb.stem.split("_")
            found.append(Entry(name, version.replace("%3a", ":"), arch, "deb", deb.relative_to(self.path)))
        for arch in dnf.ARCHES:
            for rpm in sorted((self.path / "rpm" / channel / arch / "Packages").glob("*.rpm")):
                if str(rpm.relative_to(self.path)) in hidden:
                    continue
                stem = rpm.name.removesuffix(f".{arch}.rpm")
                name, version, release = stem.rsplit("-", 2)
                found.append(Entry(name, f"{version}-{release}", arch, "rpm", rpm.relative_to(self.path)))
        found.sort(key=lambda e: _version_key(e.version), reverse=True)
        found.sort(key=lambda e: (e.name, e.format, e.arch))
        return found

    def channels(self) -> builtins.list[str]:
        dists = self.path / "dists"
        return sorted(p.name for p in dists.iterdir() if CHANNEL.fullmatch(p.name)) if dists.is_dir() else []

    def export_key(self) -> str:
        """The armoured public key clients should trust."""
        key_file = self.path / KEY_FILE
        if not key_file.exists():
            raise RepoError(f"{self.path} has no key yet: add a package first")
        return key_file.read_text()

    def client_config(self, url: str, channel: str, fmt: str) -> str:
        """A deb822 .sources file (fmt "deb") or a .repo file (fmt "rpm") for `channel`."""
        check_channel(channel)
        url = url.rstrip("/")
        if fmt == "deb":
            return (
                f"Types: deb\nURIs: {url}\nSuites: {channel}\nComponents: {apt.COMPONENT}\n"
                f"Signed-By: /etc/apt/keyrings/mmpkg-archive-keyring.asc\n"
            )
        if fmt == "rpm":
            return (
                f"[mmpkg-{channel}]\nname=mmpkg {channel}\nbaseurl={url}/rpm/{channel}/$basearch\n"
                f"enabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey={url}/{KEY_FILE}\n"
            )
        raise RepoError(f"unknown client format {fmt!r}: use deb or rpm")

    def check(self) -> builtins.list[str]:
        """Every problem found: missing or wrong files, bad signatures, unsigned or unindexed packages."""
        from mmpkg.repo.check import problems

        return problems(self)
