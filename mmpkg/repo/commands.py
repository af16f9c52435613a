"""What `mmpkg repo ...` subcommands do, as functions returning data for the CLI to print."""

from __future__ import annotations

from pathlib import Path

from mmpkg.repo.repository import Entry, Repository


def add(tree: Path, packages: list[Path], *, channel: str, key: str, keep: int = 5) -> dict[str, list[str]]:
    """The paths (relative to the tree) of the files newly published ("added") and of those
    retention deleted ("pruned")."""
    result = Repository(tree).add(packages, channel, key, keep=keep)
    return {"added": [str(e.path) for e in result.added], "pruned": [str(e.path) for e in result.pruned]}


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
