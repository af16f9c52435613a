"""main(): the arguments parsed, the command they name run from the table (commands.py), and the
one place an error becomes the `mmpkg: error: ...` line and the exit code (docs/building.md: exit codes)."""

from __future__ import annotations

import logging
import os
import select
import sys
from collections.abc import Sequence

from mmpkg.cli.commands import handler
from mmpkg.cli.grammar import parser
from mmpkg.cli.signals import Stopped, stop_on_signals
from mmpkg.errors import CLOSED_OUTPUT, MmpkgError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command `argv` names; return its exit code (docs/building.md: exit codes)."""
    try:
        try:
            return _main(argv)
        finally:
            # What is still buffered is written here, where a closed stdout can be told apart,
            # and not at the interpreter's exit, which would report it after the exit code.
            # --help and --version end in SystemExit, and pass through here too.
            sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return _closed_output()


def _main(argv: Sequence[str] | None) -> int:
    with stop_on_signals():
        try:
            args = parser().parse_args(argv)
            _logging(args.verbosity)
            handler(args)(args)
        except MmpkgError as exc:
            # What the command printed goes before its error: `check`'s problems, then "see
            # above". A reader that left already makes this the quiet end of main().
            sys.stdout.flush()
            for message in exc.messages:
                print(f"mmpkg: error: {message}", file=sys.stderr)
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


def _stdout_closed() -> bool:
    """Whether standard output is a pipe or socket whose reader has gone (poll(2) says POLLERR).
    Only then is a BrokenPipeError the reader's doing (`| head`); one from anything else (a
    tool's pipe) is a bug and keeps its traceback."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are reported whatever is asked for
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _closed_output() -> int:
    """End quietly once the reader of stdout has gone, as `ls | head` ends: its status is the
    shell's for a command ended by SIGPIPE (128 + 13), so `set -o pipefail` scripts see what
    they see of any other program, and there is no traceback and no message, since nobody is
    reading and the reader left on purpose. (pip instead prints an error and exits 120, from
    Python's failed flush at exit; `head` closing a listing is no error.) mmpkg does not take
    SIGPIPE's default action itself: a pipe to a tool that closes early (gpg refusing its
    input) must stay an error mmpkg reports, not end mmpkg mid-change."""
    # Python flushes stdout again at exit: nothing must be left to write to the closed pipe.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return CLOSED_OUTPUT
