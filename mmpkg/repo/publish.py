"""The lock, and the generations that let an index change in one atomic step.

Writers take an exclusive flock(2) on `REPO/.mmpkg/lock`, so two concurrent changes run one
after the other; whoever gets the lock first finishes or discards an interrupted change
(journal.py).

Each index directory (an apt suite `dists/CHANNEL`, a dnf `rpm/CHANNEL/ARCH/repodata`) is a
relative symlink to a generation directory beside it (`.CHANNEL.gen7`, `.repodata.gen7`). A new
generation is staged whole, moved beside the live one, and published by renaming a new symlink
over the old: a reader sees all of the old index or all of the new, and so does a tree
killed at any instant. (Replacing files one by one, InRelease last, would leave a killed tree
with a Packages that its Release does not describe; dnf has no such order at all, since
repomd.xml and repomd.xml.asc are two files.) Static servers follow the links; a copy to an
object store dereferences them.

A client that fetched the previous InRelease or repomd.xml still asks for the files it names,
through the link that now shows the new generation: each generation therefore carries hard
links to the content-addressed files of the previous KEEP_GENERATIONS - 1 ones (by-hash
indices, hash-named dnf metadata). The replaced generation directory itself is deleted at once:
no name leads to it any more. For the same clients a removed package file stays in the pool,
unlisted, for as many publishes (withdraw()); one of the pool all channels share stays as long
as any channel lists it.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmpkg.errors import cannot_make
from mmpkg.repo import journal
from mmpkg.repo.journal import PRIVATE, Transaction
from mmpkg.repo.layout import owner

# Publishes whose content-addressed files stay fetchable: a client that read an index three
# publishes ago and is still downloading is slower than any mirror sync we need to serve.
KEEP_GENERATIONS = 3
WITHDRAWN = "withdrawn"


@contextmanager
def locked(tree: Path) -> Iterator[Transaction]:
    """Hold the repository's write lock for the block, after recovering any interrupted change;
    the Transaction publishes nothing until its commit()."""
    private = tree / PRIVATE
    try:
        private.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_make(exc, "repository", tree) from None
    with open(private / "lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            journal.recover(tree)
            yield Transaction(tree)
        except BaseException:
            journal.discard(tree)
            raise
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def live(index: Path) -> Path | None:
    """The directory an index shows now: its generation, a real directory in a tree made before
    generations, or None for a new index."""
    if index.is_symlink():
        return index.parent / os.readlink(index)
    return index if index.is_dir() else None


def _next_name(index: Path) -> str:
    number = 0
    if index.is_symlink():
        found = re.fullmatch(rf"\.{re.escape(index.name)}\.gen(\d+)", os.readlink(index))
        number = int(found.group(1)) if found else 0
    # A directory no link leads to (left by hand, or by a tree copied mid-change) is skipped.
    while os.path.lexists(index.parent / f".{index.name}.gen{number + 1}"):
        number += 1
    return f".{index.name}.gen{number + 1}"


def publish_generation(tx: Transaction, index: Path, staged: Path, retained: str) -> None:
    """Add to `tx` the steps that make `staged` the next generation of `index`.

    `retained` is a glob (relative to the generation) matching its content-addressed files, the
    ones later generations carry for clients of this one."""
    key = str(index.relative_to(tx.tree))
    old = live(index)
    own = sorted(str(f.relative_to(staged)) for f in staged.glob(retained) if f.is_file())
    history: list[list[str]] = tx.state.get(key, [])
    if old is not None and not history:
        # A tree from before generations: what its index holds is all one generation.
        history = [sorted(str(f.relative_to(old)) for f in old.glob(retained) if f.is_file())]
    for name in {n for generation in history[: KEEP_GENERATIONS - 1] for n in generation}:
        src, dst = (old / name) if old else None, staged / name
        if src is not None and src.is_file() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
    tx.state[key] = [own, *history[: KEEP_GENERATIONS - 1]]
    name = _next_name(index)
    link = tx.path("link")
    os.symlink(name, link)
    tx.move(staged, index.parent / name)
    if old is not None and not index.is_symlink():
        tx.retire(index)
    tx.move(link, index)
    if old is not None and index.is_symlink():
        tx.delete(old)


def withdrawn(tree: Path) -> set[str]:
    """Package files (relative to the tree) withdrawn from a channel, still served for clients
    holding an earlier index until their generation is no longer carried (withdraw())."""
    return set(journal.read_state(tree).get(WITHDRAWN, {}))


def _counters(rel: str, value: int | dict[str, int]) -> dict[str, int]:
    """The publishes each channel that withdrew `rel` still owes it. A tree from before the
    shared pool keeps one number, for the channel whose own directory holds the file."""
    if isinstance(value, dict):
        return dict(value)
    return {str(owner(Path(rel))): value}


def withdraw(
    tx: Transaction, channel: str, removed: list[Path], readded: list[Path], listed: set[Path]
) -> None:
    """Record `removed` (paths relative to the tree) as withdrawn from `channel`, and delete the
    files withdrawn long enough ago: a publish of `channel` is one generation of its indices,
    and only of its, so each channel that withdrew a file counts its own publishes. A file is
    deleted once every such channel has counted out and no channel lists it (`listed`, every
    file some channel's indices will list after this change): a file of the shared pool
    withdrawn from one channel stays while another lists it."""
    pending: dict[str, int | dict[str, int]] = tx.state.setdefault(WITHDRAWN, {})
    for path in readded:
        rel = str(path)
        if rel in pending:
            counters = _counters(rel, pending[rel])
            counters.pop(channel, None)
            pending[rel] = counters
    for rel in sorted(pending):
        counters = _counters(rel, pending[rel])
        if channel in counters:
            if counters[channel] <= 1:
                del counters[channel]
            else:
                counters[channel] -= 1
        if counters:
            pending[rel] = counters
            continue
        del pending[rel]
        if Path(rel) not in listed:
            tx.delete(tx.tree / rel)
    for path in removed:
        counters = _counters(str(path), pending.get(str(path), {}))
        # The publish that withdraws it is the first of the KEEP_GENERATIONS that may name it.
        counters[channel] = KEEP_GENERATIONS - 1
        pending[str(path)] = counters
