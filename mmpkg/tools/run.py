"""The single way mmpkg runs an external program.

No shell, an explicit environment (so rpmbuild never reads ~/.rpmmacros and dpkg never sees the
caller's locale), a throwaway HOME, SOURCE_DATE_EPOCH when the caller has one, and one clear error
when the tool is missing or fails. A tool is looked for in the caller's $PATH, then in the
system's directories (search_path()).

Each tool runs in a process group of its own, so that it and everything it started (rpmbuild's
shells, dpkg-deb's tar and compressor) can be stopped together: when the caller is interrupted,
or when a ToolGroup is stopped because a job next to it failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

from mmpkg.errors import CommandError, ToolMissingError

log = logging.getLogger("mmpkg")

StrPath = str | os.PathLike[str]

# Debian package that provides each tool, for the "not installed" hint.
PROVIDERS = {
    "dpkg-deb": "dpkg",
    "rpmbuild": "rpm",
    "rpm": "rpm",
    "rpm2archive": "rpm",
    "lintian": "lintian",
    "rpmlint": "rpmlint",
    "gpg": "gnupg",
    "gpgv": "gpgv",
    "jq": "jq",
}

# The system's directories, searched after the caller's $PATH (search_path()): a cron job's or
# a systemd unit's PATH (/usr/bin:/bin) and sudo's secure_path can lack /usr/sbin, /sbin or
# /usr/local, where a distribution or an administrator may have put a tool mmpkg runs.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_ERROR = re.compile(r"\berror\b", re.IGNORECASE)
P = ParamSpec("P")
R = TypeVar("R")
_current = threading.local()


class ToolGroup:
    """The tools run by the jobs of one build, in whatever threads, so that they stop together.

    A job runs through `call`; stop() kills every tool its jobs are running at once, and any they
    start afterwards, instead of waiting for them to finish. Leaving a `with ToolGroup()` block
    by an exception stops it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._stopped = False

    def __enter__(self) -> ToolGroup:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.stop()

    def call(self, job: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        _current.group = self
        try:
            return job(*args, **kwargs)
        finally:
            _current.group = None

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for proc in self._running:
                _kill(proc)

    def _started(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.add(proc)
            if self._stopped:
                _kill(proc)

    def _ended(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.discard(proc)


def _kill(proc: subprocess.Popen[str]) -> None:
    # The tool's whole process group; it may already be gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def search_path(env: Mapping[str, str] | None = None) -> str:
    """Where tools are looked for, and the PATH they run with: the caller's $PATH (or `env`'s
    PATH), as a shell would look, so that a tool installed elsewhere (/opt, ~/.local/bin, a
    virtualenv) is found, and the tools it runs in turn (dpkg-deb's tar and zstd) with it;
    then SAFE_PATH's directories it lacks. A relative entry is dropped (an empty one means the
    current directory): a tool is never taken from wherever mmpkg happens to run, such as a
    directory of downloaded tarballs."""
    given = (os.environ if env is None else env).get("PATH", "")
    dirs = [d for d in given.split(os.pathsep) if os.path.isabs(d)]
    dirs += [d for d in SAFE_PATH.split(os.pathsep) if d not in dirs]
    return os.pathsep.join(dict.fromkeys(dirs))


def which(tool: str, path: str | None = None) -> str | None:
    """The program `tool` names (a path, or a name looked for in `path`, else search_path())."""
    if os.path.isabs(tool):
        return tool if os.access(tool, os.X_OK) else None
    return shutil.which(tool, path=path if path is not None else search_path())


def require(tool: str, path: str | None = None) -> str:
    """The program `tool` names; ToolMissingError, naming the package that provides it, when
    there is none."""
    found = which(tool, path)
    if found is None:
        hint = PROVIDERS.get(tool, tool)
        raise ToolMissingError(f"{tool} is not installed: install the '{hint}' package")
    return found


def cause(output: str) -> str:
    """The line of a tool's output that says why it failed: its first error, not whatever it
    printed last (rpmbuild ends with a summary, and its progress goes to the same stream)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR.search(line) and line != "RPM build errors:"]
    if not errors:
        return lines[-1] if lines else "no output"
    more = len(set(errors)) - 1
    return errors[0] + (f" (and {more} more errors; -v shows them)" if more > 0 else "")


def run(
    cmd: Sequence[StrPath],
    *,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    source_date_epoch: int | None = None,
    check: bool = True,
    input: str | None = None,
    stdin: IO[Any] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` and return its captured output; raise CommandError if it fails and `check`.
    The tool reads `input`, or the open file `stdin` from where it stands, or nothing. After
    `timeout` seconds it is stopped, with everything it started, and subprocess.TimeoutExpired
    raised."""
    argv = [os.fspath(a) for a in cmd]
    # A PATH the caller gives (the test harness's) is where the tool is looked for, as before;
    # otherwise the caller's own $PATH, then the system's directories.
    path = env["PATH"] if env is not None and "PATH" in env else search_path()
    program = require(argv[0], path)
    log.debug("+ %s", shlex.join(argv))
    with tempfile.TemporaryDirectory(prefix="mmpkg-home-") as home:
        full_env = {"PATH": path, "LC_ALL": "C.UTF-8", "HOME": home, "TZ": "UTC"}
        if source_date_epoch is not None:
            full_env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
        full_env.update(env or {})
        proc = _communicate(argv, program, cwd=cwd, env=full_env, input=input, stdin=stdin, timeout=timeout)
    if check and proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        log.debug("%s", output)
        raise CommandError(
            f"{Path(argv[0]).name} failed with exit code {proc.returncode}: {cause(output)}",
            output=output,
        )
    return proc


def _communicate(
    argv: list[str],
    program: str,
    *,
    cwd: StrPath | None,
    env: dict[str, str],
    input: str | None,
    stdin: IO[Any] | None,
    timeout: float | None,
) -> subprocess.CompletedProcess[str]:
    group: ToolGroup | None = getattr(_current, "group", None)
    proc = subprocess.Popen(
        argv,
        executable=program,  # the tool found; it still sees the name it was asked for
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if input is not None else stdin or subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        process_group=0,
    )
    if group is not None:
        group._started(proc)
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except BaseException:
        # Interrupted (SIGINT, SIGTERM) or out of time: the tool stops now, not when it is done.
        _kill(proc)
        proc.wait()
        raise
    finally:
        if group is not None:
            group._ended(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
