"""`Repository`: one static tree that is a signed apt repository and a signed dnf repository.

    pool/CHANNEL/NAME_VERSION_ARCH.deb          dists/CHANNEL/{InRelease,Release,Release.gpg}
    dists/CHANNEL/main/binary-{amd64,arm64}/    rpm/CHANNEL/{x86_64,aarch64}/{Packages,repodata}/
    keys/                                       the public keys clients trust (keys.py)
    .mmpkg/                                     private: lock, journal, staging, stanza cache

Every channel also carries the mattermost-archive-keyring package of the current key set
(keyring.py), which is how clients learn of a new key before it signs, and the transitional
mattermost-omnibus deb (mmpkg/build/omnibus.py), which is how a mattermost-omnibus server moves to the
mattermost package with nothing left behind that could undo the move.

Every change validates all its inputs first, so a refused `add` leaves the tree as it was, and
is published all-or-nothing (journal.py, publish.py). `.mmpkg/` need not be served (and should
not be: it is the publisher's state, not the clients').
"""

from __future__ import annotations

import builtins
import errno
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from mmpkg.backends import deb as deb_backend
from mmpkg.build import omnibus
from mmpkg.build.workspace import free_bytes
from mmpkg.errors import CommandError, RepoError, UsageError, no_space, out_of_space
from mmpkg.packaging.version_order import PackageVersion
from mmpkg.repo import apt, dnf, journal, keyring, keys, publish, retention
from mmpkg.repo.journal import Transaction
from mmpkg.repo.keys import KeyInfo, KeySet
from mmpkg.repo.listing import ordered
from mmpkg.repo.packages import CHANNEL, AddResult, Entries, Entry, Incoming, check_channel, identity, inspect
from mmpkg.repo.signing import Signer

log = logging.getLogger("mmpkg")

Staged = list[tuple[Path, Path]]  # (staged copy in .mmpkg/tmp, where it goes in the tree)
P = ParamSpec("P")
R = TypeVar("R")


def _disk_errors(method: Callable[Concatenate[Repository, P], R]) -> Callable[Concatenate[Repository, P], R]:
    """A full disk, wherever it strikes in `method` (our writes, or
    gpg, rpmsign, createrepo_c, dpkg-deb, ... writing), is an OutputError: exit 6 and one line,
    not a traceback or a tool's failure. A change stops before its commit point, so the served
    tree is the old one, and what it had staged is gone (publish.locked)."""

    @functools.wraps(method)
    def wrapper(self: Repository, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            # Only a full disk: a package that cannot be read is no output's fault.
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # A copy's error names its source first (shutil), the file written second.
            raise no_space(self._full(str(exc.filename2 or ""), str(exc.filename or "")), hint="") from exc
        except CommandError as exc:
            if not out_of_space(exc):
                raise
            raise no_space(self._full(exc.output), str(exc), hint="") from exc

    return wrapper


class Repository:
    def __init__(self, path: Path, *, gnupghome: Path | None = None) -> None:
        self.path = Path(path).resolve()
        home = gnupghome or os.environ.get("GNUPGHOME") or Path.home() / ".gnupg"
        self.gnupghome = Path(home)

    # -- changes ----------------------------------------------------------------------------

    @_disk_errors
    def add(self, packages: list[Path], channel: str, sign_key: str, *, keep: int | None = None) -> AddResult:
        """Publish `packages` in `channel`, signed with `sign_key`, one of the repository's keys
        (the first `add` makes it the first), keeping the newest `keep` versions and the upgrade
        path's stops (retention.py); return what came and what went. A `keep` given is stored
        for the channel; without one, the channel's stored one, else retention.KEEP."""
        check_channel(channel)
        if keep is not None:
            retention.check_keep(keep)
        signer = self._signer(sign_key)
        incoming = [inc for p in packages for inc in inspect(p, channel)]
        with publish.locked(self.path) as tx:
            keyset = self._current(signer, first=True)
            keys.warn_expiring(keys.infos(keyset))
            self._refuse_other_keyrings(incoming)
            kept = keep if keep is not None else retention.stored(tx.state).get(channel, retention.KEEP)
            if keep is not None:
                tx.state.setdefault(retention.STATE_KEY, {})[channel] = keep
            new, pruned, dropped = self._retained(self._new(incoming, channel), channel, kept)
            new += self._new(self._keyring(keyset, channel, tx), channel)
            new += self._new(self._transitional(keyset, channel, tx), channel)
            staged = self._stage(tx, new, signer)
            keys.stage(tx, keyset)
            gone = [self.path / e.path for e in pruned if (self.path / e.path).exists()]
            self._publish(tx, channel, signer, added=staged, removed=gone)
            tx.commit()
        return AddResult(added=[inc.entry for inc in new], pruned=pruned, keep=kept, dropped=dropped)

    def preview_add(self, packages: list[Path], channel: str, *, keep: int | None = None) -> AddResult:
        """What add() would publish of `packages` and what retention would withdraw, changing
        nothing (`repo add --dry-run`): the packages are read and checked as add() checks them,
        but no key is needed, no lock is taken and nothing is written, not even a `keep` given.
        The repository's own keyring and transitional packages, which add() makes when a
        channel lacks them, are left out."""
        check_channel(channel)
        if keep is not None:
            retention.check_keep(keep)
        # What add() would find making the tree, said without making it.
        above = next(p for p in (self.path, *self.path.parents) if p.exists())
        if not above.is_dir():
            raise UsageError(f"repository {self.path}: {above} is not a directory; choose another directory")
        incoming = [inc for p in packages for inc in inspect(p, channel)]
        self._refuse_other_keyrings(incoming)
        kept = self.keep(channel, keep)
        new, pruned, dropped = self._retained(self._new(incoming, channel), channel, kept)
        return AddResult(added=[inc.entry for inc in new], pruned=pruned, keep=kept, dropped=dropped)

    def set_keep(self, channel: str, keep: int) -> None:
        """Store `keep` for `channel`, as an add with --keep does; retention applies it at the
        channel's next add (pruning then, with the indices that add signs)."""
        check_channel(channel)
        retention.check_keep(keep)
        self.check_known(channel)
        with publish.locked(self.path) as tx:
            tx.state.setdefault(retention.STATE_KEY, {})[channel] = keep
            tx.commit()

    @_disk_errors
    def remove(self, name: str, version: str, channel: str, sign_key: str) -> Entries:
        """Withdraw every file of `name` `version` from `channel`; return what went."""
        check_channel(channel)
        signer = self._signer(sign_key)
        with publish.locked(self.path) as tx:
            keyset = self._current(signer)
            self.check_known(channel)
            listed = self.list(channel)
            gone = [e for e in listed if e.name == name and e.version == version]
            if not gone:
                raise RepoError(
                    f"{name} {version} is not published in {channel}{_hint(listed, name, version)}"
                )
            keys.stage(tx, keyset)
            self._publish(tx, channel, signer, added=[], removed=[self.path / e.path for e in gone])
            tx.commit()
        return gone

    @_disk_errors
    def add_key(self, new_key: str | Path, sign_key: str) -> builtins.list[KeyInfo]:
        """Make `new_key` (an armoured public key file, or a key in the GnuPG home) one of the
        repository's keys: every channel gets a keyring package holding it, signed with
        `sign_key`, a current key. Sign with the new key once clients have upgraded that package.

        A current key given again with another expiry (extended with `gpg --quick-set-expire`)
        replaces the repository's copy in the same way: clients check signatures against the
        keys the keyring package gave them, so an extension reaches them only in a new one."""
        signer = self._signer(sign_key)
        armoured = (
            new_key.read_text() if isinstance(new_key, Path) else Signer(new_key, self.gnupghome).export()
        )
        described = keys.describe(armoured)
        if len(described) != 1:
            raise RepoError(f"{new_key} holds {len(described)} public keys, not one")
        fpr = described[0][0]
        with publish.locked(self.path) as tx:
            keyset = self._current(signer)
            if fpr in keyset.keys and keys.describe(keyset.keys[fpr])[0][3] == described[0][3]:
                raise RepoError(
                    f"key {fpr} is already one of the repository's keys, with the same expiry: to publish "
                    "a later one, extend it first (gpg --quick-set-expire)"
                )
            changed = KeySet({**keyset.keys, fpr: armoured}, keyset.signing, keyset.version + 1)
            self._republish(tx, changed, signer, resign=False)
        return self.keys()

    @_disk_errors
    def retire_key(self, old_key: str, sign_key: str) -> builtins.list[KeyInfo]:
        """Drop `old_key` (a fingerprint, or a user id, of a current key) from the repository:
        rpms it signed are signed again with `sign_key`, which must be another current key,
        and every channel gets a keyring package without it."""
        signer = self._signer(sign_key)
        with publish.locked(self.path) as tx:
            keyset = self._current(signer)
            fpr = self._find(keyset, old_key)
            if fpr == signer.fingerprint:
                raise RepoError(f"cannot retire {fpr} and sign with it: sign with the next key")
            remaining = {k: v for k, v in keyset.keys.items() if k != fpr}
            self._republish(
                tx, KeySet(remaining, signer.fingerprint, keyset.version + 1), signer, resign=True
            )
        return self.keys()

    # -- the parts of a change ----------------------------------------------------------------

    def _retained(
        self, new: builtins.list[Incoming], channel: str, keep: int
    ) -> tuple[builtins.list[Incoming], Entries, Entries]:
        """Of `new`, what retention keeps; what it prunes of the channel with them; and which of
        `new` it drops at once: a new file retention would drop (an old version that no kept
        one needs) is not published at all. Retention looks at the channel as it will be. The
        keyring package is not a Mattermost version: apt and dnf take its newest."""
        servers = [e for e in [*self.list(channel), *(i.entry for i in new)] if e.name != keyring.NAME]
        pruned = retention.to_prune(servers, keep)
        dropped = [inc.entry for inc in new if inc.entry in pruned]
        return [inc for inc in new if inc.entry not in pruned], pruned, dropped

    def _full(self, *said: str) -> Path:
        """Which file system ran out of room, from the paths the failure `said`: the tree's, or
        $TMPDIR's (throw-away GnuPG homes); when it names neither, the one with less room. The
        tree is asked first: it may lie inside $TMPDIR, and a package read from there is no
        sign that $TMPDIR is full."""
        tmp = Path(tempfile.gettempdir()).resolve()
        for where in (self.path, tmp):
            if any(text == str(where) or f"{where}/" in text for text in said):
                return where
        return tmp if self.path.exists() and free_bytes(tmp) < free_bytes(self.path) else self.path

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

    def _refuse_other_keyrings(self, incoming: builtins.list[Incoming]) -> None:
        """Clients take the newest keyring package and trust the keys it holds: the repository
        makes that package itself, from its keys (add_key, retire_key). One it published, given
        again, is no change; any other is refused. So is any mattermost-omnibus: the repository
        makes its own, and upstream's would bring back the scripts it replaces."""
        hidden = publish.withdrawn(self.path)
        for inc in incoming:
            if inc.entry.name == omnibus.NAME:
                raise RepoError(
                    f"{inc.src}: every channel carries the repository's own {omnibus.NAME} "
                    f"{omnibus.FULL_VERSION}, a transitional package; no other is published"
                )
            if inc.entry.name != keyring.NAME:
                continue
            published = (self.path / inc.entry.path).exists() and str(inc.entry.path) not in hidden
            if not published or identity(self.path, inc.entry) != inc.identity:
                raise RepoError(
                    f"{inc.src}: {keyring.NAME} {inc.entry.version} is not the repository's own: it makes "
                    "that package from its keys (mmpkg repo add-key, retire-key)"
                )

    def _new(self, incoming: builtins.list[Incoming], channel: str) -> builtins.list[Incoming]:
        """What of `incoming` is not yet published (a withdrawn file may come back); refuses other
        contents under a taken name."""
        hidden = publish.withdrawn(self.path)
        new = []
        for inc in incoming:
            if (self.path / inc.entry.path).exists() and str(inc.entry.path) not in hidden:
                if identity(self.path, inc.entry) != inc.identity:
                    raise RepoError(
                        f"{inc.src}: {inc.entry.name} {inc.entry.version} ({inc.entry.arch}) is already "
                        f"published in {channel} with different contents"
                    )
                continue
            new.append(inc)
        return new

    def _keyring(self, keyset: KeySet, channel: str, tx: Transaction) -> builtins.list[Incoming]:
        """The keyring packages of `keyset` for `channel`, built into staging if it lacks them."""
        version = keyring.version(keyset)
        built = [e for e in self.list(channel) if e.name == keyring.NAME and e.version == version]
        if len(built) == 1 + len(dnf.ARCHES):
            return []
        uid = next(k.uid for k in keys.infos(keyset) if k.fingerprint == keyset.signing)
        out = tx.path(f"keyring-{channel}")
        out.mkdir()
        return [inc for p in keyring.build(keyset, out, maintainer=uid) for inc in inspect(p, channel)]

    def _transitional(self, keyset: KeySet, channel: str, tx: Transaction) -> builtins.list[Incoming]:
        """The transitional mattermost-omnibus deb for `channel`, built into staging if it lacks it."""
        if any(e.name == omnibus.NAME and e.version == omnibus.FULL_VERSION for e in self.list(channel)):
            return []
        uid = next(k.uid for k in keys.infos(keyset) if k.fingerprint == keyset.signing)
        out = tx.path(f"transitional-{channel}")
        out.mkdir()
        pkg = omnibus.package(maintainer=uid)
        deb_backend.stage_package(pkg, out / "root")
        return inspect(deb_backend.build_package(pkg, out / "root", out), channel)

    def _stage(self, tx: Transaction, new: builtins.list[Incoming], signer: Signer) -> Staged:
        """A copy of each of `new` in staging, an rpm signed, for the commit to move into place."""
        staged = []
        for inc in new:
            log.info("staging %s", inc.entry.path)
            copy = tx.path(inc.entry.path.name)
            shutil.copyfile(inc.src, copy)
            if inc.entry.format == "rpm":
                signer.sign_rpm(copy)
            copy.chmod(0o644)
            staged.append((copy, self.path / inc.entry.path))
        return staged

    def _republish(self, tx: Transaction, keyset: KeySet, signer: Signer, *, resign: bool) -> None:
        """Every channel with the keyring package of the changed `keyset`, and its indices, in one
        commit; with `resign`, every rpm signed again by `signer` (a key is being retired)."""
        keys.stage(tx, keyset)
        hidden = publish.withdrawn(self.path)
        for channel in self.channels():
            staged = self._stage(tx, self._new(self._keyring(keyset, channel, tx), channel), signer)
            if resign:
                for rpm in sorted(self.path.glob(f"rpm/{channel}/*/Packages/*.rpm")):
                    if str(rpm.relative_to(self.path)) not in hidden:
                        copy = tx.path(rpm.name)
                        shutil.copyfile(rpm, copy)
                        signer.sign_rpm(copy, resign=True)
                        staged.append((copy, rpm))
            self._publish(tx, channel, signer, added=staged, removed=[])
        tx.commit()

    def _publish(
        self, tx: Transaction, channel: str, signer: Signer, *, added: Staged, removed: builtins.list[Path]
    ) -> None:
        """Stage the indices of `channel` with `added` and without `removed`: the commit moves new
        packages first, the indices after, expired files last."""
        for copy, dest in added:
            tx.move(copy, dest)
        readded = [dest for _, dest in added]
        unlisted = [self.path / p for p in publish.withdrawn(self.path)]
        unlisted = [p for p in unlisted if p not in readded] + removed
        publish.withdraw(tx, channel, removed, readded)
        log.info("indexing and signing dists/%s", channel)
        apt.prepare_suite(tx, channel, signer, added=added, removed=unlisted)
        for arch in dnf.ARCHES:
            log.info("indexing and signing rpm/%s/%s", channel, arch)
            dnf.prepare_arch(tx, channel, arch, signer, added=added, removed=unlisted)

    # -- reading ----------------------------------------------------------------------------

    def list(self, channel: str) -> Entries:
        """Every package file in `channel`, by name and architecture, newest first."""
        check_channel(channel)
        found: list[Entry] = []
        hidden = publish.withdrawn(self.path)
        pool = self.path / "pool" / channel
        # A file not named as add names it is no package of the channel (check reports it).
        for deb in sorted(pool.glob("*_*_*.deb")) if pool.is_dir() else []:
            if str(deb.relative_to(self.path)) in hidden:
                continue
            parts = deb.stem.split("_")
            if len(parts) == 3:
                name, version, arch = parts
                found.append(
                    Entry(name, version.replace("%3a", ":"), arch, "deb", deb.relative_to(self.path))
                )
        for arch in dnf.ARCHES:
            for rpm in sorted((self.path / "rpm" / channel / arch / "Packages").glob("*-*-*.*.rpm")):
                if str(rpm.relative_to(self.path)) in hidden:
                    continue
                stem, own_arch, _ = rpm.name.rsplit(".", 2)
                name, version, release = stem.rsplit("-", 2)
                found.append(Entry(name, f"{version}-{release}", own_arch, "rpm", rpm.relative_to(self.path)))
        return ordered(found)

    def keeps(self) -> dict[str, int]:
        """Each channel's stored --keep: the last one an add, a sync or `repo config` gave it."""
        return retention.stored(journal.read_state(self.path))

    def keep(self, channel: str, given: int | None = None) -> int:
        """How many versions retention keeps in `channel`: `given`, else the stored one, else
        retention.KEEP."""
        return given if given is not None else self.keeps().get(channel, retention.KEEP)

    def check_known(self, channel: str) -> None:
        """Refuse a channel the repository does not have, naming those it has: a reading command
        would otherwise show an empty channel, as if it had been emptied."""
        channels = self.channels()
        if channel not in channels:
            have = f"its channels are {', '.join(channels)}" if channels else "it has none yet"
            raise RepoError(f"{self.path} has no channel {channel!r}: {have}")

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

    @_disk_errors
    def check(self) -> builtins.list[str]:
        """Every problem found: missing or wrong files, bad signatures, unsigned or unindexed packages."""
        from mmpkg.repo.check import problems

        return problems(self)


def _hint(listed: Entries, name: str, version: str) -> str:
    """What the user may have meant by `name` `version`: the published revisions of that upstream
    version ("10.11.4" or "10.11.4-2" for 10.11.4-1; "11.0.0-rc1", upstream's spelling, for
    11.0.0~rc1-1), or, for a name the channel lacks, the names it has."""
    names = sorted({e.name for e in listed})
    if name not in names:
        return f"; its packages are {', '.join(names)}" if names else "; it is empty"
    upstream = version.replace("-rc", "~rc")
    if "-" in upstream:
        upstream = upstream.rpartition("-")[0]
    revisions = sorted(
        {e.version for e in listed if e.name == name and e.version.rpartition("-")[0] == upstream},
        key=lambda v: PackageVersion("deb", v),
    )
    return f"; did you mean {' or '.join(revisions)}?" if revisions else ""
