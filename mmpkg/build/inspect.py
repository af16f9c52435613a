"""Read a release tarball in one streaming pass, never trusting it.

The archive is read member by member (`tarfile` stream mode), so memory stays flat whatever the
release's size. ISA-L's gunzip (isal), about 2.5 times zlib's speed, runs in a thread of its
own, reading and hashing the tarball, while this one writes and hashes the files.

Every member is checked before anything is written, and files are only ever written below a
private directory the caller owns. What the file name claims (version, edition,
architecture) is checked against what the contents say: the build facts upstream stamps into
`bin/mattermost` (read from its ELF symbol table, mmpkg/build/gobinary.py; a binary without one says
nothing), the edition's licence file and the prepackaged plugins' platform suffix.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, cast

from isal import igzip_threaded, isal_zlib

from mmpkg.build.gobinary import read_build_values
from mmpkg.errors import ReleaseError, output_error
from mmpkg.mattermost.release import Arch, Edition, OpenTarball, Release, facts_from_name
from mmpkg.mattermost.versions import MattermostVersion

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# isal's stubs declare its error an instance, not a class.
_GUNZIP_ERROR = cast("type[Exception]", isal_zlib.error)

TOP = "mattermost"
CHUNK = 1 << 20
CONFIG = "config/config.json"
# Upstream's is about 30 KiB; anything near this is not a configuration file.
CONFIG_LIMIT = 16 << 20

# Release builds stamp these into the binary with -ldflags -X; they are read from its symbol
# table (mmpkg/build/gobinary.py), its build information having no -ldflags under -trimpath.
_BUILD_VALUES = ("BuildNumber", "BuildEnterpriseReady")
_PLUGIN_ARCH = re.compile(r"-linux-(amd64|arm64)\.tar\.gz$")
_ELF_MACHINE = {62: Arch.AMD64, 183: Arch.ARM64}


@dataclass
class _Seen:
    kind: str  # "dir", "file", "symlink"
    # A file's md5, a link's target. md5 tells two copies of a member apart and is what the
    # .deb's md5sums hold; what vouches for the contents is the tarball's sha256 and signature.
    digest: str = ""
    mode: int = 0


@dataclass
class _Scan:
    members: dict[str, _Seen] = field(default_factory=dict)
    file_count: int = 0
    unpacked_bytes: int = 0
    newest: int = 0
    build_number: str | None = None
    enterprise_ready: str | None = None
    elf_arch: Arch | None = None
    plugin_arches: set[Arch] = field(default_factory=set)
    config: bytes = b""


def inspect_release(tarball: Path | OpenTarball, *, extract_to: Path | None = None) -> Release:
    """Check `tarball` (a path, or a file held open) and return what it is; with `extract_to`,
    also unpack `mattermost/` there.

    Files are written with normalised modes (0644, or 0755 if executable; no setuid, setgid,
    sticky or world-writable bits). Raises ReleaseError with one line saying what is wrong with
    the tarball, and OSError when `extract_to` is full or refuses writes.
    """
    name = tarball.name
    if isinstance(tarball, Path) and not tarball.is_file():
        raise ReleaseError(f"{tarball}: no such file")
    if extract_to is not None:
        extract_to.mkdir(parents=True, exist_ok=True)
    scan = _Scan()
    digest = hashlib.sha256()
    try:
        with _open(tarball) as raw:
            hashing = _HashingReader(raw, digest)
            with (
                igzip_threaded.open(hashing, "rb") as gunzip,  # type: ignore[no-untyped-call]
                tarfile.open(fileobj=gunzip, mode="r|") as tar,
            ):
                for member in tar:
                    _take(member, tar, scan, extract_to, name)
                # What follows the end-of-archive marker, to the end of the gzip stream.
                while gunzip.read(CHUNK):
                    pass
            hashing.drain()
    except (tarfile.TarError, EOFError, _GUNZIP_ERROR, gzip.BadGzipFile) as exc:
        raise ReleaseError(f"{name} is not a complete gzip'd tar archive ({exc}); download it again") from exc
    except OSError as exc:
        # Reading the tarball failed, or writing the unpacked files did: a full or read-only
        # disk is left to the caller, who knows what the disk is for; anything else is the
        # archive's fault (a name too long, a member that cannot be a file).
        if extract_to is not None and output_error(exc, extract_to):
            raise
        raise ReleaseError(f"{name}: cannot unpack it: {exc.strerror or exc}") from exc
    return _conclude(name, scan, digest.hexdigest(), hashing.count)


def _open(tarball: Path | OpenTarball) -> io.BufferedReader:
    if isinstance(tarball, Path):
        return tarball.open("rb")
    # A file object of its own on the same open file, read from the start: closing it leaves
    # the caller's open.
    raw = os.fdopen(os.dup(tarball.file.fileno()), "rb")
    raw.seek(0)
    return raw


class _HashingReader(io.RawIOBase):
    """A file wrapper that hashes every byte gunzip reads, so the sha256 costs no second pass."""

    def __init__(self, raw: io.BufferedReader, digest: hashlib._Hash) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        n = self._raw.readinto(view) or 0
        self._digest.update(view[:n])
        self.count += n
        return n

    def drain(self) -> None:
        """Hash whatever gunzip left unread."""
        while self.read(CHUNK):
            pass


def _take(
    member: tarfile.TarInfo,
    tar: tarfile.TarFile,
    scan: _Scan,
    dest: Path | None,
    name: str,
) -> None:
    rel = _relative(member.name, name)
    scan.newest = max(scan.newest, int(member.mtime))
    if rel == "":
        if not member.isdir():
            raise ReleaseError(f"{name}: '{TOP}' must be a directory")
        return
    if member.isdir():
        _remember(scan, rel, _Seen("dir"), name)
        if dest is not None:
            _safe_parent(dest, rel, name)
            (dest / rel).mkdir(mode=0o755, exist_ok=True)
        return
    if member.issym():
        _check_link_target(rel, member.linkname, name)
        _remember(scan, rel, _Seen("symlink", digest=member.linkname), name)
        if dest is not None:
            os.symlink(member.linkname, _fresh(_safe_parent(dest, rel, name) / PurePosixPath(rel).name))
        return
    if member.islnk():
        target = _relative(member.linkname, name)
        seen = scan.members.get(target)
        if seen is None or seen.kind != "file":
            raise ReleaseError(
                f"{name}: hard link {member.name} points at {member.linkname}, "
                "which is not a file earlier in the archive"
            )
        _remember(scan, rel, _Seen("file", seen.digest, seen.mode), name)
        if dest is not None:
            os.link(dest / target, _fresh(_safe_parent(dest, rel, name) / PurePosixPath(rel).name))
        return
    if not member.isfile():
        raise ReleaseError(
            f"{name}: {member.name} is a device, fifo or other special file; "
            "a release contains only files, directories and links"
        )
    mode = 0o755 if member.mode & 0o111 else 0o644
    fileobj = tar.extractfile(member)
    assert fileobj is not None  # a regular file always has content
    first = rel not in scan.members
    digest = _copy(fileobj, rel, scan, dest, mode, name)
    _remember(scan, rel, _Seen("file", digest, mode), name)
    if first:  # upstream's tarball holds some members twice
        scan.file_count += 1
        scan.unpacked_bytes += member.size
    m = _PLUGIN_ARCH.search(rel)
    if rel.startswith("prepackaged_plugins/") and m:
        scan.plugin_arches.add(Arch(m[1]))


def _copy(src: IO[bytes], rel: str, scan: _Scan, dest: Path | None, mode: int, name: str) -> str:
    """Stream one member to disk (if extracting), hashing it and reading build facts on the way."""
    digest = hashlib.md5(usedforsecurity=False)
    is_binary = rel == "bin/mattermost"
    is_config = rel == CONFIG
    config = bytearray()
    out: IO[bytes] | None = None
    if dest is not None:
        path = _fresh(_safe_parent(dest, rel, name) / PurePosixPath(rel).name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        out = os.fdopen(fd, "w+b")
    elif is_binary:
        # Its symbol table follows the data it points into: read back from a private copy.
        out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    try:
        first = True
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
            if is_config:
                config += chunk
                if len(config) > CONFIG_LIMIT:
                    raise ReleaseError(f"{name}: {TOP}/{CONFIG} is larger than {CONFIG_LIMIT >> 20} MiB")
            if is_binary and first and chunk[:4] == b"\x7fELF" and len(chunk) >= 20:
                machine = int.from_bytes(chunk[18:20], "little")
                scan.elf_arch = _ELF_MACHINE.get(machine)
            first = False
        if is_binary and out is not None:
            out.flush()
            values = read_build_values(out, _BUILD_VALUES)
            scan.build_number = values.get("BuildNumber")
            scan.enterprise_ready = values.get("BuildEnterpriseReady")
    finally:
        if out is not None:
            if dest is not None:
                os.fchmod(out.fileno(), mode)  # the caller's umask must not decide the mode
            out.close()
    if is_config:
        scan.config = bytes(config)
    return digest.hexdigest()


def _fresh(path: Path) -> Path:
    """`path`, emptied of an earlier copy of the same member (_remember checked they agree)."""
    if path.is_symlink() or path.exists():
        path.unlink()
    return path


def _relative(member_name: str, name: str) -> str:
    """The path below `mattermost/`, or raise if the member is anywhere else."""
    if member_name.startswith("/"):
        raise ReleaseError(f"{name}: member {member_name} has an absolute path")
    parts = PurePosixPath(member_name).parts
    if ".." in parts:
        raise ReleaseError(f"{name}: member {member_name} contains '..'")
    if any(ord(c) < 32 or ord(c) == 127 for c in member_name):
        raise ReleaseError(f"{name}: member {member_name!r} has a control character in its name")
    if not parts or parts[0] != TOP:
        raise ReleaseError(
            f"{name}: member {member_name} is outside the single '{TOP}/' top directory; "
            "this is not a Mattermost server release"
        )
    return "/".join(parts[1:])


def _check_link_target(rel: str, target: str, name: str) -> None:
    if target.startswith("/"):
        raise ReleaseError(f"{name}: symlink {TOP}/{rel} points at absolute path {target}")
    depth = 0
    for part in (*PurePosixPath(rel).parent.parts, *PurePosixPath(target).parts):
        depth = depth - 1 if part == ".." else depth + (part not in ("", "."))
        if depth < 0:
            raise ReleaseError(f"{name}: symlink {TOP}/{rel} points outside the release: {target}")


def _safe_parent(dest: Path, rel: str, name: str) -> Path:
    """The directory `rel` goes in, refusing to write through any symlink the archive made."""
    parent = dest
    for part in PurePosixPath(rel).parent.parts:
        parent = parent / part
        if parent.is_symlink():
            raise ReleaseError(f"{name}: {TOP}/{rel} would be written through a symlink")
        if not parent.exists():
            parent.mkdir(mode=0o755)
    return parent


def _remember(scan: _Scan, rel: str, seen: _Seen, name: str) -> None:
    before = scan.members.get(rel)
    if before is not None and before != seen:
        raise ReleaseError(f"{name}: {TOP}/{rel} appears twice with different contents")
    scan.members[rel] = seen


def _conclude(name: str, scan: _Scan, sha256: str, tarball_bytes: int) -> Release:
    binary = scan.members.get("bin/mattermost")
    if binary is None or binary.kind != "file":
        raise ReleaseError(f"{name}: there is no {TOP}/bin/mattermost; this is not a server release")
    config = scan.members.get(CONFIG)
    if config is None or config.kind != "file":
        raise ReleaseError(f"{name}: there is no {TOP}/{CONFIG}")
    _check_config(scan.config, name)

    claimed = facts_from_name(name)
    version = _version(name, scan, claimed.version)
    edition = _edition(name, scan, claimed.edition)
    arch = _arch(name, scan, claimed.arch)
    return Release(
        version=version,
        edition=edition,
        arch=arch,
        file_count=scan.file_count,
        unpacked_bytes=scan.unpacked_bytes,
        tarball_bytes=tarball_bytes,
        sha256=sha256,
        source_date_epoch=scan.newest,
        rewritten=_rewritten(scan),
        config=scan.config.decode(),
        md5sums=_md5sums(scan),
        directories=_directories(scan),
    )


def _md5sums(scan: _Scan) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((rel, seen.digest) for rel, seen in scan.members.items() if seen.kind == "file"))


def _directories(scan: _Scan) -> tuple[str, ...]:
    """The release's directories as installed (config/ and logs/ stay behind), parents first."""
    dirs = {rel for rel, seen in scan.members.items() if seen.kind == "dir"}
    for rel in scan.members:
        dirs.update(str(p) for p in PurePosixPath(rel).parents if str(p) != ".")
    return tuple(sorted(d for d in dirs if d.split("/")[0] not in ("config", "logs")))


def _rewritten(scan: _Scan) -> tuple[str, ...]:
    """The files UpdateAssetsSubpathInDir rewrites: client/root.html, then every manifest.json
    and *.css its walk of client/ meets, through a link to a file too (no member is below a
    linked directory: _safe_parent)."""
    found: set[str] = set()
    for rel, seen in scan.members.items():
        if not rel.startswith("client/") or not (rel.endswith("/manifest.json") or rel.endswith(".css")):
            continue
        if seen.kind == "symlink":
            rel = posixpath.normpath(posixpath.join(posixpath.dirname(rel), seen.digest))
        if rel != "client/root.html" and scan.members.get(rel, _Seen("dir")).kind == "file":
            found.add(rel)
    root_html = scan.members.get("client/root.html")
    return (*(["client/root.html"] if root_html and root_html.kind == "file" else []), *sorted(found))


def _check_config(text: bytes, name: str) -> None:
    try:
        data = json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"{name}: {TOP}/config/config.json is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReleaseError(f"{name}: {TOP}/config/config.json is not a JSON object")


def _version(name: str, scan: _Scan, claimed: MattermostVersion | None) -> MattermostVersion:
    found = None
    # A build number that is no release version (upstream's default is "dev") says nothing.
    with contextlib.suppress(ReleaseError):
        found = MattermostVersion.parse(scan.build_number) if scan.build_number else None
    if found and claimed and found != claimed:
        raise ReleaseError(f"{name}: the file name says version {claimed} but bin/mattermost is {found}")
    version = found or claimed
    if version is None:
        raise ReleaseError(
            f"{name}: cannot tell the version; keep upstream's file name (mattermost-X.Y.Z-linux-ARCH.tar.gz)"
        )
    return version


def _edition(name: str, scan: _Scan, claimed: Edition | None) -> Edition:
    by_licence = {e for e in Edition if (seen := scan.members.get(e.licence_file)) and seen.kind == "file"}
    if len(by_licence) != 1:
        raise ReleaseError(
            f"{name}: expected exactly one of {Edition.ENTERPRISE.licence_file} or "
            f"{Edition.TEAM.licence_file}; cannot tell the edition"
        )
    (found,) = by_licence
    if scan.enterprise_ready in ("true", "false"):
        ready = Edition.ENTERPRISE if scan.enterprise_ready == "true" else Edition.TEAM
        if ready != found:
            raise ReleaseError(f"{name}: the licence file says {found} but bin/mattermost is {ready}")
    if claimed and claimed != found:
        raise ReleaseError(f"{name}: the file name says {claimed} edition but the contents are {found}")
    return found


def _arch(name: str, scan: _Scan, claimed: Arch | None) -> Arch:
    found = set(scan.plugin_arches)
    if scan.elf_arch is not None:
        found.add(scan.elf_arch)
    if len(found) > 1:
        raise ReleaseError(f"{name}: contents are for several architectures: {sorted(found)}")
    if found and claimed and claimed not in found:
        (what,) = found
        raise ReleaseError(f"{name}: the file name says {claimed} but the contents are for {what}")
    arch = next(iter(found), None) or claimed
    if arch is None:
        raise ReleaseError(
            f"{name}: cannot tell the architecture; keep upstream's file name "
            "(mattermost-X.Y.Z-linux-ARCH.tar.gz)"
        )
    return arch
