"""`Repository`: one static tree that is a signed apt repository and a signed dnf repository.

    pool/main/m/NAME/{*.deb,*.rpm}              every package file, once (layout.py)
    dists/CHANNEL/{InRelease,Release,Release.gpg}, dists/CHANNEL/main/binary-{amd64,arm64}/
    rpm/CHANNEL/{x86_64,aarch64}/repodata/      a dnf repository per channel and architecture
    keys/                                       the public keys clients trust (keys.py)
    .mmpkg/                                     private: lock, journal, staging, stanza cache

A channel is what its indices list (list()), so a release published in several channels is one
file in the shared pool, which each channel's Packages and primary metadata name; it is deleted
once no channel lists it and the grace period of every channel that withdrew it is over
(publish.withdraw()). A tree from before the shared pool keeps its channels' own files
(`pool/CHANNEL/`, `rpm/CHANNEL/ARCH/Packages/`), listed where they lie, until they are withdrawn.

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
import dataclasses
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
from mmpkg.errors import CommandError, RepoError, UpstreamError, UsageError, no_space, out_of_space
from mmpkg.packaging.version_order import PackageVersion
from mmpkg.repo import apt, dnf, journal, keyring, keys, publish, retention, rings, served
from mmpkg.repo.journal import Transaction
from mmpkg.repo.keys import KeyInfo, KeySet
from mmpkg.repo.layout import is_shared
from mmpkg.repo.listing import ordered
from mmpkg.repo.packages import (
    CHANNEL,
    AddResult,
    Entries,
    Entry,
    Incoming,
    check_channel,
    identity,
    inspect,
    place,
    rpm_arches,
)
from mmpkg.repo.signing import Signer

log = logging.getLogger("mmpkg")

Staged = dict[Path, Path]  # where a file goes, relative to the tree -> its staged copy in .mmpkg/tmp
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
        incoming = [inc for p in packages for inc in inspect(p)]
        with publish.locked(self.path) as tx:
            return self._add(tx, incoming, channel, signer, keep=keep)

    def _add(
        self,
        tx: Transaction,
        incoming: builtins.list[Incoming],
        channel: str,
        signer: Signer,
        *,
        keep: int | None,
    ) -> AddResult:
        keyset = self._current(signer, first=True)
        keys.warn_expiring(keys.infos(keyset))
        self._refuse_other_keyrings(incoming)
        kept = keep if keep is not None else retention.stored(tx.state).get(channel, retention.KEEP)
        if keep is not None:
            tx.state.setdefault(retention.STATE_KEY, {})[channel] = keep
        new, pruned, dropped = self._retained(self._new(incoming, channel), channel, kept)
        new += self._new(self._keyring(keyset, channel, tx), channel)
        new += self._new(self._transitional(keyset, channel, tx), channel)
        staged = self._stage(tx, new, signer, {})
        keys.stage(tx, keyset)
        listed = {e.path for e in self.list(channel)}
        gone = [e.path for e in pruned if e.path in listed]
        self._publish(tx, channel, signer, staged=staged, added=[i.entry for i in new], removed=gone)
        tx.commit()
        return AddResult(added=[inc.entry for inc in new], pruned=pruned, keep=kept, dropped=dropped)

    @_disk_errors
    def phase(self, channel: str, percentage: int, sign_key: str) -> None:
        """Offer `channel`'s newest versions to `percentage` of apt servers from now on (100: to
        all), and sign its indices again (rings.py)."""
        check_channel(channel)
        signer = self._signer(sign_key)
        with publish.locked(self.path) as tx:
            keyset = self._current(signer)
            self.check_known(channel)
            rings.set_phased(tx.state, channel, percentage)
            keys.stage(tx, keyset)
            self._publish(tx, channel, signer, staged={}, added=[], removed=[])
            tx.commit()

    @_disk_errors
    def promote(
        self,
        version: str,
        source: str,
        target: str,
        sign_key: str | None,
        *,
        after: float | None = None,
        keep: int | None = None,
        phased: int | None = None,
        now: float | None = None,
    ) -> AddResult:
        """Publish in `target` the very files `source` lists for Mattermost `version` (upstream's
        X.Y.Z, its newest revision; or one revision, X.Y.Z-N): nothing is rebuilt or signed
        again but the indices. With `after` (seconds), refused unless the newest of those files
        entered `source` at least that long ago (rings.py). No `sign_key`: only say what would
        be promoted, as preview_add() says, changing nothing."""
        check_channel(source)
        check_channel(target)
        if source == target:
            raise RepoError(f"--from and --to are both {source}: promote from one channel to another")
        if keep is not None:
            retention.check_keep(keep)
        if sign_key is None:
            chosen = rings.chosen(self.list(source), version, source)
            rings.check_age(journal.read_state(self.path), chosen, version, source, after, now)
            return self.preview_add([self.path / e.path for e in chosen], target, keep=keep)
        signer = self._signer(sign_key)
        with publish.locked(self.path) as tx:
            self.check_known(source)
            chosen = rings.chosen(self.list(source), version, source)
            rings.check_age(tx.state, chosen, version, source, after, now)
            incoming = [inc for e in chosen for inc in inspect(self.path / e.path)]
            if phased is not None:
                rings.set_phased(tx.state, target, phased)
            return self._add(tx, incoming, target, signer, keep=keep)

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
        incoming = [inc for p in packages for inc in inspect(p)]
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
            self._publish(tx, channel, signer, staged={}, added=[], removed=[e.path for e in gone])
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
        keyrings = [e for c in self.channels() for e in self.list(c) if e.name == keyring.NAME]
        for inc in incoming:
            if inc.entry.name == omnibus.NAME:
                raise RepoError(
                    f"{inc.src}: every channel carries the repository's own {omnibus.NAME} "
                    f"{omnibus.FULL_VERSION}, a transitional package; no other is published"
                )
            if inc.entry.name != keyring.NAME:
                continue
            same = [e for e in keyrings if _key(e) == _key(inc.entry)]
            if not any(identity(self.path, e) == inc.identity for e in same):
                raise RepoError(
                    f"{inc.src}: {keyring.NAME} {inc.entry.version} is not the repository's own: it makes "
                    "that package from its keys (mmpkg repo add-key, retire-key)"
                )

    def _new(self, incoming: builtins.list[Incoming], channel: str) -> builtins.list[Incoming]:
        """What of `incoming` `channel` does not list yet, each with where its file comes from:
        a file the tree already stores with the same contents (in the shared pool, or listed by
        another channel in its own directory) is indexed or linked, not stored again. Refuses
        other contents under a name the channel, or the shared pool, already has."""
        listed = {_key(e): e for e in self.list(channel)}
        elsewhere = [e for c in self.channels() if c != channel for e in self.list(c)]
        everywhere = {e.path for e in elsewhere}
        new = []
        for inc in incoming:
            have = listed.get(_key(inc.entry))
            if have is not None:
                if identity(self.path, have) != inc.identity:
                    raise RepoError(
                        f"{inc.src}: {inc.entry.name} {inc.entry.version} ({inc.entry.arch}) is already "
                        f"published in {channel} with different contents"
                    )
                continue
            stored = self.path / inc.entry.path
            if stored.exists():
                if identity(self.path, inc.entry) == inc.identity:
                    new.append(dataclasses.replace(inc, src=stored))
                    continue
                if inc.entry.path in everywhere:
                    raise RepoError(
                        f"{inc.src}: {inc.entry.name} {inc.entry.version} ({inc.entry.arch}) is already "
                        f"published in {_channels_of(self, inc.entry.path)} with different contents"
                    )
                # Withdrawn from every channel: it may come back with other contents, as before.
            same = [e.path for e in elsewhere if _key(e) == _key(inc.entry) and not is_shared(e.path)]
            found = next((p for p in same if identity(self.path, _at(inc.entry, p)) == inc.identity), None)
            new.append(dataclasses.replace(inc, src=self.path / found) if found else inc)
        return new

    def _keyring(self, keyset: KeySet, channel: str, tx: Transaction) -> builtins.list[Incoming]:
        """The keyring packages of `keyset`, if `channel` lacks them (_keyrings())."""
        version = keyring.version(keyset)
        built = [e for e in self.list(channel) if e.name == keyring.NAME and e.version == version]
        return [] if {e.format for e in built} == {"deb", "rpm"} else self._keyrings(keyset, tx)

    def _keyrings(self, keyset: KeySet, tx: Transaction) -> builtins.list[Incoming]:
        """The keyring packages of `keyset`: those the shared pool stores (made for another
        channel: one file for all), else built into staging."""
        version = keyring.version(keyset)
        stored = [
            self.path / place(f, keyring.NAME, version, a) for f, a in (("deb", apt.ALL), ("rpm", dnf.NOARCH))
        ]
        if all(p.exists() for p in stored):
            return [inc for p in stored for inc in inspect(p)]
        uid = next(k.uid for k in keys.infos(keyset) if k.fingerprint == keyset.signing)
        out = tx.path("keyring")
        out.mkdir()
        built = [inc for p in keyring.build(keyset, out, maintainer=uid) for inc in inspect(p)]
        # One format stored and not the other (a tree copied half): the stored one stays.
        return [
            next(
                (i for p in stored if p.exists() for i in inspect(p) if i.entry.format == inc.entry.format),
                inc,
            )
            for inc in built
        ]

    def _transitional(self, keyset: KeySet, channel: str, tx: Transaction) -> builtins.list[Incoming]:
        """The transitional mattermost-omnibus deb, if `channel` lacks it: the shared pool's,
        else built into staging."""
        if any(e.name == omnibus.NAME and e.version == omnibus.FULL_VERSION for e in self.list(channel)):
            return []
        stored = self.path / place("deb", omnibus.NAME, omnibus.FULL_VERSION, apt.ALL)
        if stored.exists():
            return inspect(stored)
        uid = next(k.uid for k in keys.infos(keyset) if k.fingerprint == keyset.signing)
        out = tx.path("transitional")
        out.mkdir()
        pkg = omnibus.package(maintainer=uid)
        deb_backend.stage_package(pkg, out / "root")
        return inspect(deb_backend.build_package(pkg, out / "root", out))

    def _stage(self, tx: Transaction, new: builtins.list[Incoming], signer: Signer, staged: Staged) -> Staged:
        """Add to `staged` (and to the commit, which moves them into place) the files of `new` the
        tree does not store yet: a copy, an rpm signed; a hard link to the same contents that
        another channel lists in its own directory. One the shared pool stores is indexed as it
        is; one already in `staged` (for another channel of the same change) is not staged twice."""
        for inc in new:
            dest = self.path / inc.entry.path
            if inc.src == dest or inc.entry.path in staged:
                continue
            log.info("staging %s", inc.entry.path)
            copy = tx.path(inc.entry.path.name)
            if inc.src.is_relative_to(self.path) and not inc.src.is_relative_to(self.path / journal.PRIVATE):
                # Listed, so signed by a current key (retire_key re-signs every listed rpm).
                os.link(inc.src, copy)
            else:
                shutil.copyfile(inc.src, copy)
                if inc.entry.format == "rpm":
                    signer.sign_rpm(copy)
                copy.chmod(0o644)
            tx.move(copy, dest)
            staged[inc.entry.path] = copy
        return staged

    def _republish(self, tx: Transaction, keyset: KeySet, signer: Signer, *, resign: bool) -> None:
        """Every channel with the keyring package of the changed `keyset`, and its indices, in one
        commit; with `resign`, every rpm a channel lists signed again by `signer` (a key is being
        retired), each file once, however many channels list it."""
        keys.stage(tx, keyset)
        staged: Staged = {}
        if resign:
            for rpm in sorted({e.path for c in self.channels() for e in self.list(c) if e.format == "rpm"}):
                copy = tx.path(rpm.name)
                shutil.copyfile(self.path / rpm, copy)
                signer.sign_rpm(copy, resign=True)
                tx.move(copy, self.path / rpm)
                staged[rpm] = copy
        packages = self._keyrings(keyset, tx)
        for channel in self.channels():
            new = self._new(packages, channel)
            self._stage(tx, new, signer, staged)
            self._publish(tx, channel, signer, staged=staged, added=[i.entry for i in new], removed=[])
        tx.commit()

    def _publish(
        self,
        tx: Transaction,
        channel: str,
        signer: Signer,
        *,
        staged: Staged,
        added: Entries,
        removed: builtins.list[Path],
    ) -> None:
        """Stage the indices of `channel`, listing what it lists now with `added` and without
        `removed` (paths relative to the tree); `staged` holds the files not in the tree yet.
        The commit moves new packages first (_stage()), the indices after, expired files last."""
        members = {e.path: e for e in self.list(channel) if e.path not in removed}
        members |= {e.path: e for e in added}
        listed = set(members) | {e.path for c in self.channels() if c != channel for e in self.list(c)}
        publish.withdraw(tx, channel, removed, [e.path for e in added], listed)
        rings.record(tx.state, channel, added=[e.path for e in added], removed=removed)
        log.info("indexing and signing dists/%s", channel)
        debs = [p for p, e in members.items() if e.format == "deb"]
        apt.prepare_suite(
            tx,
            channel,
            signer,
            debs=debs,
            staged=staged,
            removed=removed,
            phased=rings.phased(tx.state, channel),
        )
        for arch in dnf.ARCHES:
            log.info("indexing and signing rpm/%s/%s", channel, arch)
            rpms = [p for p, e in members.items() if e.format == "rpm" and arch in rpm_arches(p, e.arch)]
            dnf.prepare_arch(tx, channel, arch, signer, rpms=rpms, staged=staged)

    # -- reading ----------------------------------------------------------------------------

    def list(self, channel: str) -> Entries:
        """Every package file `channel` lists, by name and architecture, newest first.

        A channel's live indices (its Packages and primary metadata) are what it holds, not a
        directory: files of the shared pool belong to every channel that lists them. The
        indices change only by a journaled commit, with the files they name (journal.py), and
        a change interrupted is finished before any writer reads them (publish.locked()), so
        they never disagree with what was published, as a membership kept beside them could;
        they are what clients read, and what served.py reads from a URL, so the tree and its
        URL list the same; and a tree from before the shared pool needs nothing new."""
        check_channel(channel)
        try:
            return ordered(served.tree_entries(self.path, channel))
        except UpstreamError as exc:
            message = str(exc).removeprefix(f"{served.WHAT}: ")
            raise RepoError(f"{message}: the channel's indices are damaged; run mmpkg repo check") from None

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


def _key(entry: Entry) -> tuple[str, str, str, str]:
    """What makes two entries the same package, wherever their files lie."""
    return entry.name, entry.version, entry.arch, entry.format


def _at(entry: Entry, path: Path) -> Entry:
    return dataclasses.replace(entry, path=path)


def _channels_of(repo: Repository, path: Path) -> str:
    return ", ".join(c for c in repo.channels() if any(e.path == path for e in repo.list(c)))
