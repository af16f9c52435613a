"""The command line, `mmpkg COMMAND ...`: the console script and `python -m mmpkg` run main()."""

from __future__ import annotations

from mmpkg.cli.dispatch import main

__all__ = ["main"]
