"""Where a publish carries the tree: the operations it needs of a destination, and the two
kinds of destination there are. `S3Store` speaks the S3 API (AWS, Ceph RGW, MinIO, OpenStack
Swift's s3api) through boto3, which signs, retries and splits large files into parts;
`RsyncStore` is a directory, here or on a mirror reached by rsync or SSH.

Neither lists the destination: an S3 listing may lag what was written (Swift's container
listings are updated after the write, eventually), so a publish knows what the destination
holds from the state it keeps there (publishing.py), and a check asks for each object by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from mmpkg.errors import PublishError, UsageError
from mmpkg.repo.remote.objects import CACHE_CONTROL, Local, content_type
from mmpkg.tools.run import run

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
R = TypeVar("R")
JOBS = 8  # objects carried at once: enough to hide an object store's latency per request
_CHUNK = 8 << 20  # the part size of a multipart upload, and what one part holds in memory


@dataclass(frozen=True)
class Stat:
    size: int
    sha256: str | None  # as recorded when it was written, where the store records it


class Store(Protocol):
    url: str

    def read(self, key: str) -> bytes | None:
        """The object at `key`, or None when there is none."""

    def write(self, key: str, data: bytes) -> None:
        """A small object of mmpkg's own (its state), never cached by a CDN."""

    def put(self, files: Sequence[Local], *, together: bool = False) -> None:
        """Each file at its key, with its cache headers; all written, or an error. `together`:
        the files are a publish's top files, to be shown as nearly at once as the store can:
        one by one in the order given where it cannot do better."""

    def delete(self, keys: Sequence[str]) -> None:
        """The objects at `keys`; a key already gone is no error."""

    def stat(self, keys: Sequence[str]) -> dict[str, Stat]:
        """Size (and recorded SHA-256) of the objects at `keys` that exist."""

    def sha256(self, key: str) -> str | None:
        """The SHA-256 of the object's content, read through, or None when there is none."""


def open_store(dest: str, *, jobs: int = JOBS, endpoint_url: str | None = None) -> Store:
    """The store DEST names: s3://BUCKET[/PREFIX], else a directory or an rsync target
    (HOST:PATH, USER@HOST:PATH, rsync://HOST/MODULE/PATH)."""
    if dest.startswith("s3://"):
        bucket, _, prefix = dest.removeprefix("s3://").partition("/")
        if not bucket:
            raise UsageError(f"{dest}: name the bucket, as in s3://BUCKET/PREFIX")
        return S3Store(bucket, prefix.strip("/"), jobs=jobs, endpoint_url=endpoint_url)
    if re.match(r"^[a-z][a-z0-9+.-]*://", dest) and not dest.startswith("rsync://"):
        raise UsageError(
            f"{dest}: not a destination mmpkg publishes to; use s3://BUCKET/PREFIX, a directory, HOST:PATH or rsync://HOST/MODULE"
        )
    return RsyncStore(dest.rstrip("/") or "/")


def _parallel(jobs: int, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(work, items))


# -- S3 ---------------------------------------------------------------------------------------


class S3Store:
    """A bucket and prefix on any S3 API. Endpoint, region and credentials come from where every
    AWS tool reads them: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_PROFILE, the
    shared config and credentials files, an instance role."""

    def __init__(self, bucket: str, prefix: str, *, jobs: int, endpoint_url: str | None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix, self.jobs = bucket, prefix, jobs
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(
            # Stores other than AWS (Swift, Ceph, MinIO) are addressed by path, not by a
            # bucket's own host name, which needs DNS set up for each bucket.
            s3={"addressing_style": "path" if endpoint else "auto"},
            retries={"max_attempts": 8, "mode": "standard"},
            # Checksums only where the API demands them: stores that do not speak the newer
            # trailing-checksum uploads (Swift's s3api, older Ceph and MinIO) refuse them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=max(10, jobs * 2),
        )
        self.client: S3Client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> bytes | None:
        with _s3_errors(self, key):
            try:
                body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None
        return body

    def write(self, key: str, data: bytes) -> None:
        with _s3_errors(self, key):
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, CacheControl="no-store",
                ContentType="application/json",
            )  # fmt: skip

    def put(self, files: Sequence[Local], *, together: bool = False) -> None:
        from boto3.s3.transfer import TransferConfig

        # Each file in parts of _CHUNK, a few at a time: memory stays the same whatever a
        # package weighs.
        transfer = TransferConfig(multipart_threshold=_CHUNK, multipart_chunksize=_CHUNK, max_concurrency=4)

        def one(f: Local) -> None:
            extra = {
                "CacheControl": CACHE_CONTROL[f.kind],
                "ContentType": content_type(f.key),
                "Metadata": {"sha256": f.sha256},
            }
            with _s3_errors(self, f.key):
                self.client.upload_file(
                    str(f.path), self.bucket, self._key(f.key), ExtraArgs=extra, Config=transfer
                )

        if together:
            # S3 replaces one object at a time: in order, each after the one before it.
            for f in files:
                one(f)
        else:
            _parallel(self.jobs, one, files)

    def delete(self, keys: Sequence[str]) -> None:
        def one(key: str) -> None:
            with _s3_errors(self, key):
                self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

        _parallel(self.jobs, one, keys)

    def stat(self, keys: Sequence[str]) -> dict[str, Stat]:
        def one(key: str) -> tuple[str, Stat | None]:
            with _s3_errors(self, key):
                try:
                    head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                except self.client.exceptions.ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                        return key, None
                    raise
            return key, Stat(int(head["ContentLength"]), head.get("Metadata", {}).get("sha256"))

        return {key: st for key, st in _parallel(self.jobs, one, keys) if st is not None}

    def sha256(self, key: str) -> str | None:
        digest = hashlib.sha256()
        with _s3_errors(self, key):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            except self.client.exceptions.NoSuchKey:
                return None
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()


@contextlib.contextmanager
def _s3_errors(store: S3Store, key: str) -> Iterator[None]:
    """botocore's errors as one line each: what failed, at which object, and what to check."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"{store.url}/{key}"
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, text = error.get("Code", "?"), error.get("Message", "") or str(exc)
        if code == "NoSuchBucket":
            raise PublishError(f"{store.url}: no bucket {store.bucket}: create it, or name another") from None
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            raise PublishError(
                f"{where}: access denied ({code}): check the credentials (AWS_ACCESS_KEY_ID, "
                "AWS_PROFILE) and their rights on the bucket"
            ) from None
        raise PublishError(f"{where}: the store refused ({code}: {text})") from None
    except (BotoCoreError, Boto3Error) as exc:
        raise PublishError(f"{where}: {exc}; check the endpoint, the network and the credentials") from None


# -- a directory, or a mirror over rsync or SSH ---------------------------------------------


class RsyncStore:
    """A directory or mirror, written with rsync: each file goes to a temporary name beside its
    own and is renamed over it, so a reader never sees half a file."""

    def __init__(self, dest: str) -> None:
        self.url = dest
        self.remote = bool(re.match(r"^(rsync://|[^/]*:)", dest))

    def _rsync(self, *args: str) -> subprocess.CompletedProcess[str]:
        # rsync over SSH needs the user's own keys and agent, which run() keeps from tools.
        env = {
            k: v
            for k, v in os.environ.items()
            if k in ("HOME", "SSH_AUTH_SOCK", "RSYNC_RSH", "RSYNC_PASSWORD", "USER")
        }
        return run(["rsync", *args], env=env, check=False)

    def _checked(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise PublishError(
                f"{self.url}: rsync failed to {what}: {lines[-1] if lines else f'exit {proc.returncode}'}"
            )

    def _at(self, key: str) -> str:
        return f"{self.url}/{key}"

    def read(self, key: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="mmpkg-read-") as tmp:
            proc = self._rsync("--", self._at(key), f"{tmp}/object")
            if proc.returncode == 23 and not Path(tmp, "object").exists():
                return None  # no such file
            self._checked(proc, f"read {key}")
            return Path(tmp, "object").read_bytes()

    def write(self, key: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="mmpkg-write-") as tmp:
            Path(tmp, "object").write_bytes(data)
            os.chmod(Path(tmp, "object"), 0o644)
            self._checked(
                self._rsync("--mkpath", "--ignore-times", "--", f"{tmp}/object", self._at(key)),
                f"write {key}",
            )

    def put(self, files: Sequence[Local], *, together: bool = False) -> None:
        if not files:
            return
        trees = {f.path.parents[len(Path(f.key).parts) - 1] for f in files}
        (tree,) = trees  # every file of one publish comes from one tree
        with tempfile.NamedTemporaryFile("w", prefix="mmpkg-files-") as listing:
            listing.write("".join(f"{f.key}\n" for f in files))
            listing.flush()
            # --copy-links: dists/CHANNEL is a link to its generation, carried as what it shows;
            # --ignore-times: the publish compared hashes already, and sends only what differs.
            # --delay-updates, for the top files: all are sent under temporary names first, then
            # renamed into place one right after the other, so that a kill while they are sent
            # leaves the old ones whole, and none is shown long without the others.
            together_args = ["--delay-updates"] if together else []
            proc = self._rsync(
                "--recursive", "--mkpath", "--copy-links", "--ignore-times", "--times", "--chmod=D755,F644",
                *together_args, f"--files-from={listing.name}", "--", f"{tree}/", f"{self.url}/",
            )  # fmt: skip
        self._checked(proc, f"copy {len(files)} file(s)")

    def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        with (
            tempfile.TemporaryDirectory(prefix="mmpkg-none-") as empty,
            tempfile.NamedTemporaryFile("w", prefix="mmpkg-gone-") as listing,
        ):
            listing.write("".join(f"{k}\n" for k in keys))
            listing.flush()
            # Every name listed is missing from the empty source, so rsync deletes it there; its
            # directories are not, or rsync would take the whole name for vanished.
            for key in keys:
                Path(empty, key).parent.mkdir(parents=True, exist_ok=True)
            proc = self._rsync(
                "--recursive",
                "--delete-missing-args",
                f"--files-from={listing.name}",
                "--",
                f"{empty}/",
                f"{self.url}/",
            )
        self._checked(proc, f"delete {len(keys)} file(s)")

    def stat(self, keys: Sequence[str]) -> dict[str, Stat]:
        proc = self._rsync("--recursive", "--list-only", "--no-human-readable", "--", f"{self.url}/")
        if proc.returncode == 23 and "No such file or directory" in proc.stderr:
            return {}  # nothing published there yet
        self._checked(proc, "list the destination")
        sizes: dict[str, int] = {}
        for line in proc.stdout.splitlines():
            found = re.match(r"^-\S+\s+([\d,.]+)\s+\S+\s+\S+\s+(.+)$", line)
            if found:
                sizes[found.group(2)] = int(re.sub(r"[,.]", "", found.group(1)))
        return {k: Stat(sizes[k], None) for k in keys if k in sizes}

    def sha256(self, key: str) -> str | None:
        with tempfile.TemporaryDirectory(prefix="mmpkg-read-") as tmp:
            proc = self._rsync("--", self._at(key), f"{tmp}/object")
            if proc.returncode == 23 and not Path(tmp, "object").exists():
                return None
            self._checked(proc, f"read {key}")
            with open(Path(tmp, "object"), "rb") as fh:
                return hashlib.file_digest(fh, "sha256").hexdigest()
