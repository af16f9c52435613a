"""The single way mmpkg runs an external program.

No shell, an explicit environment (so rpmbuild never reads ~/.rpmmacros and dpkg never sees the
caller's locale), a throwaway HOME, SOURCE_DATE_EPOCH when the caller has one, and one clear error
when the tool is missing or fails.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mmpkg.errors import CommandError, ToolMissingError

log = logging.getLogger("mmpkg")

StrPath = str | os.PathLike[str]

# Debian package that provides each tool, for the "not installed" hint.
PROVIDERS = {
    "dpkg-deb": "dpkg",
    "rpmbuild": "rpm",
    "rpm": "rpm",
    "lintian": "lintian",
    "rpmlint": "rpmlint",
    "gpg": "gnupg",
    "jq": "jq",
}

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(
    cmd: Sequence[StrPath],
    *,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    source_date_epoch: int | None = None,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` and return its captured output; raise CommandError if it fails and `check`."""
    argv = [os.fspath(a) for a in cmd]
    if shutil.which(argv[0], path=SAFE_PATH) is None and not os.path.isabs(argv[0]):
        hint = PROVIDERS.get(argv[0], argv[0])
        raise ToolMissingError(f"{argv[0]} is not installed: install the '{hint}' package")
    log.debug("+ %s", shlex.join(argv))
    with tempfile.TemporaryDirectory(prefix="mmpkg-home-") as home:
        full_env = {"PATH": SAFE_PATH, "LC_ALL": "C.UTF-8", "HOME": home, "TZ": "UTC"}
        if source_date_epoch is not None:
            full_env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
        full_env.update(env or {})
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    if check and proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        log.debug("%s", output)
        lines = [line for line in output.splitlines() if line.strip()]
        # The tool's own last word usually names the cause; --verbose shows all of it.
        last = lines[-1].strip() if lines else "no output"
        raise CommandError(
            f"{Path(argv[0]).name} failed with exit code {proc.returncode}: {last}",
            output=output,
        )
    return proc
