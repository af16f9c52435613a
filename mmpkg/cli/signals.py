"""SIGINT and SIGTERM stop a command the same way: by unwinding, so that it cleans up.

A CI runner or systemd stops a job with SIGTERM, whose default action would end the process on
the spot, leaving its tools running and its workspace behind. Raised as an exception instead,
it runs the same clean-up as Ctrl-C: the tools are killed and the workspace removed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    def __init__(self, signum: signal.Signals) -> None:
        super().__init__(signum.name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention for "ended by this signal"


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise Stopped (signal handlers live in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        # Once unwinding, a second signal must not cut the clean-up short.
        for each in SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum))

    previous = {each: signal.signal(each, stop) for each in SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
