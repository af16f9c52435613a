"""`mmpkg releases`, `mmpkg fetch` and the fetch of `mmpkg build VERSION`: what they print."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from mmpkg.errors import UsageError
from mmpkg.release import Arch, Edition
from mmpkg.upstream import Fetched, Http, fetch, releases, trusted_keys
from mmpkg.upstream.download import Progress
from mmpkg.versions import MattermostVersion


def run_releases(args: argparse.Namespace) -> int:
    since = MattermostVersion.parse(args.since) if args.since else None
    found = releases(api_url=args.api_url, since=since, include_rc=args.include_rc)
    if args.json:
        rows = [{"version": str(r.version), "tag": r.tag, "published": r.published} for r in found]
        print(json.dumps(rows, indent=2))
    else:
        for r in found:
            print(f"{r.version!s:14} {r.published}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    fetched = fetched_release(args, MattermostVersion.parse(args.version), dest=args.dest)
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
    return 0


def tarball_for_build(args: argparse.Namespace) -> Path:
    """The TARBALL of `build`, or the verified tarball of VERSION when no such file exists."""
    given: Path = args.tarball
    if given.exists() or "/" in str(given) or given.suffix == ".gz":
        return given
    try:
        version = MattermostVersion.parse(str(given))
    except Exception:
        raise UsageError(f"{given}: no such tarball, nor a version to fetch (X.Y.Z or X.Y.Z-rcN)") from None
    return fetched_release(args, version, dest=None).path


def fetched_release(args: argparse.Namespace, version: MattermostVersion, *, dest: Path | None) -> Fetched:
    http = Http()
    keys = trusted_keys(args.keyring, http=http)
    return fetch(
        version,
        keys=keys,
        edition=Edition(args.edition),
        arch=Arch(args.arch),
        dest=dest,
        base_url=args.base_url,
        sha256=args.sha256,
        cache=args.cache,
        http=http,
        progress=progress_bar(),
    )


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
