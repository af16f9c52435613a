"""`mmpkg repo publish REPO DEST`: the tree's live generation carried to DEST so that every
reader of DEST sees one consistent generation, though no object store replaces many objects at
once: in the order Debian's mirrors sync in (ftpsync's two stages, then delayed deletes).

1. the objects named by their content (objects.Kind.CONTENT): new packages, by-hash indices,
   hash-named dnf metadata; nothing reads them before a top file names them;
2. the objects named by their role (apt's plain Packages, the keys);
3. the signed top files, one by one: InRelease (apt reads it alone), repomd.xml and its
   signature last;
4. only after `keep` more publishes, what the tree no longer holds: a client that read an
   earlier InRelease or repomd.xml still finds every object it names.

Only what differs from what DEST holds is sent, compared by SHA-256, never by time. What DEST
holds, and since which publish each object no longer in the tree has waited to go, is mmpkg's
state at DEST (`STATE`), written after each step: a publish killed at any point leaves DEST
serving the previous generation or the new one, and the next publish sends what is still
missing and finishes the deletes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpkg.errors import PublishError, UsageError
from mmpkg.repo import publish
from mmpkg.repo.remote.objects import Kind, Local, files
from mmpkg.repo.remote.stores import Store

log = logging.getLogger("mmpkg")

STATE = ".mmpkg-publish.json"
FORMAT = 1
# Publishes an object no longer in the tree stays at DEST: as many as the tree's own generations
# carry their content-addressed files for (publish.py), the clients' grace is the same.
KEEP = publish.KEEP_GENERATIONS


@dataclass
class Plan:
    """What one publish moves: each step's files, and the keys deleted at its end."""

    steps: list[tuple[Kind, list[Local]]]
    delete: list[str]
    waiting: int  # objects no longer in the tree that stay for clients of earlier generations
    unchanged: int
    number: int  # this publish's number at DEST
    present: frozenset[str] = frozenset()  # every key the tree serves now

    @property
    def uploads(self) -> list[Local]:
        return [f for _, step in self.steps for f in step]

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.uploads)


@dataclass
class State:
    """mmpkg's record at DEST: what it holds, and what waits to be deleted."""

    number: int = 0  # publishes finished
    objects: dict[str, list[Any]] = field(default_factory=dict)  # key -> [sha256, size]
    unlisted: dict[str, int] = field(default_factory=dict)  # key -> the publish it left the tree
    deleting: list[str] = field(default_factory=list)  # deletes a killed publish left unfinished
    sending: list[str] = field(default_factory=list)  # the step a killed publish left unfinished

    def dump(self) -> bytes:
        body = {
            "format": FORMAT,
            "number": self.number,
            "objects": self.objects,
            "unlisted": self.unlisted,
            "deleting": self.deleting,
            "sending": self.sending,
        }
        return json.dumps(body, indent=0, sort_keys=True).encode()


def read_state(store: Store) -> State:
    data = store.read(STATE)
    if data is None:
        return State()
    try:
        body = json.loads(data)
        if body.get("format") != FORMAT:
            raise ValueError(f"format {body.get('format')}")
        return State(
            int(body["number"]),
            dict(body["objects"]),
            dict(body["unlisted"]),
            list(body["deleting"]),
            list(body.get("sending", [])),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PublishError(
            f"{store.url}/{STATE}: not mmpkg's publish state ({exc}); publish to an empty place, "
            "or delete that file to publish everything again"
        ) from None


def plan(tree: Path, store: Store, *, keep: int = KEEP) -> tuple[Plan, State]:
    """What a publish of `tree` to `store` would do, and the state it starts from."""
    if keep < 1:
        raise UsageError(f"--keep-generations {keep}: keep at least 1 publish")
    state = read_state(store)
    local = files(tree)
    changed = [f for f in local if state.objects.get(f.key) != [f.sha256, f.size]]
    # A file sent by a publish killed in the middle of a step is there already: the stores that
    # record a file's hash say so, and it is not sent twice (a package weighs hundreds of MB).
    sending = set(state.sending)
    unknown = [f.key for f in changed if f.key in sending and f.key not in state.objects]
    there = store.stat(unknown) if unknown else {}
    fresh = [
        f
        for f in changed
        if not (f.key in there and there[f.key].sha256 == f.sha256 and there[f.key].size == f.size)
    ]
    number = state.number + 1
    present = {f.key for f in local}
    unlisted = {k: n for k, n in state.unlisted.items() if k not in present}
    unlisted |= {k: number for k in state.objects if k not in present and k not in unlisted}
    due = sorted(
        {k for k, n in unlisted.items() if number - n >= keep - 1}
        | {k for k in state.deleting if k not in present}
    )
    steps = [(kind, [f for f in fresh if f.kind is kind]) for kind in (Kind.CONTENT, Kind.NAMED)]
    steps.append((Kind.TOP, sorted((f for f in fresh if f.kind is Kind.TOP), key=_top_order)))
    return (
        Plan(
            steps=steps,
            delete=due,
            waiting=len(unlisted) - len(set(due) & set(unlisted)),
            unchanged=len(local) - len(changed),
            number=number,
            present=frozenset(present),
        ),
        state,
    )


def _top_order(f: Local) -> tuple[str, int]:
    """Within a channel: Release and its detached signature before InRelease, which apt reads
    first; the signature of repomd.xml before it (each pair is two objects: see the docs)."""
    order = ("Release", "Release.gpg", "InRelease", "repomd.xml.asc", "repomd.xml")
    name = Path(f.key).name
    return (str(Path(f.key).parent), order.index(name) if name in order else len(order))


def run_publish(
    tree: Path,
    store: Store,
    *,
    keep: int = KEEP,
    dry_run: bool = False,
    progress: Callable[[str], None] = log.info,
) -> Plan:
    """Publish `tree`'s live generations to `store` (the module's docstring says in what order);
    with `dry_run`, only say what would move. Holds the tree's lock throughout, so that no
    `repo add` replaces a generation while its files are being sent."""
    with publish.locked(tree):
        the_plan, state = plan(tree, store, keep=keep)
        if dry_run:
            return the_plan
        if (
            not the_plan.uploads
            and not the_plan.delete
            and not (set(state.objects) - the_plan.present - set(state.unlisted))
        ):
            # Nothing changed: no new generation at DEST, and no grace counted down for one.
            the_plan.number = state.number
            return the_plan
        for kind, step in the_plan.steps:
            if not step:
                continue
            progress(f"sending {len(step)} {kind.value} object(s), {_mb(sum(f.size for f in step))}")
            if kind is Kind.CONTENT:
                state.sending = [f.key for f in step]
                store.write(STATE, state.dump())
            store.put(step, together=kind is Kind.TOP)
            state.objects |= {f.key: [f.sha256, f.size] for f in step}
            state.sending = []
            store.write(STATE, state.dump())
        present = the_plan.present
        state.unlisted = {k: n for k, n in state.unlisted.items() if k not in present}
        state.unlisted |= {
            k: the_plan.number for k in state.objects if k not in present and k not in state.unlisted
        }
        for key in the_plan.delete:
            state.objects.pop(key, None)
            state.unlisted.pop(key, None)
        state.deleting = the_plan.delete
        state.number = the_plan.number
        store.write(STATE, state.dump())
        if the_plan.delete:
            progress(f"deleting {len(the_plan.delete)} object(s) no generation kept names")
            store.delete(the_plan.delete)
            state.deleting = []
            store.write(STATE, state.dump())
        return the_plan


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
