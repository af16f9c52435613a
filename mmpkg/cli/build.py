"""`mmpkg inspect` and `mmpkg build`: what they print (text, or JSON with --json)."""

from __future__ import annotations

import argparse
import json
import os

from mmpkg.backends import BACKENDS
from mmpkg.backends.naming import BuiltPackage, PackageId
from mmpkg.build.inspect import inspect_release
from mmpkg.build.options import OPTIONS, from_environment, load_file, resolve, resolve_revision
from mmpkg.build.pipeline import build
from mmpkg.cli.output import quiet
from mmpkg.cli.upstream import tarball_for_build
from mmpkg.packaging.formats import PackageFormat


def run_inspect(args: argparse.Namespace) -> None:
    revision = resolve_revision(args.revision)
    release = inspect_release(args.tarball)
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
    if args.json:
        facts["packages"] = [{"format": str(p.format), **_id(p), "file": p.file} for p in packages]
        print(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        print(f"{key + ':':15} {value}")
    for p in packages:
        print(f"{p.format + ':':15} {p.name} {p.version} {p.arch} ({p.file})")


def run_build(args: argparse.Namespace) -> None:
    file_values = from_environment(os.environ) | (load_file(args.config) if args.config else {})
    flags = {option.name: getattr(args, option.name) for option in OPTIONS}
    options = resolve(file_values, flags, file=args.config)
    with tarball_for_build(args) as tarball:
        built = build(tarball, options)
    if not quiet(args):
        _built(built, as_json=args.json)


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
