"""What `mmpkg repo ...` subcommands do, as functions returning data for the CLI to print."""

from __future__ import annotations

from pathlib import Path

from mmpkg.repo.keys import KeyInfo
from mmpkg.repo.repository import Entry, Repository


def add(tree: Path, packages: list[Path], *, channel: str, key: str) -> list[str]:
    """The paths (relative to the tree) of the files newly published."""
    return [str(e.path) for e in Repository(tree).add(packages, channel, key)]


def remove(tree: Path, name: str, version: str, *, channel: str, key: str) -> list[str]:
    return [str(e.path) for e in Repository(tree).remove(name, version, channel, key)]


def listing(tree: Path, *, channel: str) -> list[Entry]:
    return Repository(tree).list(channel)


def check(tree: Path) -> list[str]:
    """The problems found; an empty list means the tree is consistent."""
    return Repository(tree).check()


def export_key(tree: Path) -> str:
    return Repository(tree).export_key()


def client_config(tree: Path, *, url: str, channel: str, fmt: str) -> str:
    return Repository(tree).client_config(url, channel, fmt)


def keys(tree: Path) -> list[KeyInfo]:
    """The current keys, the signing one marked; expiring ones are also logged as warnings."""
    return Repository(tree).keys()


def add_key(tree: Path, new_key: str | Path, *, key: str) -> list[KeyInfo]:
    return Repository(tree).add_key(new_key, key)


def retire_key(tree: Path, old_key: str, *, key: str) -> list[KeyInfo]:
    return Repository(tree).retire_key(old_key, key)


def client_commands(tree: Path, *, url: str, channel: str, fmt: str) -> list[str]:
    return Repository(tree).client_commands(url, channel, fmt)
