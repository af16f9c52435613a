"""What the repository knows of a package file: its name, version, architecture and place.

Read with the formats' own tools (dpkg-deb, rpm), never from the file name alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from mmpkg.backends.deb import DEB_ARCH
from mmpkg.backends.rpm import RPM_ARCH
from mmpkg.build import omnibus
from mmpkg.errors import CommandError, RepoError, out_of_space
from mmpkg.mattermost.release import Arch
from mmpkg.packaging.version_order import PackageVersion
from mmpkg.repo import apt, dnf, keyring
from mmpkg.repo.layout import is_shared, pool_dir
from mmpkg.tools.run import run

NAMES = ("mattermost", "mattermost-team", keyring.NAME, omnibus.NAME)
CHANNEL = re.compile(r"[a-z][a-z0-9]{0,31}")
DEB_TO_RPM_ARCH = {DEB_ARCH[arch]: RPM_ARCH[arch] for arch in Arch}
# What rpm allows in a Version and a Release (rpmbuild's check, less its macro characters).
RPM_VERSION = re.compile(r"[0-9A-Za-z.+~^_]+")


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
    pruned: Entries  # what retention withdrew (retention.py), with `dropped`
    keep: int = 0  # the newest versions retention kept: --keep, else the channel's stored one
    dropped: Entries = dataclasses.field(
        default_factory=list
    )  # new files retention dropped at once: not published

    @property
    def withdrawn(self) -> Entries:
        """What retention took out of the channel: the pruned files that had been published."""
        return [e for e in self.pruned if e not in self.dropped]


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


def inspect(pkg: Path) -> list[Incoming]:
    pkg = Path(pkg)
    if not pkg.is_file():
        raise RepoError(f"{pkg} is not a file")
    try:
        if pkg.suffix == ".deb":
            fmt = "deb"
            show = "${Package}\t${Version}\t${Architecture}"
            out = run(["dpkg-deb", "--showformat", show, "--show", str(pkg)])
            name, version, arch = out.stdout.strip("\n").split("\t")
            ident = sha256(pkg)
        elif pkg.suffix == ".rpm":
            fmt = "rpm"
            qf = "%{NAME}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SHA256HEADER}"
            out = run(["rpm", "-qp", "--nosignature", "--qf", qf, str(pkg)])
            name, upstream, release, arch, ident = out.stdout.strip("\n").split("\t")
            version = f"{upstream}-{release}"
        else:
            raise RepoError(f"{pkg} is not a .deb or .rpm package")
    except CommandError as exc:
        # dpkg-deb unpacks the control file into /tmp to read it.
        if out_of_space(exc):
            raise
        raise RepoError(f"{pkg} is not a readable package") from exc
    except ValueError as exc:
        raise RepoError(f"{pkg} is not a readable package") from exc
    try:
        rel = place(fmt, name, version, arch)
    except RepoError as exc:
        raise RepoError(f"{pkg}: {exc}") from None
    return [Incoming(pkg, Entry(name, version, arch, fmt, rel), ident)]


def place(fmt: str, name: str, version: str, arch: str) -> Path:
    """Where the package `name` `version` `arch` of `fmt` is stored, relative to the tree: once,
    in the pool every channel shares (a noarch rpm once too, listed by each architecture's
    repository). Each field is checked first, so that no path is ever made of one that is not
    what its format allows: a header can hold anything (rpmbuild and dpkg-deb refuse such
    values, but a package need not come from them, and rpm -K checks only that the header is
    the one its digests describe)."""
    if name not in NAMES:
        raise RepoError(f"package {name!r} is not {' or '.join(NAMES)}")
    arches = (*apt.ARCHES, apt.ALL) if fmt == "deb" else (*dnf.ARCHES, dnf.NOARCH)
    if arch not in arches:
        raise RepoError(f"architecture {arch!r} is not published ({', '.join(arches)})")
    if fmt == "deb":
        try:
            PackageVersion(fmt, version)
        except ValueError:
            raise RepoError(f"Version {version!r} is not a valid deb version") from None
        return _file_in(pool_dir(name), f"{name}_{version.replace(':', '%3a')}_{arch}.deb")
    upstream, _, release = version.rpartition("-")
    for field, value in (("Version", upstream), ("Release", release)):
        if not RPM_VERSION.fullmatch(value):
            raise RepoError(f"{field} {value!r} is not a valid rpm {field.lower()}")
    return _file_in(pool_dir(name), f"{name}-{version}.{arch}.rpm")


def rpm_arches(path: Path, arch: str) -> tuple[str, ...]:
    """The architectures whose dnf repositories list the rpm at `path` of architecture `arch`:
    a noarch rpm of the shared pool is listed by each; one of a channel's own directory, by the
    repository it lies in."""
    if not is_shared(path):
        return (path.parts[2],)
    return dnf.ARCHES if arch == dnf.NOARCH else (arch,)


def _file_in(directory: Path, name: str) -> Path:
    """`directory`/`name`, where `name` must be one file name: never a way out of `directory`."""
    if name in (".", "..") or any(c in name for c in "/\0"):
        raise RepoError(f"{name!r} is not a file name")
    return directory / name


def identity(tree: Path, entry: Entry) -> str:
    """What makes a published file the same package as an incoming one."""
    if entry.format == "deb":
        return sha256(tree / entry.path)
    qf = "%{SHA256HEADER}"
    return run(["rpm", "-qp", "--nosignature", "--qf", qf, str(tree / entry.path)]).stdout.strip()
