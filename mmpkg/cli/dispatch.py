"""main(): the arguments parsed, the command they name run from the table (commands.py), and the
one place an error becomes the `mmpkg: error: ...` line and the exit code (docs/building.md: exit codes)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from mmpkg.cli.commands import handler
from mmpkg.cli.grammar import parser
from mmpkg.cli.signals import Stopped, stop_on_signals
from mmpkg.errors import MmpkgError


def main(argv: Sequence[str] | None = None) -> int:
    with stop_on_signals():
        try:
            args = parser().parse_args(argv)
            _logging(args.verbosity)
            handler(args)(args)
        except MmpkgError as exc:
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
