"""Fetching a release tarball: streamed, resumed, cached, never kept unless verified, and used
only as the very file that was verified.

    CACHE/VERSION/NAME          a verified tarball      CACHE/VERSION/NAME.sig   its signature
    CACHE/VERSION/.NAME.part    a download under way    CACHE/VERSION/.NAME.lock one fetch at a time

The cache must be the running user's alone: whoever else could write a directory of it could
swap a tarball between its check and its use, or plant a link where a download goes, so such a
cache is refused. Nothing in it is opened through a symbolic link, a partial download is made
with O_EXCL, and one is resumed only if it is a regular file of ours.

The tarball is written to `.part` while its sha256 is computed from the same bytes; a download
cut short (a stall, a closed connection) is resumed with an HTTP Range request, within this
run or the next. Only a complete file whose signature gpgv accepts (and whose sha256 matches,
when one is given) is renamed into the cache, next to its signature; a cached file is trusted
only with that signature, and checked again on every use.

What is checked is what is used: held() opens the tarball once, and gpgv, the sha256 and then
the caller (the build) all read that open file, never the path again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import requests
import urllib3

from mmpkg.errors import OutputError, ReleaseError, UpstreamError, UsageError, cannot_make
from mmpkg.mattermost.release import Arch, Edition, OpenTarball, tarball_name
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.upstream import signature
from mmpkg.upstream.http import Deadline, Http, check, shown
from mmpkg.upstream.release_keys import FINGERPRINTS, KEY_URL

log = logging.getLogger("mmpkg")

RELEASES_URL = "https://releases.mattermost.com"
CHUNK = 1 << 16
MAX_SIG_BYTES = 1 << 16
# Upstream's key file is about 2 KiB.
MAX_KEY_BYTES = 1 << 20

# (file name, bytes so far, total or None): the CLI draws it; the library only reports.
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    downloaded: int  # bytes transferred by this fetch: 0 when the cache had it
    signer: str  # fingerprint of the key that signed it


@dataclass(frozen=True)
class Held:
    """A verified tarball, held open since its verification: read it through `file` (or
    `tarball`), never through `fetched.path`, which names whatever is there by then."""

    fetched: Fetched
    file: BinaryIO

    @property
    def tarball(self) -> OpenTarball:
        return OpenTarball(self.fetched.path.name, self.file)


def default_cache() -> Path:
    """$MMPKG_CACHE, else $XDG_CACHE_HOME/mmpkg, else ~/.cache/mmpkg."""
    if os.environ.get("MMPKG_CACHE"):
        return Path(os.environ["MMPKG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmpkg"


def trusted_keys(
    keyring: Path | None = None,
    *,
    trusted: Sequence[str] = FINGERPRINTS,
    key_url: str = KEY_URL,
    http: Http | None = None,
) -> bytes:
    """A binary keyring of the release-signing keys: those in `keyring` (the operator's own
    choice, taken as given), else the key at `key_url` if its fingerprint is in `trusted`."""
    with tempfile.TemporaryDirectory(prefix="mmpkg-keys-") as tmp:
        out = Path(tmp) / "trusted.gpg"
        if keyring is not None:
            if not keyring.is_file():
                raise UsageError(f"--keyring {keyring}: no such file")
            found = signature.trusted_keyring(keyring, (), out, source=str(keyring))
        else:
            fetched = Path(tmp) / "fetched.key"
            what = "release-signing key"
            response = check((http or Http()).get(key_url, what=what, limit=MAX_KEY_BYTES), what)
            fetched.write_bytes(response.content)
            found = signature.trusted_keyring(fetched, trusted, out, source=key_url)
        log.debug("release-signing keys: %s", ", ".join(found))
        return out.read_bytes()


def fetch(
    version: MattermostVersion,
    *,
    keys: bytes,
    edition: Edition = Edition.ENTERPRISE,
    arch: Arch = Arch.AMD64,
    dest: Path | None = None,
    base_url: str = RELEASES_URL,
    sha256: str | None = None,
    cache: Path | None = None,
    http: Http | None = None,
    progress: Progress | None = None,
) -> Fetched:
    """The verified tarball of `version`, from the cache or upstream, linked or copied into
    `dest` when given (else its path in the cache; to read it, see held()). `keys` comes from
    trusted_keys()."""
    with held(
        version, keys=keys, edition=edition, arch=arch, base_url=base_url, sha256=sha256, cache=cache,
        http=http, progress=progress,
    ) as found:  # fmt: skip
        if dest is None:
            return found.fetched
        return replace(found.fetched, path=_deliver(found, dest))


@contextlib.contextmanager
def held(
    version: MattermostVersion,
    *,
    keys: bytes,
    edition: Edition = Edition.ENTERPRISE,
    arch: Arch = Arch.AMD64,
    base_url: str = RELEASES_URL,
    sha256: str | None = None,
    cache: Path | None = None,
    http: Http | None = None,
    progress: Progress | None = None,
) -> Iterator[Held]:
    """The verified tarball of `version`, from the cache or upstream, held open for the block.
    A ReleaseError out of the block (the contents are not the release the name claims) removes
    it from the cache."""
    http = http or Http()
    name = tarball_name(version, edition, arch)
    url = f"{base_url.rstrip('/')}/{version}/{name}"
    folder = _private_folder(check_cache(cache) / str(version))
    want = sha256.lower() if sha256 else None
    with _locked(folder / f".{name}.lock"), tempfile.TemporaryDirectory(prefix="mmpkg-verify-") as tmp:
        ring = Path(tmp) / "trusted.gpg"
        ring.write_bytes(keys)
        found = _from_cache(folder / name, ring, want)
        if found is None:
            found = _download(http, url, folder / name, ring, want, progress)
    with found.file:
        try:
            yield found
        except ReleaseError:
            # Validly signed, but not the release its name says (another version or edition
            # inside): kept, it would fail every later run, even once upstream has fixed it.
            with _locked(folder / f".{name}.lock"):
                _evict(folder / name, found.file)
            raise


def check_cache(cache: Path | None = None) -> Path:
    """The cache directory (`cache`, else default_cache()), made if need be; a UsageError if
    another user could write it."""
    root = cache or default_cache()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_make(exc, "--cache", root) from None
    _check_private(root, os.stat(root))
    return root


def _private_folder(folder: Path) -> Path:
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o755)
    _check_private(folder, os.lstat(folder))
    return folder


def _check_private(folder: Path, st: os.stat_result) -> None:
    swap = "could swap a tarball once mmpkg has checked it"
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"cache directory {folder} is not a directory: remove it, or choose another --cache")
    if st.st_uid != os.geteuid():
        raise UsageError(
            f"cache directory {folder} belongs to uid {st.st_uid}, not to uid {os.geteuid()}: its owner "
            f"{swap}; use a directory of your own (--cache DIR)"
        )
    if st.st_mode & 0o022:
        raise UsageError(
            f"cache directory {folder} can be written by other users (mode {stat.S_IMODE(st.st_mode):o}), "
            f"who {swap}: chmod go-w {folder}, or choose another --cache"
        )


def _ours(st: os.stat_result) -> bool:
    """A regular file of this user's that no other may write."""
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _discard(path: Path, what: str) -> None:
    """Remove what was found at `path`: a link itself, never what it points to."""
    log.warning("%s: %s, not a file of mmpkg's; removed", path, what)
    path.unlink()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        _discard(path, "a symbolic link")
        fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # which releases the lock


def _open_cached(path: Path) -> io.FileIO | None:
    """`path` open for reading when it is a file of ours; anything else there is removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        _discard(path, "a symbolic link")
        return None
    file = os.fdopen(fd, "rb", buffering=0)
    if not _ours(os.fstat(fd)):
        file.close()
        _discard(path, "another user's or a special file")
        return None
    return file


def _read_cached(path: Path) -> bytes | None:
    """A cached signature: at most one byte more than a signature may be (_verify refuses it)."""
    file = _open_cached(path)
    if file is None:
        return None
    with file:
        return file.read(MAX_SIG_BYTES + 1)


@contextlib.contextmanager
def _closed_on_error(file: BinaryIO) -> Iterator[None]:
    try:
        yield
    except BaseException:
        file.close()
        raise


def _from_cache(cached: Path, ring: Path, want: str | None) -> Held | None:
    sig_path = cached.with_name(cached.name + ".sig")
    sig = _read_cached(sig_path)
    file = _open_cached(cached) if sig is not None else None
    if sig is None or file is None:
        return None
    with _closed_on_error(file):
        try:
            signer = _verify(file, sig, ring, what=f"cached {cached.name}")
            digest, size = _sha256(file)
            # Signed, but not the file published with that sha256: upstream has signed a wrong
            # file once, and fixed it since. It must not stand in the way of the right one.
            _check_sha256(f"cached {cached.name}", digest, want)
        except UpstreamError as exc:
            file.close()
            log.warning("%s; fetching it again", exc)
            _remove(cached)
            return None
    log.info("%s: in the cache, signature checked", cached.name)
    return Held(Fetched(cached, digest, size, 0, signer), file)


def _remove(cached: Path) -> None:
    cached.unlink(missing_ok=True)
    cached.with_name(cached.name + ".sig").unlink(missing_ok=True)


def _evict(cached: Path, file: BinaryIO) -> None:
    """Remove `cached` while it is still the file held open: another run may have put the
    right one there since."""
    try:
        there, held = os.lstat(cached), os.fstat(file.fileno())
    except FileNotFoundError:
        return
    if (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino):
        log.warning("%s: not the release it claims to be; removed from the cache", cached)
        _remove(cached)


def _verify(file: BinaryIO, sig: bytes, ring: Path, *, what: str) -> str:
    """The signer of the open `file`, by the signature `sig`, written beside the keyring (in a
    directory of this process's own)."""
    if len(sig) > MAX_SIG_BYTES:
        raise UpstreamError(f"{what}: its .sig is larger than {MAX_SIG_BYTES} bytes: no detached signature")
    sig_path = ring.with_name("tarball.sig")
    sig_path.write_bytes(sig)
    return signature.verify(file, sig_path, ring, what=what)


def _download(
    http: Http, url: str, cached: Path, ring: Path, want: str | None, progress: Progress | None
) -> Held:
    name = cached.name
    what = f"signature of {name}"
    # A detached signature is a few hundred bytes: a longer answer is no signature.
    sig_bytes = check(http.get(f"{url}.sig", what=what, limit=MAX_SIG_BYTES), what).content
    part = cached.with_name(f".{name}.part")
    sig_part = cached.with_name(f".{name}.sig.part")
    file = _open_part(part)
    with _closed_on_error(file):
        digest, size, sent = _stream(http, url, file, part, progress)
    try:
        _check_sha256(name, digest, want)
        signer = _verify(file, sig_bytes, ring, what=name)
        _write_new(sig_part, sig_bytes)
        os.replace(sig_part, cached.with_name(f"{name}.sig"))
        os.replace(part, cached)
    except BaseException:
        # A complete file that failed is no start for a resume: the next run starts over.
        file.close()
        part.unlink(missing_ok=True)
        sig_part.unlink(missing_ok=True)
        raise
    log.info("%s: downloaded %d bytes, signed by %s", name, sent, signer)
    return Held(Fetched(cached, digest, size, sent, signer), file)


def _open_part(part: Path) -> io.FileIO:
    """The partial download to resume, or a new one, made with O_EXCL. Anything else found at
    `part` (a symbolic link, a special file, another user's, a file with other names too) is
    removed, never followed nor written."""

    def resumable(st: os.stat_result) -> bool:
        return _ours(st) and st.st_nlink == 1

    with contextlib.suppress(FileNotFoundError):
        if resumable(os.lstat(part)):
            fd = os.open(part, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            if resumable(os.fstat(fd)):
                return os.fdopen(fd, "r+b", buffering=0)
            os.close(fd)
        _discard(part, "a link, a special file or another user's")
    fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    return os.fdopen(fd, "r+b", buffering=0)


def _write_new(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)  # a stale one, or a link planted there: never written through
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _stream(
    http: Http, url: str, file: io.FileIO, part: Path, progress: Progress | None
) -> tuple[str, int, int]:
    """Download `url` into the open `file` (at `part`), resuming what it holds; (sha256, size,
    bytes sent). A body longer than a tarball may be, or one that cannot be written, removes
    `part`: neither is a start for a resume."""
    sent, why, where = 0, "", shown(url)
    for attempt in range(http.attempts):
        if attempt:
            time.sleep(http.backoff * 2 ** (attempt - 1))
        have = os.fstat(file.fileno()).st_size
        headers = {"Range": f"bytes={have}-"} if have else {}
        with http.stream(url, http.download_deadline, headers=headers) as (response, deadline):
            if response.status_code == 416 and have:
                file.truncate(0)  # longer than the file: not a prefix of it
                continue
            check(response, part.name.removeprefix(".").removesuffix(".part"))
            total = _total(response)
            _check_size(where, part, total or 0, http.max_tarball)
            if response.status_code != 206:
                have = 0  # the server sent the whole file
                file.truncate(0)
            hasher = _hash_prefix(file, have)
            file.seek(have)
            try:
                for chunk in _chunks(response):
                    _check_size(where, part, have + len(chunk), http.max_tarball)
                    _write(file, chunk, part)
                    hasher.update(chunk)
                    have += len(chunk)
                    sent += len(chunk)
                    if progress:
                        progress(part.name[1:-5], have, total)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                why = _interrupted(exc, http, have, total, deadline)
                log.info("%s: %s; resuming", where, why)
                continue
            if deadline.expired:  # a body with no length just ends when its socket is shut down
                why = _interrupted(None, http, have, total, deadline)
                log.info("%s: %s; resuming", where, why)
                continue
        if total is not None and have != total:
            why = f"the body was cut short at {have} of {total} bytes"
            continue
        return hasher.hexdigest(), have, sent
    raise UpstreamError(f"{where}: download failed after {http.attempts} attempts: {why}")


def _check_size(where: str, part: Path, size: int, limit: int) -> None:
    if size > limit:
        part.unlink(missing_ok=True)
        raise UpstreamError(
            f"{where}: more than {limit} bytes ({limit >> 20} MiB), larger than a release tarball is; "
            f"not downloaded (MMPKG_MAX_TARBALL_MIB sets another limit)"
        )


def _write(out: io.FileIO, chunk: bytes, part: Path) -> None:
    """All of `chunk`, or an OutputError (a full disk is no download cut short)."""
    view = memoryview(chunk)
    try:
        while view:
            view = view[out.write(view) or 0 :]
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise OutputError(
            f"cannot write {part.name.removeprefix('.').removesuffix('.part')} into the cache "
            f"{part.parent}: {exc.strerror}; free some space there, or choose another --cache"
        ) from exc


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body's bytes as they arrive, undecoded (a Range continues the file's own bytes).
    read1() hands over what came before a stall or a cut; read() would drop it with the error."""
    while chunk := response.raw.read1(CHUNK, decode_content=False):
        yield chunk


def _total(response: requests.Response) -> int | None:
    content_range = re.fullmatch(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", ""))
    if response.status_code == 206 and content_range:
        return int(content_range[1])
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


def _interrupted(exc: Exception | None, http: Http, have: int, total: int | None, deadline: Deadline) -> str:
    of = f" of {total}" if total is not None else ""
    if deadline.expired:
        return f"the download took longer than {deadline.seconds:g} s ({have}{of} bytes)"
    if "timed out" in str(exc).lower():
        return f"the server stopped sending at {have}{of} bytes (nothing for {http.read_timeout:g} s)"
    return f"the body was cut short at {have}{of} bytes"


def _hash_prefix(file: BinaryIO, length: int) -> hashlib._Hash:
    """The sha256 of the first `length` bytes of the open `file`."""
    hasher = hashlib.sha256()
    file.seek(0)
    while length > 0 and (block := file.read(min(CHUNK, length))):
        hasher.update(block)
        length -= len(block)
    return hasher


def _sha256(file: BinaryIO) -> tuple[str, int]:
    """The sha256 and the size of all of the open `file`."""
    size = os.fstat(file.fileno()).st_size
    return _hash_prefix(file, size).hexdigest(), size


def _check_sha256(name: str, digest: str, want: str | None) -> None:
    if want is not None and digest != want:
        raise UpstreamError(f"{name}: sha256 is {digest}, not the {want} given with --sha256")


def _deliver(found: Held, dest: Path) -> Path:
    """The verified file in `dest`, renamed into place: a hard link to the cached one while that
    is still the very file held open, else (another file system, say) a copy of what is held."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_make(exc, "--dest", dest) from None
    name = found.fetched.path.name
    target, tmp = dest / name, dest / f".{name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(found.fetched.path, tmp, follow_symlinks=False)
        linked, held = os.lstat(tmp), os.fstat(found.file.fileno())
        if (linked.st_dev, linked.st_ino) != (held.st_dev, held.st_ino):
            raise FileExistsError(tmp)  # the cache's path names another file by now
    except OSError:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as out:
            found.file.seek(0)
            shutil.copyfileobj(found.file, out, CHUNK)
    os.replace(tmp, target)
    return target
