"""The command line. The only place that prints, and that turns MmpkgError into a message."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mmpkg import __version__
from mmpkg.build import build
from mmpkg.errors import MmpkgError
from mmpkg.inspect import inspect_release
from mmpkg.options import from_environment, load_file, resolve
from mmpkg.release import Arch, Edition
from mmpkg.sample import write_sample_release
from mmpkg.versions import MattermostVersion


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmpkg",
        description="Turn Mattermost server release tarballs into upgrade-safe .deb and .rpm packages.",
    )
    parser.add_argument("--version", action="version", version=f"mmpkg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each step and tool run")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = sub.add_parser("sample-release", help="write a sample release tarball for tests and demos")
    sample.add_argument("version", help="X.Y.Z or X.Y.Z-rcN")
    sample.add_argument("--edition", choices=[e.value for e in Edition], default=Edition.ENTERPRISE.value)
    sample.add_argument("--arch", choices=[a.value for a in Arch], default=Arch.AMD64.value)
    sample.add_argument("--dest", type=Path, default=Path("."), help="directory to write to (default: .)")

    inspect = sub.add_parser("inspect", help="check a release tarball and say what it is")
    inspect.add_argument("tarball", type=Path)
    inspect.add_argument("--json", action="store_true", help="print JSON")

    b = sub.add_parser("build", help="build .deb and .rpm packages from a release tarball")
    b.add_argument("tarball", type=Path)
    b.add_argument("--config", type=Path, help="TOML file with the options below (flags win)")
    b.add_argument("--out", help="output directory (default: dist)")
    b.add_argument("--formats", help="comma-separated: deb,rpm (default: both)")
    b.add_argument("--revision", help="package revision (default: 1)")
    b.add_argument("--compression", help="zstd (default), xz or gzip")
    b.add_argument("--maintainer", help='"Name <email>" for the package metadata')
    b.add_argument(
        "--source-date-epoch",
        help="timestamp for reproducible output (default: $SOURCE_DATE_EPOCH, else the release's)",
    )
    b.add_argument(
        "--set",
        action="append",
        metavar="Section.Key=VALUE",
        help="enforced setting, re-applied on every upgrade; VALUE is JSON if it parses, else a string",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="mmpkg: %(message)s",
        stream=sys.stderr,
    )
    try:
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
            flags = {
                "out": args.out,
                "formats": args.formats,
                "revision": args.revision,
                "compression": args.compression,
                "maintainer": args.maintainer,
                "source-date-epoch": args.source_date_epoch,
                "set": args.set,
            }
            for path in build(args.tarball, resolve(file_values, flags)):
                print(path)
    except MmpkgError as exc:
        print(f"mmpkg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mmpkg: interrupted", file=sys.stderr)
        return 130
    return 0


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
