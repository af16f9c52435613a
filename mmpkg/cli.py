"""The command line. The only place that prints, and that turns MmpkgError into a message."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mmpkg.build import build
from mmpkg.cli_args import parser
from mmpkg.errors import MmpkgError
from mmpkg.inspect import inspect_release
from mmpkg.options import OPTIONS, from_environment, load_file, resolve
from mmpkg.release import Arch, Edition
from mmpkg.sample import write_sample_release
from mmpkg.signals import Stopped, stop_on_signals
from mmpkg.versions import MattermostVersion


def main(argv: Sequence[str] | None = None) -> int:
    with stop_on_signals():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = parser().parse_args(argv)
        _logging(args.verbosity)
        if args.command == "sample-release":
            path = write_sample_release(
                MattermostVersion.parse(args.version),
                edition=Edition(args.edition),
                arch=Arch(args.arch),
                dest=args.dest,
            )
            print(path)
        elif args.command == "inspect":
            _inspect(args.tarball, as_json=args.json)
        else:
            file_values = from_environment(os.environ) | (load_file(args.config) if args.config else {})
            flags = {option.name: getattr(args, option.name) for option in OPTIONS}
            for path in build(args.tarball, resolve(file_values, flags, file=args.config)):
                print(path)
    except MmpkgError as exc:
        print(f"mmpkg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Stopped as exc:
        print(f"mmpkg: stopped by {exc.signum.name}", file=sys.stderr)
        return exc.exit_code
    return 0


def _logging(verbosity: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.DEBUG}[verbosity]
    logging.basicConfig(level=level, format="mmpkg: %(message)s", stream=sys.stderr, force=True)


def _inspect(tarball: Path, *, as_json: bool) -> None:
    release = inspect_release(tarball)
    facts = {
        "version": str(release.version),
        "edition": str(release.edition),
        "arch": str(release.arch),
        "files": release.file_count,
        "size": release.size,
        "sha256": release.sha256,
    }
    if as_json:
        print(json.dumps(facts, indent=2))
    else:
        for key, value in facts.items():
            print(f"{key + ':':9} {value}")
