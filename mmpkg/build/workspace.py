"""The private directory a build works in, and the move of finished packages into --out.

It sits beside the output directory, not inside it: on the same file system, so a finished
package is renamed into place, and out of the way of anything that scans the output directory
(an upload step, a repository tool, `find dist -name '*.deb'`), which never sees a half-written
package. Only when the directory above is not writable, or is another file system, does it go
inside, as a hidden directory.

A workspace is locked (flock(2) on the directory) for as long as its build runs. One whose lock
is free was left by a build that died (SIGKILL, a power cut): the next build beside the same
output directory removes it. The kernel drops the lock with the process, so a reused pid or a
stale pid file cannot keep dead staging alive or kill live staging.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mmpkg.errors import UsageError, cannot_make

PREFIX = ".mmpkg-build-"


@contextlib.contextmanager
def workspace(out: Path) -> Iterator[Path]:
    """A fresh, locked directory for a build into `out` (absolute), removed afterwards."""
    base = _base(out)
    for place in {base, out}:
        clear_stale(place)
    try:
        fd, path = _create_locked(base)
    except OSError as exc:
        # A directory that looks writable but takes no new directory (/proc, a FUSE mount),
        # found before the tarball is read.
        raise cannot_make(exc, "--out", out, inside=base) from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def check_output(out: Path) -> None:
    """Refuse, before anything is read or written, an output directory that cannot be one."""
    found = nearest_existing(out)
    if found.is_symlink() and not found.exists():
        raise UsageError(f"--out {out}: {found} is a broken symbolic link")
    if not found.is_dir():
        what = f"--out {out} is" if found == out else f"--out {out}: {found} is"
        raise UsageError(f"{what} a file, not a directory")
    if not os.access(found, os.W_OK | os.X_OK):
        read_only = os.statvfs(found).f_flag & os.ST_RDONLY
        reason = "is on a read-only file system" if read_only else "is not writable by you"
        raise UsageError(f"--out {out}: {found} {reason}; choose another directory")


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def nearest_existing(path: Path) -> Path:
    """`path` itself, or the closest directory above it that exists."""
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        path = path.parent
    return path


def _base(out: Path) -> Path:
    above = nearest_existing(out.parent)
    if not out.exists():
        return above  # `out` will be made in there: the same file system
    beside = above != out and os.access(above, os.W_OK | os.X_OK)
    if beside and above.stat().st_dev == out.stat().st_dev:
        return above
    return out


def clear_stale(place: Path) -> None:
    """Remove the workspaces in `place` whose build is gone (their lock is free)."""
    if not place.is_dir():
        return
    for entry in place.glob(f"{PREFIX}*"):
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue  # not a directory, or not ours to read
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a build is still working in it
            continue
        shutil.rmtree(entry, ignore_errors=True)
        os.close(fd)


def _create_locked(base: Path) -> tuple[int, Path]:
    while True:
        path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Another build's clear_stale may have taken it between mkdtemp and the lock.
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd, path
        except (BlockingIOError, FileNotFoundError):
            pass
        os.close(fd)


def move_into_out(built: list[Path], out: Path) -> list[Path]:
    """Rename the finished packages into `out`; if one cannot be, take back those already there."""
    out.mkdir(parents=True, exist_ok=True)
    placed: list[Path] = []
    try:
        for path in built:
            target = out / path.name
            os.replace(path, target)
            placed.append(target)
    except BaseException:
        for target in placed:
            target.unlink(missing_ok=True)
        raise
    return placed
