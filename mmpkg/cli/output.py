"""What -q leaves of a command's output: errors, and the results a script asked for.

A command that shows something (`inspect`, `releases`, `repo list`, `keys`, `check`'s problems,
`client-config`, `sync --plan`) prints it whatever -q says: that is what it was run for. A
command that changes something (`build`, `fetch`, `repo add`, `remove`, `add-key`,
`retire-key`, `config --keep`, `sync`) reports what it did, which is chatter to -q, "errors
only", unless --json asks for the report. Progress and warnings go to the "mmpkg" logger, which
-q sets to errors (dispatch.py).
"""

from __future__ import annotations

import argparse


def quiet(args: argparse.Namespace) -> bool:
    """Whether the report of a change is left out: -q, and no --json asking for it."""
    return bool(args.verbosity < 0 and not getattr(args, "json", False))
