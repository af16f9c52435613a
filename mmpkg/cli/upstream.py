"""`mmpkg releases`, `fetch`, `sync` and the fetch of `build VERSION`: what they print."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from mmpkg.build.maintainer_field import HOW_TO_GIVE, maintainer_from_environment, parse_maintainer
from mmpkg.cli.output import quiet
from mmpkg.cli.repo import entry_facts, print_publish, publish_facts
from mmpkg.errors import Failures, MmpkgError, UpstreamError, UsageError
from mmpkg.mattermost.release import Arch, Edition, OpenTarball
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo import commands
from mmpkg.repo.commands import sign_key
from mmpkg.repo.listing import Listing
from mmpkg.repo.remote.publishing import Plan
from mmpkg.sync.channels import load_rules
from mmpkg.sync.pipeline import Item, SyncResult, Upstream, Wanted, listing, plan, previous, prunes, sync
from mmpkg.upstream import Http, fetch, held, releases, trusted_keys
from mmpkg.upstream.download import Progress
from mmpkg.upstream.http import shown


def run_releases(args: argparse.Namespace) -> None:
    found = releases(api_url=args.api_url, since=args.since, include_rc=args.include_rc)
    if args.json:
        rows = [{"version": str(r.version), "tag": r.tag, "published": r.published} for r in found]
        print(json.dumps(rows, indent=2))
    else:
        for r in found:
            print(f"{r.version!s:14} {r.published}")


def run_fetch(args: argparse.Namespace) -> None:
    fetched = fetch(args.version, dest=args.dest, **_source(args))
    if quiet(args):
        return
    if args.json:
        facts = {
            "path": str(fetched.path),
            "sha256": fetched.sha256,
            "size": fetched.size,
            "downloaded": fetched.downloaded,
            "signed_by": fetched.signer,
        }
        print(json.dumps(facts, indent=2))
    else:
        print(fetched.path)


@contextlib.contextmanager
def tarball_for_build(args: argparse.Namespace) -> Iterator[Path | OpenTarball]:
    """The TARBALL of `build`, or the verified tarball of VERSION, held open for the block, when
    no such file exists."""
    given: Path = args.tarball
    if given.exists() or "/" in str(given) or given.suffix == ".gz":
        yield given
        return
    try:
        version = MattermostVersion.parse(str(given))
    except Exception:
        raise UsageError(f"{given}: no such tarball, nor a version to fetch (X.Y.Z or X.Y.Z-rcN)") from None
    with held(version, **_source(args)) as found:
        yield found.tarball


def _source(args: argparse.Namespace) -> dict[str, Any]:
    """Where `fetch` and `build VERSION` take a release from, and how they check it."""
    http = Http()
    return {
        "keys": trusted_keys(args.keyring, http=http),
        "edition": Edition(args.edition),
        "arch": Arch(args.arch),
        "base_url": args.base_url,
        "sha256": args.sha256,
        "cache": args.cache,
        "http": http,
        "progress": progress_bar(),
    }


def progress_bar() -> Progress | None:
    """A bar redrawn on stderr, when stderr is a terminal and progress is shown (not -q)."""
    if not (sys.stderr.isatty() and logging.getLogger("mmpkg").isEnabledFor(logging.INFO)):
        return None
    shown = {"percent": -1}

    def draw(name: str, done: int, total: int | None) -> None:
        if not total:
            return
        percent = done * 100 // total
        if percent == shown["percent"]:
            return
        shown["percent"] = percent
        bar = "#" * (percent // 4)
        end = "\n" if done >= total else ""
        print(f"\rmmpkg: {name} [{bar:25}] {percent:3}% of {total // 1024} KiB", end=end, file=sys.stderr)

    return draw


def run_sync(args: argparse.Namespace) -> None:
    if isinstance(args.repo, str) and not args.plan:
        raise UsageError(
            f"sync {shown(args.repo)}: only --plan reads a repository from its URL; publishing needs "
            "the tree on disk: give its directory, or add --plan"
        )
    maintainer = args.maintainer or maintainer_from_environment(os.environ)
    if not maintainer and not args.plan:
        raise UsageError(f"sync needs a maintainer for the packages: {HOW_TO_GIVE}")
    wanted = Wanted(
        since=args.since,
        editions=_choices(args.editions, Edition, "--editions"),
        arches=_choices(args.arches, Arch, "--arches"),
        rules=load_rules(args.channel_rules),
        include_rc=args.include_rc,
        keep=args.keep,
    )
    upstream = Upstream(api_url=args.api_url, base_url=args.base_url, keyring=args.keyring, cache=args.cache)
    if args.plan and args.publish:
        raise UsageError("--publish: a --plan changes nothing, and publishes nothing; drop one of them")
    if args.plan:  # nothing is built: no maintainer needed
        repo = listing(args.repo, wanted, upstream)
        items = plan(repo, wanted, upstream)
        if isinstance(args.repo, str) and not repo.channels():
            # Each channel not served is empty, as it should be; none at all is more likely a typo.
            logging.getLogger("mmpkg").warning(
                "%s serves none of the channels the rules name: is it the repository's root URL?",
                shown(args.repo),
            )
        _plan(args.repo, repo, items, keep=args.keep, as_json=args.json)
        return
    try:
        maintainer = parse_maintainer(str(maintainer))
    except ValueError as exc:
        raise UsageError(f"--maintainer: {exc}") from None
    result = sync(
        args.repo,
        wanted,
        sign_key=sign_key(args.sign_key, args.repo),
        maintainer=maintainer,
        upstream=upstream,
        notify=args.notify,
    )
    # What the sync published stands in the tree whatever happens at DEST: a publish that fails
    # is one more error line, and the next run sends what is missing.
    done, publish_error = None, None
    if args.publish:
        try:
            done = commands.publish(
                args.repo, args.publish, keep=args.keep_generations, jobs=args.jobs,
                endpoint_url=args.endpoint_url, dry_run=False,
            )  # fmt: skip
        except MmpkgError as exc:
            publish_error = exc
    if not quiet(args):
        _summary(args, result, done)
    # What was published stands; each failure is its own error line, and the first decides
    # the exit code. With -q nothing is above, so each failed release is an error line itself.
    failures: list[tuple[str, int]] = []
    if result.failed and quiet(args):
        failures += [(f"failed {f.item}: {f.error}", f.exit_code) for f in result.failed]
    elif result.failed:
        failures.append((f"{len(result.failed)} release(s) failed; see above", result.failed[0].exit_code))
    if result.notify_error:
        failures.append((result.notify_error, UpstreamError.exit_code))
    if publish_error is not None:
        failures.append((str(publish_error), publish_error.exit_code))
    if failures:
        raise Failures(failures)


def _summary(args: argparse.Namespace, result: SyncResult, done: Plan | None) -> None:
    if args.json:
        facts: dict[str, object] = {
            "published": [_item(i) for i in result.published],
            "pruned": [entry_facts(e) for e in result.pruned],
            "failed": [_item(f.item) | {"error": f.error} for f in result.failed],
            "notify_error": result.notify_error,
        }
        if done is not None:
            facts["sent_to"] = publish_facts(done, dest=args.publish, dry_run=False)
        print(json.dumps(facts, indent=2))
        return
    for item in result.published:
        print(f"published {item} in {', '.join(item.channels)}")
    for entry in result.pruned:
        print(f"pruned {entry.path}")
    for failure in result.failed:
        print(f"failed {failure.item}: {failure.error}")
    if not (result.published or result.failed):
        print(f"nothing to do: {args.repo} has every release since {args.since}")
    if done is not None:
        print_publish(done, dest=args.publish, as_json=False, dry_run=False, summary_only=True)


def _plan(where: Path | str, repo: Listing, items: list[Item], *, keep: int | None, as_json: bool) -> None:
    """What a sync would publish, oldest first, each with the release a server has before it
    and what retention would withdraw once it is published."""
    withdrawn = prunes(repo, items, keep)
    if as_json:
        rows = [
            _item(i)
            | {
                "previous": str(p) if (p := previous(repo, i)) else None,
                "prunes": [entry_facts(e) for e in gone],
            }
            for i, gone in zip(items, withdrawn, strict=True)
        ]
        print(json.dumps(rows, indent=2))
        return
    for item, gone in zip(items, withdrawn, strict=True):
        print(f"{item} for {', '.join(item.channels)}")
        for entry in gone:
            print(f"  would prune {entry.path}")
    if not items:
        print(f"nothing to do: {shown(where) if isinstance(where, str) else where} has every release wanted")


def _item(item: Item) -> dict[str, object]:
    return {
        "version": str(item.version),
        "edition": str(item.edition),
        "arch": str(item.arch),
        "channels": list(item.channels),
    }


E = TypeVar("E", Edition, Arch)


def _choices(text: str, kind: type[E], flag: str) -> tuple[E, ...]:
    try:
        return tuple(kind(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{flag} {text}: expected a list of {', '.join(kind)}") from None
