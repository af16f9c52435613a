"""Run a command as a child subreaper and report every process it left behind.

    python tests/support/outlivers.py REPORT COMMAND...

A daemon detaches by forking and letting its parent exit; the kernel then gives it to the
nearest subreaper above it instead of to init. This program is that subreaper: whatever the
command started that had not ended and been reaped when the command exited is its child here,
alive or a zombie, and so found without any timing. REPORT gets a JSON list of those processes
([pid, name, state, command line]); they are then killed and reaped. The exit status is the
command's.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def children() -> list[tuple[int, str, str, str]]:
    """(pid, name, state, command line) of each process whose parent is this one."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue  # gone meanwhile
        name, _, rest = stat.partition(" (")[2].rpartition(") ")
        state, ppid = rest.split()[:2]
        if int(ppid) == os.getpid():
            found.append((int(proc.name), name, state, cmdline))
    return found


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    code = subprocess.run(command, check=False).returncode
    left = children()
    Path(report).write_text(json.dumps(left))
    for pid, *_ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
