"""The command line. The only place that prints, and that turns MmpkgError into a message."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mmpkg.backends import BACKENDS
from mmpkg.backends.naming import BuiltPackage, PackageId
from mmpkg.build.inspect import inspect_release
from mmpkg.build.options import OPTIONS, from_environment, load_file, resolve, resolve_revision
from mmpkg.build.pipeline import build
from mmpkg.cli.grammar import parser
from mmpkg.cli.repo import run_repo
from mmpkg.cli.signals import Stopped, stop_on_signals
from mmpkg.cli.upstream import run_fetch, run_releases, run_sync, tarball_for_build
from mmpkg.errors import MmpkgError
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import PackageFormat
from mmpkg.sample import write_sample_release
from mmpkg.sample.profiles import PROFILES


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
                profile=PROFILES[args.profile],
            )
            print(path)
        elif args.command == "repo":
            return run_repo(args)
        elif args.command == "releases":
            return run_releases(args)
        elif args.command == "fetch":
            return run_fetch(args)
        elif args.command == "sync":
            return run_sync(args)
        elif args.command == "inspect":
            revision = resolve_revision(args.revision)
            _inspect(args.tarball, revision, as_json=args.json)
        else:
            file_values = from_environment(os.environ) | (load_file(args.config) if args.config else {})
            flags = {option.name: getattr(args, option.name) for option in OPTIONS}
            options = resolve(file_values, flags, file=args.config)
            with tarball_for_build(args) as tarball:
                built = build(tarball, options)
            _built(built, as_json=args.json)
    except MmpkgError as exc:
        print(f"mmpkg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Stopped as exc:
        print(f"mmpkg: stopped by {exc.signum.name}", file=sys.stderr)
        return exc.exit_code
    return 0


def _logging(verbosity: int) -> None:
    """Progress (INFO) on a terminal only, -q for errors only, -v for every tool run anywhere."""
    if verbosity > 0:
        level = logging.DEBUG
    elif verbosity < 0:
        level = logging.ERROR
    else:
        level = logging.INFO if sys.stderr.isatty() else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mmpkg: %(message)s"))
    log = logging.getLogger("mmpkg")
    log.handlers = [handler]
    log.setLevel(level)
    log.propagate = False


def _inspect(tarball: Path, revision: int, *, as_json: bool) -> None:
    release = inspect_release(tarball)
    name = release.edition.package_name
    packages = [BACKENDS[f].identify(name, release.version, revision, release.arch) for f in PackageFormat]
    facts: dict[str, object] = {
        "version": str(release.version),
        "edition": str(release.edition),
        "arch": str(release.arch),
        "files": release.file_count,
        "unpacked_bytes": release.unpacked_bytes,
        "tarball_bytes": release.tarball_bytes,
        "tarball_sha256": release.sha256,
    }
    if as_json:
        facts["packages"] = [{"format": str(p.format), **_id(p), "file": p.file} for p in packages]
        print(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        print(f"{key + ':':15} {value}")
    for p in packages:
        print(f"{p.format + ':':15} {p.name} {p.version} {p.arch} ({p.file})")


def _built(built: list[BuiltPackage], *, as_json: bool) -> None:
    if not as_json:
        for package in built:
            print(package.path)
        return
    facts = [
        {"format": str(b.id.format), **_id(b.id), "path": str(b.path), "size": b.size, "sha256": b.sha256}
        for b in built
    ]
    print(json.dumps(facts, indent=2))


def _id(package: PackageId) -> dict[str, str]:
    return {"name": package.name, "version": package.version, "arch": package.arch}
