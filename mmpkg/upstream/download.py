"""Fetching a release tarball: streamed, resumed, cached, and never kept unless verified.

    CACHE/VERSION/NAME          a verified tarball      CACHE/VERSION/NAME.sig   its signature
    CACHE/VERSION/.NAME.part    a download under way    CACHE/VERSION/.NAME.lock one fetch at a time

The tarball is written to `.part` while its sha256 is computed from the same bytes; a download
cut short (a stall, a closed connection) is resumed with an HTTP Range request, within this
run or the next. Only a complete file whose signature gpgv accepts (and whose sha256 matches,
when one is given) is renamed into the cache, next to its signature; a cached file is trusted
only with that signature, and checked again on every use.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

from mmpkg.errors import OutputError, UpstreamError
from mmpkg.release import Arch, Edition, tarball_name
from mmpkg.upstream import signature
from mmpkg.upstream.http import Deadline, Http, check
from mmpkg.upstream.keys import FINGERPRINTS, KEY_URL
from mmpkg.versions import MattermostVersion

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
                raise UpstreamError(f"--keyring {keyring}: no such file")
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
    `dest` when given (else its path in the cache). `keys` comes from trusted_keys()."""
    http = http or Http()
    name = tarball_name(version, edition, arch)
    url = f"{base_url.rstrip('/')}/{version}/{name}"
    folder = (cache or default_cache()) / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    want = sha256.lower() if sha256 else None
    with _locked(folder / f".{name}.lock"), tempfile.TemporaryDirectory(prefix="mmpkg-verify-") as tmp:
        ring = Path(tmp) / "trusted.gpg"
        ring.write_bytes(keys)
        found = _from_cache(folder / name, ring, want)
        if found is None:
            found = _download(http, url, folder / name, ring, want, progress)
    if dest is None:
        return found
    return Fetched(_deliver(found.path, dest), found.sha256, found.size, found.downloaded, found.signer)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _from_cache(cached: Path, ring: Path, want: str | None) -> Fetched | None:
    sig = cached.with_name(cached.name + ".sig")
    if not (cached.is_file() and sig.is_file()):
        return None
    try:
        signer = signature.verify(cached, sig, ring, what=f"cached {cached.name}")
    except UpstreamError as exc:
        log.warning("%s; fetching it again", exc)
        cached.unlink()
        sig.unlink()
        return None
    digest = _sha256(cached)
    _check_sha256(cached.name, digest, want)
    log.info("%s: in the cache, signature checked", cached.name)
    return Fetched(cached, digest, cached.stat().st_size, 0, signer)


def _download(
    http: Http, url: str, cached: Path, ring: Path, want: str | None, progress: Progress | None
) -> Fetched:
    name = cached.name
    what = f"signature of {name}"
    # A detached signature is a few hundred bytes: a longer answer is no signature.
    sig_bytes = check(http.get(f"{url}.sig", what=what, limit=MAX_SIG_BYTES), what).content
    part = cached.with_name(f".{name}.part")
    sig_part = cached.with_name(f".{name}.sig.part")
    digest, size, sent = _stream(http, url, part, progress)
    try:
        _check_sha256(name, digest, want)
        sig_part.write_bytes(sig_bytes)
        signer = signature.verify(part, sig_part, ring, what=name)
    except BaseException:
        # A complete file that failed is no start for a resume: the next run starts over.
        part.unlink(missing_ok=True)
        sig_part.unlink(missing_ok=True)
        raise
    os.replace(sig_part, cached.with_name(f"{name}.sig"))
    os.replace(part, cached)
    log.info("%s: downloaded %d bytes, signed by %s", name, sent, signer)
    return Fetched(cached, digest, size, sent, signer)


def _stream(http: Http, url: str, part: Path, progress: Progress | None) -> tuple[str, int, int]:
    """Download `url` into `part`, resuming what is there; (sha256, size, bytes sent). A body
    longer than a tarball may be, or one that cannot be written, removes `part`: neither is a
    start for a resume."""
    sent, why = 0, ""
    for attempt in range(http.attempts):
        if attempt:
            time.sleep(http.backoff * 2 ** (attempt - 1))
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with http.stream(url, http.download_deadline, headers=headers) as (response, deadline):
            if response.status_code == 416 and have:
                part.unlink()  # longer than the file: not a prefix of it
                continue
            check(response, part.name.removeprefix(".").removesuffix(".part"))
            total = _total(response)
            _check_size(url, part, total or 0, http.max_tarball)
            if response.status_code != 206:
                have = 0  # the server sent the whole file
            hasher = _hash_prefix(part, have)
            try:
                with open(part, "ab" if have else "wb", buffering=0) as out:
                    for chunk in _chunks(response):
                        _check_size(url, part, have + len(chunk), http.max_tarball)
                        _write(out, chunk, part)
                        hasher.update(chunk)
                        have += len(chunk)
                        sent += len(chunk)
                        if progress:
                            progress(part.name[1:-5], have, total)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                why = _interrupted(exc, http, have, total, deadline)
                log.info("%s: %s; resuming", url, why)
                continue
            if deadline.expired:  # a body with no length just ends when its socket is shut down
                why = _interrupted(None, http, have, total, deadline)
                log.info("%s: %s; resuming", url, why)
                continue
        if total is not None and have != total:
            why = f"the body was cut short at {have} of {total} bytes"
            continue
        return hasher.hexdigest(), have, sent
    raise UpstreamError(f"{url}: download failed after {http.attempts} attempts: {why}")


def _check_size(url: str, part: Path, size: int, limit: int) -> None:
    if size > limit:
        part.unlink(missing_ok=True)
        raise UpstreamError(
            f"{url}: more than {limit} bytes ({limit >> 20} MiB), larger than a release tarball is; "
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


def _hash_prefix(part: Path, length: int) -> hashlib._Hash:
    hasher = hashlib.sha256()
    if length:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                hasher.update(block)
    return hasher


def _sha256(path: Path) -> str:
    return _hash_prefix(path, path.stat().st_size).hexdigest()


def _check_sha256(name: str, digest: str, want: str | None) -> None:
    if want is not None and digest != want:
        raise UpstreamError(f"{name}: sha256 is {digest}, not the {want} given with --sha256")


def _deliver(cached: Path, dest: Path) -> Path:
    """A hard link to the cached file in `dest` (a copy across file systems), renamed into place."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / cached.name
    tmp = dest / f".{cached.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(cached, tmp)
    except OSError:
        shutil.copyfile(cached, tmp)
    os.replace(tmp, target)
    return target
