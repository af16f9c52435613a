"""`mmpkg ARGS...` run in the test's process, as people run it: (exit code, stdout, stderr)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mmpkg.cli import main

Mmpkg = Callable[..., tuple[int, str, str]]


def runner(capsys: pytest.CaptureFixture[str]) -> Mmpkg:
    def call(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call
