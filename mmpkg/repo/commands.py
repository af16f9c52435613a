"""What the `mmpkg repo ...` commands do, as functions returning data for the CLI to print."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mmpkg.errors import RepoError, UsageError
from mmpkg.repo import keys as keys_state
from mmpkg.repo.clients import ClientFormat, Snippet
from mmpkg.repo.clients import client_config as _client_config
from mmpkg.repo.clients import setup_command as _setup_command
from mmpkg.repo.journal import PRIVATE
from mmpkg.repo.keys import KeyInfo
from mmpkg.repo.packages import AddResult, Entry
from mmpkg.repo.remote import checking
from mmpkg.repo.remote.publishing import STATE, Plan, run_publish
from mmpkg.repo.remote.stores import open_store
from mmpkg.repo.repository import Repository


def sign_key(given: str | None, tree: Path | None = None) -> str:
    """The key to sign with: the flag, else $MMPKG_SIGN_KEY (where CI keeps it), else the key the
    repository at `tree` signed with last."""
    key = given or os.environ.get("MMPKG_SIGN_KEY", "")
    keyset = keys_state.load(tree) if tree is not None and not key else None
    if keyset is not None:
        key = keyset.signing
    if not key:
        raise RepoError("no signing key: give --sign-key KEY or set MMPKG_SIGN_KEY (a gpg key in $GNUPGHOME)")
    return key


def add(
    tree: Path,
    packages: list[Path],
    *,
    channel: str,
    keep: int | None,
    key: str | None,
    dry_run: bool = False,
) -> AddResult:
    """What was newly published, and what retention withdrew; with `dry_run`, what would be,
    with nothing changed and no key needed."""
    if dry_run:
        return Repository(tree).preview_add(packages, channel, keep=keep)
    return Repository(tree).add(packages, channel, sign_key(key, tree), keep=keep)


def promote(
    tree: Path,
    version: str,
    *,
    source: str,
    target: str,
    after: float | None,
    keep: int | None,
    key: str | None,
    phased: int | None = None,
    dry_run: bool = False,
) -> AddResult:
    """What `version`'s files in `source` newly published in `target`, and what retention
    withdrew there; with `dry_run`, what would be, with nothing changed and no key needed."""
    repo = _existing(tree)
    signing = None if dry_run else sign_key(key, tree)
    return repo.promote(version, source, target, signing, after=after, keep=keep, phased=phased)


def phase(tree: Path, percentage: int, *, channel: str, key: str | None) -> None:
    _existing(tree).phase(channel, percentage, sign_key(key, tree))


@dataclass(frozen=True)
class ChannelConfig:
    keep: int  # the newest versions retention keeps
    stored: bool  # given by an add, a sync or `repo config`, not the default


def config(tree: Path, *, channel: str | None, keep: int | None) -> dict[str, ChannelConfig]:
    """Each channel's retention (or the one asked for), after storing `keep` for `channel`."""
    repo = _existing(tree)
    if keep is not None:
        if channel is None:
            raise UsageError("--keep needs --channel NAME: the channel whose retention it sets")
        repo.set_keep(channel, keep)
    elif channel is not None:
        repo.check_known(channel)
    stored = repo.keeps()
    channels = [channel] if channel else repo.channels()
    return {c: ChannelConfig(repo.keep(c), c in stored) for c in channels}


def remove(tree: Path, name: str, version: str, *, channel: str, key: str | None) -> list[Entry]:
    return _existing(tree).remove(name, version, channel, sign_key(key, tree))


def listing(tree: Path, *, channel: str | None) -> dict[str, list[Entry]]:
    """Each channel's packages (or the one asked for), newest first."""
    repo = _existing(tree)
    if channel:
        repo.check_known(channel)
    channels = [channel] if channel else repo.channels()
    return {c: repo.list(c) for c in channels}


def check(target: str | Path, *, deep: bool = False, endpoint_url: str | None = None) -> list[str]:
    """The problems of a tree (a directory holding mmpkg's private state), or of where one was
    published (remote/checking.py)."""
    text = str(target)
    if is_remote(text) or ((Path(text) / STATE).is_file() and not (Path(text) / PRIVATE).is_dir()):
        return checking.problems(open_store(text, endpoint_url=endpoint_url), deep=deep)
    return check_tree(Path(text))


def is_remote(dest: str) -> bool:
    """Whether DEST names a bucket or another machine, rather than a directory here."""
    return bool(re.match(r"^([a-z][a-z0-9+.-]*://|[^/]*:)", dest))


def publish(tree: Path, dest: str, *, keep: int, jobs: int, endpoint_url: str | None, dry_run: bool) -> Plan:
    repo = _existing(tree)
    if not is_remote(dest) and Path(dest).resolve() == repo.path:
        raise UsageError(f"{dest}: that is the tree itself; publish to another place")
    store = open_store(dest, jobs=jobs, endpoint_url=endpoint_url)
    return run_publish(repo.path, store, keep=keep, dry_run=dry_run)


def check_tree(tree: Path) -> list[str]:
    """The problems found; an empty list means the tree is consistent."""
    return _existing(tree).check()


def export_key(tree: Path) -> str:
    return _existing(tree).export_key()


def client_config(url: str, *, channel: str, fmt: ClientFormat, unattended: bool) -> list[Snippet]:
    return _client_config(url, channel, fmt, unattended=unattended)


def setup_command(url: str, *, channel: str, fmt: ClientFormat, unattended: bool) -> str:
    return _setup_command(url, channel, fmt, unattended=unattended)


def _existing(tree: Path) -> Repository:
    """A tree that reading commands can read: one that `repo add` has made."""
    if not (tree / "dists").is_dir():
        raise RepoError(f"{tree} is not a repository: create it with 'mmpkg repo add {tree} PACKAGE...'")
    return Repository(tree)


def keys(tree: Path) -> list[KeyInfo]:
    """The current keys, the signing one marked; expiring ones are also logged as warnings."""
    return _existing(tree).keys()


def add_key(tree: Path, new_key: str | Path, *, key: str | None) -> list[KeyInfo]:
    return _existing(tree).add_key(new_key, sign_key(key, tree))


def retire_key(tree: Path, old_key: str, *, key: str | None) -> list[KeyInfo]:
    return _existing(tree).retire_key(old_key, sign_key(key, tree))
