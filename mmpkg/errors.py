"""The one exception root. Library code raises these; only mmpkg/cli/dispatch.py turns them into messages."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path


class MmpkgError(Exception):
    """Something the user can fix: the message says what is wrong and what to do."""

    exit_code = 1

    @property
    def messages(self) -> tuple[str, ...]:
        """What the command line prints, each on its own `mmpkg: error:` line."""
        return (str(self),)


class UsageError(MmpkgError):
    """Bad command-line arguments or build configuration: the message names the flag or key."""

    exit_code = 2


class ReleaseError(MmpkgError):
    """The release tarball is broken, hostile or not what its name says."""

    exit_code = 3


class ToolMissingError(MmpkgError):
    """A native tool (dpkg-deb, rpmbuild, ...) is not installed."""

    exit_code = 4


class CommandError(MmpkgError):
    """A native tool ran and failed."""

    exit_code = 5

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class OutputError(MmpkgError):
    """The packages could not be written: the file system is full, or refused a write."""

    exit_code = 6


class Failures(MmpkgError):
    """Some of a command's work failed after the rest was done and reported (a sync's releases,
    its notification): one message and exit code each, and the command exits with the first."""

    def __init__(self, failures: Sequence[tuple[str, int]]) -> None:
        super().__init__("; ".join(message for message, _ in failures))
        self._messages = tuple(message for message, _ in failures)
        self.exit_code = failures[0][1]

    @property
    def messages(self) -> tuple[str, ...]:
        return self._messages


# errno values that are about the disk being written to, not about what is written.
_FULL = {errno.ENOSPC, errno.EDQUOT}
_REFUSED = {errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}


class RepoError(MmpkgError):
    """The package repository refused a change or is inconsistent: nothing was changed."""

    exit_code = 7


class UpgradePathError(MmpkgError):
    """Upstream's upgrade path does not lead from one version to the other with the versions at hand."""

    exit_code = 8


class UpstreamError(MmpkgError):
    """Upstream could not be reached or refused, or a release failed verification: nothing was kept."""

    exit_code = 9


class PublishError(MmpkgError):
    """The destination of a publish (an object store, a mirror) could not be reached or refused a
    write: what its readers see is the previous publish, or the new one; run the publish again."""

    exit_code = 10


# What a tool says when a write of its failed with ENOSPC (run() gives tools LC_ALL=C.UTF-8).
NO_SPACE = "No space left on device"


def output_error(exc: OSError, where: Path) -> OutputError | None:
    """What an OSError of writing below `where` means, or None when it is not the disk's doing."""
    if exc.errno in _FULL:
        return no_space(where)
    if exc.errno in _REFUSED:
        return OutputError(f"cannot write {exc.filename or where}: {exc.strerror}")
    return None


def cannot_make(
    exc: OSError, what: str, where: Path, *, inside: Path | None = None
) -> OutputError | UsageError:
    """What it means that the directory `where` a user named (`what`: --out, --dest, --cache, the
    repository) cannot be made, or a directory of mmpkg's `inside` another: a full disk is the
    disk's doing; any other reason (a file in the way, /proc, no permission) is the argument's,
    a usage error like every other bad argument value."""
    if exc.errno in _FULL:
        return no_space(where, hint=f"or choose another {what}" if what.startswith("--") else "")
    made = f"a directory in {inside}" if inside else exc.filename or where
    return UsageError(f"{what} {where}: cannot create {made}: {exc.strerror}; choose another directory")


def out_of_space(exc: CommandError) -> bool:
    """Whether a tool failed because a file system it wrote to is full."""
    return NO_SPACE in exc.output or NO_SPACE in str(exc)


def no_space(where: Path, detail: str = "", *, hint: str = "or choose another --out") -> OutputError:
    prefix = f"{detail.rstrip(': ')}; " if detail else ""
    return OutputError(f"{prefix}no space left on {where}: free some space there{', ' if hint else ''}{hint}")


def _meaning(cls: type[MmpkgError]) -> str:
    return " ".join((cls.__doc__ or "").split())


# The exit status when whoever read stdout stopped reading (`mmpkg repo list REPO | head`): the
# shell's status of a program ended by SIGPIPE (128 + 13). mmpkg/cli/dispatch.py says why.
CLOSED_OUTPUT = 141


# What each exit status of the command means (docs/building.md's table is generated from this).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "Success."),
    (1, "A bug in mmpkg: Python's traceback says where; please report it."),
    *(
        (cls.exit_code, _meaning(cls))
        for cls in (
            UsageError,
            ReleaseError,
            ToolMissingError,
            CommandError,
            OutputError,
            RepoError,
            UpgradePathError,
            UpstreamError,
            PublishError,
        )
    ),
    (130, "Stopped by SIGINT (Ctrl-C): the tools were stopped and what the build wrote removed."),
    (
        CLOSED_OUTPUT,
        "Standard output was closed before everything was printed (`mmpkg repo list REPO | head -3`): "
        "the command ended quietly, as a program ended by SIGPIPE does; what it had done stands.",
    ),
    (143, "Stopped by SIGTERM, in the same way as by SIGINT."),
)
