"""Throw-away GnuPG homes, for commands that only read public keys and check signatures.

gpg starts a gpg-agent the first time it imports a key into a home, and that agent outlives
the command: with its sockets in /run/user/UID/gnupg (where logind makes that directory) it
never notices that its home was removed. Public keys need no agent, so a throw-away home tells
gpg not to start one (`no-autostart` in its gpg.conf), and stops any that runs in it all the
same when it goes (`gpgconf --kill all`): nothing a command starts outlives it.

gpg still tries to connect to an agent, at a socket in the home: in a $TMPDIR so deep that the
socket's name does not fit a Unix socket's path (107 bytes), the attempt fails with "File name
too long" and so does the command. Such a home is made in /tmp instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mmpkg.errors import ToolMissingError
from mmpkg.tools.run import run

# The longest socket gpg puts in a home, and the room a Unix socket's path has (sun_path).
_SOCKET = "/S.gpg-agent.browser"
_SUN_PATH = 107


def _where(prefix: str) -> str | None:
    """$TMPDIR, unless a home there leaves no room for the agent's socket name: then /tmp."""
    made = os.path.join(tempfile.gettempdir(), prefix + "x" * 8)  # TemporaryDirectory's 8 letters
    return "/tmp" if len(os.fsencode(made + _SOCKET)) > _SUN_PATH else None


@contextlib.contextmanager
def throwaway(prefix: str = "mmpkg-gpg-") -> Iterator[Path]:
    """A new, private GnuPG home in $TMPDIR (or /tmp, when $TMPDIR is too deep for the agent's
    socket) for the block, removed afterwards with any agent."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=_where(prefix)) as tmp:
        home = Path(tmp)
        (home / "gpg.conf").write_text("no-autostart\n")
        try:
            yield home
        finally:
            # gpgconf comes with gpg; without it there is no agent to stop either.
            with contextlib.suppress(ToolMissingError):
                run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
