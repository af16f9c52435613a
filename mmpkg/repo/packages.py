"""What the repository knows of a package file: its name, version, architecture and place.

Read with the formats' own tools (dpkg-deb, rpm), never from the file name alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from mmpkg.errors import CommandError, RepoError
from mmpkg.repo import apt, dnf, keyring
from mmpkg.run import run

NAMES = ("mattermost", "mattermost-team", keyring.NAME)
CHANNEL = re.compile(r"[a-z][a-z0-9]{0,31}")
DEB_TO_RPM_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
# Architecture-independent packages: a noarch rpm is published in every architecture's repository.
ANY_ARCH = ("all", "noarch")


@dataclass(frozen=True)
class Entry:
    """One package file in a channel."""

    name: str
    version: str
    arch: str
    format: str
    path: Path


Entries = list[Entry]


@dataclass(frozen=True)
class AddResult:
    added: Entries  # the files that were new
    pruned: Entries  # what retention withdrew (retention.py)


@dataclass(frozen=True)
class Incoming:
    src: Path
    entry: Entry  # path is where it will live, relative to the tree
    identity: str  # sha256 of a deb; header digest of an rpm (unchanged by signing)


def check_channel(channel: str) -> None:
    if not CHANNEL.fullmatch(channel):
        raise RepoError(f"bad channel name {channel!r}: use one lower-case word such as stable, esr or rc")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inspect(pkg: Path, channel: str) -> list[Incoming]:
    pkg = Path(pkg)
    if not pkg.is_file():
        raise RepoError(f"{pkg} is not a file")
    try:
        if pkg.suffix == ".deb":
            out = run(
                [
                    "dpkg-deb",
                    "--showformat",
                    "${Package}\t${Version}\t${Architecture}",
                    "--show",
                    str(pkg),
                ]
            )
            name, version, arch = out.stdout.strip().split("\t")
            rel = Path("pool") / channel / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
            entries, ident = [Entry(name, version, arch, "deb", rel)], sha256(pkg)
        elif pkg.suffix == ".rpm":
            qf = "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SHA256HEADER}"
            out = run(["rpm", "-qp", "--nosignature", "--qf", qf, str(pkg)])
            name, version, arch, ident = out.stdout.strip().split("\t")
            dirs = dnf.ARCHES if arch == "noarch" else (arch,)
            rels = [Path("rpm") / channel / d / "Packages" / f"{name}-{version}.{arch}.rpm" for d in dirs]
            entries = [Entry(name, version, arch, "rpm", rel) for rel in rels]
        else:
            raise RepoError(f"{pkg} is not a .deb or .rpm package")
    except (CommandError, ValueError) as exc:
        raise RepoError(f"{pkg} is not a readable package") from exc
    if name not in NAMES:
        raise RepoError(f"{pkg}: package {name!r} is not {' or '.join(NAMES)}")
    if arch not in (*apt.ARCHES, *dnf.ARCHES, *ANY_ARCH):
        raise RepoError(f"{pkg}: architecture {arch!r} is not published")
    return [Incoming(pkg, entry, ident) for entry in entries]


def identity(tree: Path, entry: Entry) -> str:
    """What makes a published file the same package as an incoming one."""
    if entry.format == "deb":
        return sha256(tree / entry.path)
    qf = "%{SHA256HEADER}"
    return run(["rpm", "-qp", "--nosignature", "--qf", qf, str(tree / entry.path)]).stdout.strip()
