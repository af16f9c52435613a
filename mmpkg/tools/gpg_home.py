"""Throw-away GnuPG homes, for commands that only read public keys and check signatures.

gpg starts a gpg-agent the first time it imports a key into a home, and that agent outlives
the command: with its sockets in /run/user/UID/gnupg (where logind makes that directory) it
never notices that its home was removed, and in a deep $TMPDIR it cannot start at all (its
socket path is too long), which fails the import. Public keys need no agent, so a throw-away
home tells gpg not to start one (`no-autostart` in its gpg.conf), and stops any that runs in
it all the same when it goes (`gpgconf --kill all`): nothing a command starts outlives it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mmpkg.errors import ToolMissingError
from mmpkg.tools.run import run


@contextlib.contextmanager
def throwaway(prefix: str = "mmpkg-gpg-") -> Iterator[Path]:
    """A new, private GnuPG home in $TMPDIR for the block, removed afterwards with any agent."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home = Path(tmp)
        (home / "gpg.conf").write_text("no-autostart\n")
        try:
            yield home
        finally:
            # gpgconf comes with gpg; without it there is no agent to stop either.
            with contextlib.suppress(ToolMissingError):
                run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
