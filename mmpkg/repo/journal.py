"""The journal that makes every change to a repository all-or-nothing, even across a SIGKILL.

A change is built in two phases. PREPARE writes everything new inside `REPO/.mmpkg/tmp`, on
the tree's own file system, and touches nothing that is served. COMMIT writes the list of
steps to `REPO/.mmpkg/journal` (the commit point: one rename of a fsynced file), performs them
in order, and removes the journal. A step can be repeated without harm, so whoever takes the
lock next replays a journal it finds (rolls forward), and otherwise throws away what an
interrupted PREPARE left in tmp (rolls back). The served tree is thus always the old state or
the new one, never a mixture inside one index.

Steps: `move` (a rename(2); done once its source is gone; sources are fresh names in tmp, never
the destination of another step), `retire` (moves a real directory from the layout before
generations out of the way of the symlink that replaces it) and `delete`, which always come
last: what the new indices no longer name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from mmpkg.errors import RepoError

# The repository's private state; it need not be served (see repository.py).
PRIVATE = ".mmpkg"
JOURNAL = "journal"
STATE = "generations.json"

log = logging.getLogger("mmpkg")

Step = tuple[str, str, str]  # (kind, path relative to the tree, second path or "")


def read_state(tree: Path) -> dict[str, Any]:
    """The repository's private state, as the last commit saved it: earlier generations and
    withdrawn files (publish.py), and each channel's stored --keep (retention.py)."""
    f = tree / PRIVATE / STATE
    state: dict[str, Any] = json.loads(f.read_text()) if f.exists() else {}
    return state


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """Flush what PREPARE wrote, so that a power cut after the commit point cannot lose it."""
    if path.is_symlink() or not path.is_dir():
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        return
    for dirpath, _, files in os.walk(path):
        for name in files:
            f = Path(dirpath, name)
            if not f.is_symlink():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _perform(tree: Path, steps: list[Step]) -> None:
    for kind, a, b in steps:
        src = tree / a
        if kind == "move" and os.path.lexists(src):
            dst = tree / b
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            _fsync_dir(dst.parent)
        elif kind == "retire" and src.is_dir() and not src.is_symlink():
            os.replace(src, tree / b)
        elif kind == "delete" and os.path.lexists(src):
            _remove(src)


def discard(tree: Path) -> None:
    """Throw away what a change staged, unless it passed its commit point (the next command
    then finishes it): a failed change leaves nothing behind, and gives back the room it took
    (it may have failed for want of it)."""
    private = tree / PRIVATE
    if (private / JOURNAL).exists():
        return
    shutil.rmtree(private / "tmp", ignore_errors=True)
    with contextlib.suppress(OSError):
        (private / "tmp").mkdir()


def recover(tree: Path) -> None:
    """Finish a change whose journal was written, or discard one that never got that far.
    Call with the lock held."""
    if (tree / PRIVATE / JOURNAL).exists():
        log.warning("finishing the change to %s that was interrupted", tree)
    _finish(tree)


def _finish(tree: Path) -> None:
    private = tree / PRIVATE
    journal = private / JOURNAL
    if journal.exists():
        _perform(tree, [(k, a, b) for k, a, b in json.loads(journal.read_text())])
        journal.unlink()
        _fsync_dir(private)
    tmp = private / "tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)


class Transaction:
    """One change to the tree: staged files and the steps that publish them."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.tmp = tree / PRIVATE / "tmp"
        self._steps: list[Step] = []
        self._deletes: list[Step] = []
        self._count = 0
        self._state: dict[str, Any] | None = None

    def path(self, name: str) -> Path:
        """A fresh name in tmp for something to stage."""
        self._count += 1
        return self.tmp / f"{self._count}-{name}"

    def _rel(self, path: Path) -> str:
        """`path` relative to the tree; RepoError for one that leads out of it, by `..` or by a
        symbolic link: every step of the journal stays inside the tree, whatever a package's
        fields made of a path (packages.py checks them too)."""
        try:
            rel = path.relative_to(self.tree)
        except ValueError:
            rel = None
        if rel is None or ".." in rel.parts or not path.resolve().is_relative_to(self.tree.resolve()):
            raise RepoError(f"{path} is outside the repository {self.tree}")
        return str(rel)

    def move(self, staged: Path, dest: Path) -> None:
        self._steps.append(("move", self._rel(staged), self._rel(dest)))

    def retire(self, directory: Path) -> None:
        self._steps.append(("retire", self._rel(directory), self._rel(self.path("retired"))))

    def delete(self, path: Path) -> None:
        self._deletes.append(("delete", self._rel(path), ""))

    @property
    def state(self) -> dict[str, Any]:
        """The repository's private state (read_state()), as the commit will save it."""
        if self._state is None:
            self._state = read_state(self.tree)
        return self._state

    def commit(self) -> None:
        if self._state is not None:
            staged = self.path(STATE)
            staged.write_text(json.dumps(self._state, indent=1, sort_keys=True) + "\n")
            self.move(staged, self.tree / PRIVATE / STATE)
        steps = self._steps + self._deletes
        for kind, a, _ in self._steps:
            if kind == "move":
                _fsync_tree(self.tree / a)
        private = self.tree / PRIVATE
        pending = self.path(JOURNAL)
        with open(pending, "w") as fh:
            json.dump(steps, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pending, private / JOURNAL)  # the commit point
        _fsync_dir(private)
        _finish(self.tree)
