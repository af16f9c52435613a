"""Throw-away Debian roots for install tests: dpkg/apt and rpm/dnf really run, systemd really boots.

Three tiers (the test tiers they serve are in docs/development.md):

- `pristine_root()`: one mmdebstrap'd bookworm tree, cached on disk and only ever an overlay lower.
- `Root`: an overlayfs over it per test, driven by chroot (dpkg, apt) or by the host's rpm/dnf
  with `--root`/`--installroot`. A policy-rc.d keeps maintainer scripts from starting anything.
- `Booted`: the same directory booted with `systemd-nspawn -b` and entered with nsenter.

For fault injection, a `Root` can put a directory on a small file system of its own and fill
it (`mount_small_fs`, `fill`), and replace a program by a wrapper (`wrap`). A root can be
frozen into a layer later roots start from (`freeze`, `Root(lower, layers=...)`).

Everything runs as root. Per-test directories live under a per-process session directory that is
locked while in use, so a later run can unmount and delete what a crashed run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Literal, Protocol

import pytest

from mmpkg.packaging import targets
from mmpkg.tools import run as tools

log = logging.getLogger("mmpkg.tests.harness")

StrPath = str | os.PathLike[str]

SAFE_PATH = tools.SAFE_PATH
CACHE_DIR = Path(os.environ.get("MMPKG_TEST_CACHE", "/var/cache/mmpkg-tests"))
MIRROR = os.environ.get("MMPKG_TEST_MIRROR", "http://deb.debian.org/debian")
# What the packages under test need at runtime (jq, adduser, a python3 fake server, curl to
# probe it, postgresql-client for its real database and the package's pg_dump, which the .deb
# recommends) plus systemd to boot and Debian's rpm so rpm also works inside a booted root.
PRISTINE_PACKAGES = (
    # dnf: what mattermost-pkg upgrade and rollback run in an rpm install (tests/support/repo_client.py)
    "adduser", "curl", "dbus", "dnf", "jq", "passwd", "postgresql-client", "procps", "python3",
    "rpm", "systemd", "systemd-sysv", "util-linux",
)  # fmt: skip
# dnf's versionlock, which holds the package after mattermost-pkg rollback (Debian 11 has none):
# only in the roots of the tiers that roll back, since its `local` plugin has to be switched off
# in a conffile, which piuparts' debsums would report.
VERSIONLOCK_PACKAGES = ("dnf-plugins-core",)
# What a generation does not have: the root goes without it, and the tests that need it say so.
NOT_IN_SUITE = {"bullseye": ("dnf-plugins-core",)}
# Bump when _finish_pristine changes what it adds, so cached roots are rebuilt.
PRISTINE_LAYOUT = 3

# Tools each tier needs, for require().
ROOT_TOOLS = ("mmdebstrap", "mount", "umount", "chroot")
RPM_TOOLS = ("rpm", "rpmbuild")
DNF_TOOLS = ("dnf", "createrepo_c", "rpmbuild")
BOOT_TOOLS = ("systemd-nspawn", "nsenter", "timeout")
# Debian package to install for each tool, so a skip message says what to do: mmpkg's own
# tools', and those only the tests run.
PROVIDERS = {
    **tools.PROVIDERS,
    "mmdebstrap": "mmdebstrap", "chroot": "coreutils", "timeout": "coreutils",
    "mount": "mount", "umount": "mount", "nsenter": "util-linux", "rpm": "rpm",
    "rpmbuild": "rpm", "dnf": "dnf", "createrepo_c": "createrepo-c", "dpkg-deb": "dpkg",
    "systemd-nspawn": "systemd-container", "dpkg-parsechangelog": "dpkg-dev", "debsums": "debsums",
    "rpm2cpio": "rpm", "cpio": "cpio", "piuparts": "piuparts", "apt-ftparchive": "apt-utils", "env": "coreutils",
    "runuser": "util-linux", "setpriv": "util-linux", "psql": "postgresql-client", "pg_restore": "postgresql-client",
    "/usr/lib/postgresql/15/bin/initdb": "postgresql",
    "swift-proxy-server": "swift-proxy", "swift-account-server": "swift-account",
    "swift-container-server": "swift-container", "swift-object-server": "swift-object",
    "memcached": "memcached",
}  # fmt: skip

# dpkg's conffile prompt reads stdin; at EOF it fails the install, so decide up front.
CONF_OLD = ("--force-confdef", "--force-confold")
CONF_NEW = ("--force-confdef", "--force-confnew")

DEFAULT_TIMEOUT = 300.0
RPM_DBPATH = "/var/lib/rpm"
PKG_DIR = "/root/pkgs/"  # not /tmp: the booted tier mounts a tmpfs there
POLICY_RC_D = "/usr/sbin/policy-rc.d"
# Root.wrap() keeps the real programs here; fill_fs() writes this file.
WRAPPED_DIR = "/usr/lib/mmpkg-tests/real"
FILLER = ".mmpkg-tests-filler"

SHIM_NAME = "harness-base-provides"
# What a Fedora/RHEL server package may require that the Debian root has but rpm does not know.
SHIM_PROVIDES = (
    "/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/env", "/usr/bin/python3",
    "/usr/bin/jq", "/usr/bin/getent", "/usr/bin/systemctl", "/usr/sbin/useradd",
    "/usr/sbin/groupadd", "/usr/sbin/userdel", "/usr/sbin/groupdel", "/usr/sbin/usermod",
    "/sbin/ldconfig", "bash", "ca-certificates", "coreutils", "curl", "findutils", "gawk",
    "glibc", "grep", "gzip", "jq", "openssl", "procps-ng", "python3", "sed", "setup",
    "shadow-utils", "systemd", "systemd-units", "tar", "tzdata", "util-linux", "which",
    # what dnf run inside the root reads its $releasever from, as from a distribution's
    "system-release(releasever) = 9",
)  # fmt: skip


@dataclass(frozen=True)
class Distro:
    """A Debian generation the install tiers run on, by mmpkg's --target name; its facts are
    mmpkg's table of distributions."""

    name: str  # e.g. "debian-11"

    @property
    def suite(self) -> str:
        return targets.BY_NAME[self.name].suite

    @property
    def postgresql(self) -> int:
        """The major version of the PostgreSQL (and pg_dump) the release ships."""
        return int(targets.BY_NAME[self.name].postgresql)

    @property
    def rpm_scriptlets_offline(self) -> bool:
        """Debian 13's rpm runs scriptlets in a network namespace of their own (its unshare
        plugin with __transaction_unshare_nonet 1, /usr/lib/rpm/macros.d/macros.transaction_unshare).
        Roots of it turn that off (RPM_NET_MACROS) unless a test asks for the default."""
        return self.name == "debian-13"


DISTROS = (Distro("debian-11"), Distro("debian-12"), Distro("debian-13"))
# What roots of a distribution whose rpm runs scriptlets offline get, so that the tiers test the
# rest of its rpm and dnf; tests of the offline default remove it (Root.rpm_offline_scriptlets).
RPM_NET_MACROS = "/etc/rpm/macros.mmpkg-tests-network"
# The one generation every test runs on; tests marked `generations` run on each selected one.
DEFAULT_DISTRO = DISTROS[1]
SUITE = DEFAULT_DISTRO.suite
DISTROS_ENV = "MMPKG_TEST_DISTROS"


def selected_distros() -> tuple[Distro, ...]:
    """The generations named by $MMPKG_TEST_DISTROS (comma-separated names or suites), all by
    default. CI=true runs all of them whatever the variable says: a green CI run has covered
    every generation."""
    raw = "" if _in_ci() else os.environ.get(DISTROS_ENV, "")
    wanted = {w.strip() for w in raw.split(",") if w.strip()}
    if not wanted or "all" in wanted:
        return DISTROS
    unknown = wanted - {d.name for d in DISTROS} - {d.suite for d in DISTROS}
    if unknown:
        known = ", ".join(d.name for d in DISTROS)
        raise HarnessError(f"{DISTROS_ENV}: unknown {', '.join(sorted(unknown))} (known: {known}, all)")
    return tuple(d for d in DISTROS if wanted & {d.name, d.suite})


class HarnessError(RuntimeError):
    """The harness itself could not set something up (not a failure of the code under test)."""


class CommandFailed(AssertionError):
    """A command failed; an AssertionError so pytest reports it as a test failure."""

    def __init__(
        self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str, where: str
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exit code {returncode}"
        super().__init__(
            f"command failed ({status}) in {where}: {shlex.join(self.argv)}\n"
            f"--- stdout ---\n{_tail(stdout)}\n--- stderr ---\n{_tail(stderr)}"
        )


def _tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else f"[... {len(text) - limit} chars cut]\n{text[-limit:]}"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}


def require(*tools: str, root: bool = True) -> None:
    """Skip unless `tools` are on PATH (and, with `root`, running as root); under CI=true fail."""
    problems = []
    if root and os.geteuid() != 0:
        problems.append("needs root (overlay mounts, chroot, dpkg and rpm into a root)")
    missing = [t for t in tools if shutil.which(t, path=SAFE_PATH) is None]
    if missing:
        hint = " ".join(sorted({PROVIDERS.get(t, t) for t in missing}))
        problems.append(f"missing {', '.join(missing)} (apt-get install {hint})")
    if not problems:
        return
    reason = "; ".join(problems)
    if _in_ci():
        # A skip would let CI go green without having installed anything.
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


# --- host commands ------------------------------------------------------------------------------


def host_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean host environment: nothing from the test process leaks into a command."""
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}
    env.update(extra or {})
    return env


def rpm_env() -> dict[str, str]:
    """host_env for rpm, rpmbuild and dnf: HOME holds the harness's .rpmmacros (_tool_home)."""
    return host_env({"HOME": str(_tool_home())})


def root_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a command inside a root: nothing leaks in from the test process."""
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "DEBIAN_FRONTEND": "noninteractive",
    }
    env.update(extra or {})
    return env


def run_host(
    argv: Sequence[StrPath],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    where: str = "host",
) -> subprocess.CompletedProcess[str]:
    """Run `argv` with mmpkg's own runner (never through a shell, stdin at EOF unless `input`, a
    throw-away HOME unless `env` names one) and capture its output; raise CommandFailed if
    `check`."""
    args = [os.fspath(a) for a in argv]
    try:
        proc = tools.run(
            args, env=dict(env) if env is not None else host_env(), input=input, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(args, None, _text(e.stdout), _text(e.stderr), where) from None
    if check and proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, proc.stdout, proc.stderr, where)
    return proc


def _text(data: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when the call asked for text.
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- mounts and safe removal --------------------------------------------------------------------


@dataclass(frozen=True)
class _Mount:
    target: Path
    fstype: str


def _mounts() -> list[_Mount]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        # Spaces and the like are octal-escaped in mountinfo.
        target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        mounts.append(_Mount(Path(target), fields[sep + 1]))
    return mounts


def _mounts_under(path: Path) -> list[Path]:
    base = path.resolve()
    return [m.target for m in _mounts() if m.target == base or base in m.target.parents]


def _fstype(path: Path) -> str:
    path = path.resolve()
    while not path.exists():
        path = path.parent
    found = [m for m in _mounts() if m.target == path or m.target in path.parents]
    return max(found, key=lambda m: len(m.target.parts)).fstype


def _unmount_under(path: Path) -> None:
    """Unmount everything at or below `path`: `umount -R`, lazily as a last resort."""
    for _ in range(20):
        targets = _mounts_under(path)
        if not targets:
            return
        outer = min(targets, key=lambda p: len(p.parts))
        if run_host(["umount", "-R", outer], check=False).returncode != 0:
            run_host(["umount", "-R", "-l", outer], check=False)
    raise HarnessError(f"could not unmount {_mounts_under(path)}")


def _remove_tree(path: Path) -> None:
    if not os.path.lexists(path):
        return
    # Never let rm walk into a bind mount of the host's /dev.
    _unmount_under(path)
    run_host(["rm", "-rf", "--one-file-system", "--", path])


def fill_fs(directory: Path) -> None:
    """Write zeros into `directory` until its file system has no room left (ENOSPC)."""
    chunk = b"\0" * (1 << 16)
    with (directory / FILLER).open("ab", buffering=0) as out:
        try:
            while True:
                # Unbuffered: a short write takes what is left, the next one fails.
                out.write(chunk)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


# --- session directory --------------------------------------------------------------------------


def _work_base() -> Path:
    """Where per-test directories go: on a real disk, because overlay uppers cannot be on
    overlayfs and a tmpfs would hold every test's writes in memory."""
    candidates = [os.environ.get("MMPKG_TEST_WORKDIR"), "/var/tmp/mmpkg-tests", CACHE_DIR / "work"]
    for candidate in candidates:
        if candidate and _fstype(Path(candidate)) not in {"tmpfs", "ramfs", "overlay"}:
            return Path(candidate).resolve()
    raise HarnessError(f"no disk-backed directory for test roots among {candidates}")


_session_locks: list[int] = []  # open fds: the flock on a session directory lives as long as they do


@functools.cache
def session_dir() -> Path:
    """This process's directory for test roots, locked so no other run treats it as stale."""
    base = _work_base()
    base.mkdir(parents=True, exist_ok=True)
    # Holding the base lock makes "create + lock" atomic for another process's stale sweep.
    with _flock(base / ".lock"):
        _clean_stale(base)
        session = Path(tempfile.mkdtemp(prefix=f"session-{os.getpid()}-", dir=base))
        fd = os.open(session / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
    _session_locks.append(fd)
    atexit.register(_end_session, session)
    return session


def _end_session(session: Path) -> None:
    # Normally empty by now: every Root removes its own directory.
    _kill_stale_containers(session)
    _remove_tree(session)


def _clean_stale(base: Path) -> None:
    """Unmount and delete session directories whose owning process has gone (crashed runs)."""
    for session in base.glob("session-*"):
        fd = os.open(session / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live run
        finally:
            os.close(fd)
        log.info("removing stale test roots in %s", session)
        _kill_stale_containers(session)
        _remove_tree(session)


@functools.cache
def _tool_home() -> Path:
    """A HOME for host rpm, rpmbuild and dnf.

    Debian's rpm puts its database in `~/.rpmdb`, which dnf --installroot turns into
    ROOT/$HOME/.rpmdb. Pinning `_dbpath` here makes host rpm, dnf and (through the
    /root/.rpmdb symlink in the root) the root's own rpm share ROOT/var/lib/rpm, and keeps the
    developer's ~/.rpmmacros out of the tests.
    """
    home = session_dir() / "home"
    home.mkdir(exist_ok=True)
    (home / ".rpmmacros").write_text(f"%_dbpath {RPM_DBPATH}\n")
    return home


# --- pristine root ------------------------------------------------------------------------------


def pristine_root(*, suite: str = SUITE, packages: Sequence[str] = PRISTINE_PACKAGES) -> Path:
    """A minbase root with `packages`, built once and cached under CACHE_DIR/roots/<key>/."""
    packages = [p for p in packages if p not in NOT_IN_SUITE.get(suite, ())]
    key = json.dumps(
        {"suite": suite, "mirror": MIRROR, "packages": sorted(packages), "layout": PRISTINE_LAYOUT}
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    roots = CACHE_DIR / "roots"
    final = roots / digest
    if final.is_dir():
        return final
    roots.mkdir(parents=True, exist_ok=True)
    # The lock only saves a second process 20 s of duplicate work; the rename is what makes
    # a half-built root impossible to see.
    with _flock(roots / f"{digest}.lock"):
        if final.is_dir():
            return final
        for leftover in roots.glob(f".build-{digest}-*"):
            _remove_tree(leftover)
        build = roots / f".build-{digest}-{os.getpid()}"
        started = time.monotonic()
        try:
            # Keep the package lists so `apt-get install ./x.deb` resolves Depends; the
            # downloaded .debs (~100 MB) are of no further use.
            argv: list[StrPath] = [
                "mmdebstrap", "--variant=minbase", "--skip=cleanup/apt/lists",
                f"--include={','.join(packages)}", '--aptopt=Acquire::Retries "3"',
                suite, build, MIRROR,
            ]  # fmt: skip
            run_host(argv, timeout=1800)
            _finish_pristine(build)
            os.rename(build, final)
        except BaseException:
            _remove_tree(build)
            raise
        (roots / f"{digest}.json").write_text(key + "\n")
        log.info("built pristine root %s in %.1f s", final, time.monotonic() - started)
    return final


def _finish_pristine(tree: Path) -> None:
    (tree / RPM_DBPATH.lstrip("/")).mkdir(parents=True, exist_ok=True)
    rpmdb = tree / "root/.rpmdb"
    if rpmdb.is_symlink() or rpmdb.exists():
        _remove_tree(rpmdb)
    # Relative, so it resolves inside the root whether seen from the host or from a chroot.
    rpmdb.symlink_to(f"..{RPM_DBPATH}")
    # Tests change dpkg's status several times a second, faster than apt notices that its
    # binary cache is stale (seen as apt calling a package dpkg had just removed "not fully
    # installed" and its reinstall a downgrade). Without the cache apt reads the status itself.
    (tree / "etc/apt/apt.conf.d/90mmpkg-tests-no-cache").write_text(
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    )
    # Debian's dnf-plugins-core carries every plugin, `local` among them, which Fedora and RHEL
    # package apart and do not install: left on, it adds an unsigned repository of its own that
    # every dnf transaction then refuses.
    local = tree / "etc/dnf/plugins/local.conf"
    if local.exists():
        text = re.sub(r"(?m)^enabled\s*=.*$", "enabled = false", local.read_text())
        local.write_text(text)


def _kill_chrooted(tree: Path) -> None:
    """Kill what still runs with its root in `tree`: daemons a command in the chroot left, such
    as the gpg-agent dnf starts to import a repository's key. Each holds inotify instances (128
    a user), which systemd-nspawn needs to boot later roots."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            inside = os.readlink(entry / "root")
        except OSError:
            continue  # gone, or a kernel thread
        if inside == str(tree) or inside.startswith(f"{tree}/"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


# --- one throw-away root ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """Ownership and mode of a path as seen inside a root (names from the root's own files)."""

    owner: str
    group: str
    mode: int  # permission bits, e.g. 0o640
    uid: int
    gid: int
    kind: Literal["file", "dir", "symlink", "other"]
    size: int


_roots = itertools.count()


class Root:
    """An overlayfs root for one test; `with Root(pristine_root()) as root: root.dpkg("-i", deb)`."""

    def __init__(
        self,
        lower: Path,
        *,
        layers: Sequence[Path] = (),
        name: str = "root",
        policy_rc_d: bool = True,
        distro: Distro = DEFAULT_DISTRO,
    ) -> None:
        self.lower = lower.resolve()
        self.distro = distro  # what `lower` was made of
        # Read-only layers over `lower`, topmost first: a root frozen by freeze() and reused.
        self.layers = tuple(p.resolve() for p in layers)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]
        self.workdir = session_dir() / f"{safe}-{next(_roots)}"
        self.upper = self.workdir / "upper"
        self.dir = self.workdir / "merged"
        self.policy_rc_d = policy_rc_d
        self.booted: Booted | None = None
        self._api_mounted = False
        self._shim_installed = False
        self._wrapped: dict[str, tuple[str, str | None]] = {}  # command -> (its path, symlink target)

    def __enter__(self) -> Root:
        try:
            self._mount()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _mount(self) -> None:
        work = self.workdir / "work"
        for d in (self.upper, work, self.dir):
            d.mkdir(parents=True)
        if any(c in str(p) for p in (*self.layers, self.lower, self.upper, work) for c in ",:"):
            raise HarnessError(f"overlay paths must not contain ',' or ':': {self.workdir}")
        lowers = ":".join(str(p) for p in (*self.layers, self.lower))
        opts = f"lowerdir={lowers},upperdir={self.upper},workdir={work}"
        run_host(["mount", "-t", "overlay", "overlay", "-o", opts, self.dir])
        self.attach_api_mounts()
        self.set_policy_rc_d(self.policy_rc_d)
        if self.distro.rpm_scriptlets_offline:
            macros = self.path(RPM_NET_MACROS)
            macros.parent.mkdir(parents=True, exist_ok=True)
            macros.write_text("%__transaction_unshare_nonet 0\n")

    def rpm_offline_scriptlets(self) -> None:
        """Let the root's rpm run scriptlets as its distribution does by default (offline)."""
        self.path(RPM_NET_MACROS).unlink(missing_ok=True)

    def close(self) -> None:
        """Stop a booted container, unmount everything and delete the per-test directory."""
        try:
            if self.booted is not None:
                self.booted.stop()
        finally:
            self._api_mounted = False
            _kill_chrooted(self.dir)
            _remove_tree(self.workdir)

    def freeze(self, dest: Path) -> Path:
        """Unmount this root and keep what the test wrote as `dest`, a layer for later roots
        (`Root(lower, layers=[dest])`): a set-up several tests share, made once."""
        if self.booted is not None:
            raise HarnessError(f"{self.dir} is booted")
        _unmount_under(self.dir)
        self._api_mounted = False
        # -a keeps overlayfs's whiteouts (character devices) and opaque directories (xattrs).
        run_host(["cp", "-a", "--", self.upper, dest])
        self.close()
        return dest

    def attach_api_mounts(self) -> None:
        """/proc, an rslave rbind of /dev, and a tmpfs /run, as a chroot needs them."""
        if self._api_mounted:
            return
        self._api_mounted = True
        run_host(["mount", "-t", "proc", "proc", self.dir / "proc"])
        run_host(["mount", "--rbind", "/dev", self.dir / "dev"])
        # rslave: unmounting our copy must never propagate to the host's /dev.
        run_host(["mount", "--make-rslave", self.dir / "dev"])
        run_host(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", self.dir / "run"])

    def detach_api_mounts(self) -> None:
        """Undo attach_api_mounts (systemd-nspawn sets up its own)."""
        for sub in ("run", "dev", "proc"):
            _unmount_under(self.dir / sub)
        self._api_mounted = False

    def set_policy_rc_d(self, enabled: bool) -> None:
        """Install or remove a policy-rc.d that forbids starting services (exit 101)."""
        policy = self.path(POLICY_RC_D)
        if enabled:
            policy.write_text("#!/bin/sh\n# mmpkg test harness: nothing starts in a chroot\nexit 101\n")
            policy.chmod(0o755)
        else:
            policy.unlink(missing_ok=True)

    # --- running commands inside ---

    def run(
        self,
        *argv: StrPath,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the root: chroot, or nsenter while the root is booted."""
        if self.booted is not None:
            return self.booted.exec(*argv, check=check, env=env, input=input, timeout=timeout)
        return run_host(
            ["chroot", self.dir, *argv],
            check=check,
            env=root_env(env),
            input=input,
            timeout=timeout,
            where="chroot",
        )

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet inside the root, for when pipes or redirections are the point."""
        return self.run("sh", "-ec", script, check=check)

    # --- files ---

    def path(self, p: str, *, follow_symlinks: bool = True) -> Path:
        """The host path of in-root path `p`, resolving symlinks against the root, not the host
        (an absolute link such as /opt/mattermost/config -> /etc/mattermost would otherwise
        point at the host's /etc)."""
        if not p.startswith("/"):
            raise ValueError(f"in-root paths are absolute: {p!r}")
        done: list[str] = []
        todo = list(PurePosixPath(p).parts[1:])
        for _ in range(10_000):
            if not todo:
                return self.dir.joinpath(*done)
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            host = self.dir.joinpath(*done, part)
            if host.is_symlink() and (todo or follow_symlinks):
                target = PurePosixPath(os.readlink(host))
                if target.is_absolute():
                    done = []
                todo = [*target.parts[1 if target.is_absolute() else 0 :], *todo]
            else:
                done.append(part)
        raise HarnessError(f"too many symlinks resolving {p} in {self.dir}")

    def read_text(self, p: str) -> str:
        return self.path(p).read_text()

    def read_json(self, p: str) -> Any:
        return json.loads(self.read_text(p))

    def write_text(self, p: str, text: str) -> None:
        self.path(p).write_text(text)

    def exists(self, p: str, *, follow_symlinks: bool = True) -> bool:
        host = self.path(p, follow_symlinks=follow_symlinks)
        return host.exists() if follow_symlinks else os.path.lexists(host)

    def stat(self, p: str, *, follow_symlinks: bool = True) -> FileInfo:
        st = os.stat(self.path(p, follow_symlinks=follow_symlinks), follow_symlinks=False)
        users = self._names("/etc/passwd")
        groups = self._names("/etc/group")
        kind: Literal["file", "dir", "symlink", "other"] = (
            "file" if stat.S_ISREG(st.st_mode)
            else "dir" if stat.S_ISDIR(st.st_mode)
            else "symlink" if stat.S_ISLNK(st.st_mode)
            else "other"
        )  # fmt: skip
        return FileInfo(
            owner=users.get(st.st_uid, str(st.st_uid)),
            group=groups.get(st.st_gid, str(st.st_gid)),
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            kind=kind,
            size=st.st_size,
        )

    def _names(self, db: str) -> dict[int, str]:
        names: dict[int, str] = {}
        for line in self.read_text(db).splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                names.setdefault(int(fields[2]), fields[0])
        return names

    def copy_in(self, host_path: StrPath, dest: str = PKG_DIR) -> str:
        """Copy a host file or directory into the root; `dest` ending in / means "into"."""
        src = Path(host_path)
        inside = f"{dest}{src.name}" if dest.endswith("/") else dest
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)
        return inside

    # --- faults: small file systems and wrapped commands ---

    def mount_small_fs(self, p: str, *, size: str = "16m") -> None:
        """Put in-root directory `p` on a tmpfs of its own (size `size`) with the same content,
        owner and mode, so that `fill()` can make exactly that file system full. Unmounted with
        the root."""
        host = self.path(p)
        st = host.stat()
        keep = self.workdir / f"keep-{len(list(self.workdir.glob('keep-*')))}"
        run_host(["cp", "-a", "--", host, keep])
        run_host(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", host])
        run_host(["cp", "-a", "--", f"{keep}/.", host])
        os.chown(host, st.st_uid, st.st_gid)
        host.chmod(stat.S_IMODE(st.st_mode))
        _remove_tree(keep)

    def fill(self, p: str) -> None:
        """Fill the file system holding in-root directory `p` until a write fails with ENOSPC."""
        fill_fs(self.path(p))

    def unfill(self, p: str) -> None:
        """Free what fill() took on the file system holding `p` (the administrator made room)."""
        self.path(p).joinpath(FILLER).unlink()

    def wrap(self, command: str, script: Callable[[str], str]) -> None:
        """Replace `command` inside the root by the executable `script(real)`, where `real` is
        the in-root path the real program is kept at, whatever PATH its caller has (rpm gives
        scriptlets its own). `unwrap()` puts it back."""
        if command in self._wrapped:
            raise HarnessError(f"{command} is already wrapped in {self.dir}")
        found = self.run("sh", "-c", 'command -v "$1"', "sh", command, check=False).stdout.strip()
        if not found.startswith("/"):
            raise HarnessError(f"{command} is not a program in {self.dir}")
        host = self.path(found, follow_symlinks=False)
        link = os.readlink(host) if host.is_symlink() else None
        if link is not None:
            # sh -> dash: the program stays where the link pointed, only the link is replaced.
            real = self.run("readlink", "-f", found).stdout.strip()
            host.unlink()
        else:
            real = f"{WRAPPED_DIR}/{command}"
            self.path(WRAPPED_DIR).mkdir(parents=True, exist_ok=True)
            os.rename(host, self.path(real))
        self._wrapped[command] = (found, link)
        host.write_text(script(real))
        host.chmod(0o755)

    def unwrap(self, command: str) -> None:
        found, link = self._wrapped.pop(command)
        host = self.path(found, follow_symlinks=False)
        if link is not None:
            host.unlink()
            host.symlink_to(link)
        else:
            os.replace(self.path(f"{WRAPPED_DIR}/{command}"), host)

    def unwrap_all(self) -> None:
        for command in list(self._wrapped):
            self.unwrap(command)

    def _in_root(self, args: Iterable[StrPath]) -> list[str]:
        # A host Path is a package file to copy in; a str is already an in-root path or a name.
        return [self.copy_in(a) if isinstance(a, os.PathLike) else a for a in args]

    # --- deb ---

    def dpkg(
        self, *args: StrPath, conf: Sequence[str] = CONF_OLD, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """dpkg with `conf` (default: keep modified conffiles, never prompt)."""
        return self.run("dpkg", *conf, *self._in_root(args), check=check)

    def apt_install(
        self,
        *debs_or_names: StrPath,
        allow_downgrades: bool = False,
        conf: Sequence[str] = CONF_OLD,
        extra: Sequence[str] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """`apt-get install -y` of package names and/or .deb files (host Paths are copied in)."""
        opts = [arg for c in conf for arg in ("-o", f"Dpkg::Options::={c}")]
        if allow_downgrades:
            opts.append("--allow-downgrades")
        return self.run("apt-get", "install", "-y", *opts, *extra, *self._in_root(debs_or_names), check=check)

    def dpkg_status(self, package: str) -> str:
        """dpkg's Status ("install ok installed", "deinstall ok config-files"), or "not-installed"
        for a package dpkg has forgotten or never knew."""
        proc = self.run("dpkg-query", "-W", "-f=${Status}", package, check=False)
        status = proc.stdout.strip()
        if proc.returncode != 0 or status.endswith(" not-installed") or not status:
            return "not-installed"
        return status

    # --- rpm and dnf (the root's own, as its generation has them) ---

    def rpm(
        self,
        *args: StrPath,
        nodeps: bool | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The root's rpm on its database (host Paths are copied in). `nodeps` defaults to on for
        install, upgrade, erase and verify: rpmbuild adds `Requires: /bin/sh`, which no rpm in a
        Debian root provides. Inside a booted root its scriptlets reach the running systemd."""
        strs = [os.fspath(a) for a in args]
        if nodeps is None:
            changes = r"-[iUFeV]|--(install|upgrade|freshen|reinstall|erase|verify)$"
            nodeps = any(re.match(changes, a) for a in strs)
        opts = ["--dbpath", RPM_DBPATH, *(["--nodeps"] if nodeps else [])]
        return self.run("rpm", *opts, *self._in_root(args), check=check, env=env)

    def rpm_query(self, *args: str, check: bool = True) -> str:
        """`rpm -q ARGS` on this root's database, stdout stripped."""
        return self.rpm("-q", *args, check=check).stdout.strip()

    def rpm_installed(self, name: str) -> bool:
        return self.rpm("-q", name, check=False).returncode == 0

    def dnf(
        self,
        *args: str,
        repo_dir: Path | None,
        repo_opts: Mapping[str, str] | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The root's dnf with only `repo_dir` (a host directory, copied in) as repository
        "local" (options per `repo_opts`, default gpgcheck=0), `env` added to its (and the
        scriptlets') environment. The provides shim is installed first, in its own transaction."""
        if not self._shim_installed and not self.rpm_installed(SHIM_NAME):
            # In the same transaction as the package, rpm's check still fails on /bin/sh (file
            # dependencies are matched against file lists there), so the shim goes in first, alone.
            self.rpm("-i", base_provides_rpm())
        self._shim_installed = True
        opts = [
            "-y", "--releasever=9", "--setopt=reposdir=/dev/null",
            "--setopt=install_weak_deps=False", "--refresh",
        ]  # fmt: skip
        if repo_dir is not None:
            inside = self.copy_in(repo_dir, f"/root/repos/{next(_repos)}")
            opts.append(f"--repofrompath=local,file://{inside}")
            opts += [f"--setopt=local.{k}={v}" for k, v in {"gpgcheck": "0", **(repo_opts or {})}.items()]
        return self.run("dnf", *opts, *args, check=check, env=env)


_repos = itertools.count()


# --- rpm building and repositories --------------------------------------------------------------


def build_rpm(spec_text: str, workdir: Path, *, defines: Mapping[str, str] | None = None) -> Path:
    """rpmbuild -bb a spec in a fresh _topdir under `workdir`; return the one binary rpm."""
    workdir.mkdir(parents=True, exist_ok=True)
    topdir = Path(tempfile.mkdtemp(prefix="rpmbuild-", dir=workdir))
    spec = topdir / "package.spec"
    spec.write_text(spec_text)
    argv = ["rpmbuild", "-bb", "--define", f"_topdir {topdir}"]
    for name, value in (defines or {}).items():
        argv += ["--define", f"{name} {value}"]
    run_host([*argv, spec], env=rpm_env())
    (rpm,) = (topdir / "RPMS").rglob("*.rpm")
    return rpm


@functools.cache
def base_provides_rpm() -> Path:
    """The provides shim (noarch, no files), built once per session."""
    spec = "\n".join(
        [
            f"Name: {SHIM_NAME}",
            "Version: 1",
            "Release: 1",
            "Summary: mmpkg test harness: what the Debian root provides, in rpm's terms",
            "License: MIT",
            "BuildArch: noarch",
            *(f"Provides: {p}" for p in SHIM_PROVIDES),
            "%description",
            "Lets dnf resolve RHEL-style dependencies in a Debian root that has them as debs.",
            "%files",
            "",
        ]
    )
    return build_rpm(spec, session_dir() / "shim")


def make_local_rpm_repo(rpms: Iterable[Path], repo_dir: Path) -> Path:
    """Copy `rpms` into `repo_dir` and index it with createrepo_c."""
    repo_dir.mkdir(parents=True, exist_ok=True)
    for rpm in rpms:
        shutil.copy2(rpm, repo_dir / rpm.name)
    run_host(["createrepo_c", "--quiet", repo_dir])
    return repo_dir


# --- booted tier --------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> None:
    """Poll `predicate` until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


def _ensure_nspawn_tmpfs() -> None:
    # nspawn refuses to clean up its propagation directory on a disk /run: it must be a tmpfs.
    target = Path("/run/systemd/nspawn")
    with _flock(session_dir().parent / ".lock"):
        if _fstype(target) != "tmpfs":
            target.mkdir(parents=True, exist_ok=True)
            run_host(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", target])


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _systemd_below(pid: int) -> int | None:
    children = _children()
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                return child
        todo += children.get(child, [])
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _terminate(pgid: int, leader: int | None) -> None:
    """Stop `timeout systemd-nspawn` (process group `pgid`) and the container it runs."""
    # SIGTERM reaches nspawn through `timeout` and shuts the container down cleanly.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        wait_until(lambda: not _alive(pgid), timeout=10)
    except AssertionError:
        # Killing the container's init kills its whole PID namespace; nspawn's death would not.
        if leader:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leader, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _kill_stale_containers(session: Path) -> None:
    for pidfile in session.glob("*/mmpkg-*.pid"):
        pgid = int(pidfile.read_text())
        # The pid may have been reused since the crash: only touch it if it is still our nspawn.
        with contextlib.suppress(OSError):
            if pidfile.stem.encode() in Path(f"/proc/{pgid}/cmdline").read_bytes():
                _terminate(pgid, _systemd_below(pgid))
        for own in own_cgroups():
            _remove_cgroup(own / pidfile.stem)


_machines = itertools.count()


class BootFactory(Protocol):
    """The `booted` fixture: boot the test's root (or `target`) and return the running container."""

    def __call__(self, target: Root | None = None) -> Booted: ...


CGROUP_FS = Path("/sys/fs/cgroup")


def own_cgroups(pid: int | str = "self") -> list[Path]:
    """The directories of `pid`'s cgroup in the hierarchies systemd keeps its processes in: the
    named `systemd` one (cgroup v1 and hybrid) and the unified one (v2)."""
    unified = CGROUP_FS if _fstype(CGROUP_FS) == "cgroup2" else CGROUP_FS / "unified"
    found = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        mount = {"name=systemd": CGROUP_FS / "systemd", "": unified}.get(controllers)
        if mount is not None and (mount / "cgroup.procs").exists():
            found.append(mount / path.lstrip("/"))
    return found


def _remove_cgroup(top: Path) -> None:
    """rmdir `top` and the cgroups below it, deepest first; one with processes left stays."""
    if not top.is_dir():
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(Path(w[0]).parts)):
        try:
            os.rmdir(dirpath)
        except OSError as e:
            log.warning("cannot remove cgroup %s: %s", dirpath, e)


class Booted:
    """`root` booted with systemd as PID 1 (systemd-nspawn -b), entered with nsenter.

    Each boot runs in a cgroup of its own below the caller's: with --keep-unit, nspawn puts the
    container in `payload` below its own cgroup, so two containers booted side by side from the
    same cgroup (pytest-xdist workers) would share one tree, and each one's systemd would stop
    and remove the other's units.

    While booted, `root.run()` and the deb helpers go through nsenter too; the chroot mounts and
    the policy-rc.d are removed for the boot and put back afterwards.
    """

    def __init__(self, root: Root, *, timeout: int = 600, boot_timeout: float = 60.0) -> None:
        self.root = root
        # Unique per process and per boot: pytest-xdist workers may boot in parallel.
        self.name = f"mmpkg-{os.getpid()}-{next(_machines)}"
        self.timeout = timeout
        self.boot_timeout = boot_timeout
        self.log_path = root.workdir / f"{self.name}.log"
        # Lets a later run stop this container if the test process dies (_clean_stale).
        self._pidfile = root.workdir / f"{self.name}.pid"
        self.leader = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._active = False  # between detaching the chroot tier and restoring it
        self._had_policy = False
        self.cgroups = [own / self.name for own in own_cgroups()]

    def __enter__(self) -> Booted:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Booted:
        if self._active or self.root.booted is not None:
            raise HarnessError(f"{self.root.dir} is already booted")
        _ensure_nspawn_tmpfs()
        self.root.detach_api_mounts()
        self._active = True
        self._had_policy = self.root.exists(POLICY_RC_D)
        self.root.set_policy_rc_d(False)
        for cgroup in self.cgroups:
            cgroup.mkdir()
        # The shell moves itself into the boot's cgroups, then becomes `timeout` and nspawn.
        enter = 'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs"; shift; done; shift; exec "$@"'
        argv = [
            "sh", "-c", enter, "sh", *map(str, self.cgroups), "--",
            "timeout", str(self.timeout), "systemd-nspawn", "--register=no", "--keep-unit",
            "--link-journal=no", "-M", self.name, "-D", str(self.root.dir), "-b",
            "--console=read-only",
        ]  # fmt: skip
        log.debug("+ %s", shlex.join(argv))
        try:
            with self.log_path.open("wb") as out:
                # A new session, so nspawn never touches pytest's terminal; `timeout` bounds a hang.
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=host_env(), start_new_session=True,
                )  # fmt: skip
            self._pidfile.write_text(f"{self._proc.pid}\n")
            self._wait_for_leader()
            self.root.booted = self
            self._wait_until_running()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_leader(self) -> None:
        # nspawn forks an intermediate child before exec'ing systemd; nsenter into that one
        # fails or hangs. Only a process named systemd is the container's init.
        def found() -> bool:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise HarnessError(f"systemd-nspawn exited early:\n{self.console()}")
            self.leader = _systemd_below(self._proc.pid) or 0
            return self.leader != 0

        wait_until(found, timeout=self.boot_timeout, interval=0.01, what="systemd in the container")

    def _wait_until_running(self) -> None:
        state = ""

        def up() -> bool:
            nonlocal state
            state = self.exec("systemctl", "is-system-running", check=False).stdout.strip()
            return state in {"running", "degraded"}

        try:
            wait_until(up, timeout=self.boot_timeout, what="systemctl is-system-running")
        except AssertionError as e:
            raise HarnessError(f"{e} (last state {state!r}):\n{self.console()}") from None

    def exec(
        self,
        *argv: StrPath,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in all of the container's namespaces (it is not a child of its systemd)."""
        return run_host(
            ["nsenter", "-t", str(self.leader), "-a", *argv],
            check=check,
            env=root_env(env),
            input=input,
            timeout=timeout,
            where=f"booted {self.name}",
        )

    def wait_for(
        self,
        condition: Callable[[], bool] | Sequence[str],
        *,
        timeout: float = 30.0,
        interval: float = 0.1,
    ) -> None:
        """Wait until `condition` is true, or until a command given as a list exits 0."""
        if callable(condition):
            wait_until(condition, timeout=timeout, interval=interval)
            return
        argv = list(condition)
        last: subprocess.CompletedProcess[str] | None = None

        def succeeds() -> bool:
            nonlocal last
            last = self.exec(*argv, check=False)
            return last.returncode == 0

        try:
            wait_until(succeeds, timeout=timeout, interval=interval, what=shlex.join(argv))
        except AssertionError as e:
            output = "" if last is None else f"{last.stdout}{last.stderr}"
            raise AssertionError(f"{e}; last output:\n{_tail(output)}") from None

    def journal(self, unit: str) -> str:
        """`journalctl -u unit`, for failure messages."""
        proc = self.exec("journalctl", "--no-pager", "-o", "short-precise", "-u", unit, check=False)
        return proc.stdout + proc.stderr

    def console(self) -> str:
        """What systemd-nspawn and the container's console printed so far."""
        return _tail(self.log_path.read_text(errors="replace")) if self.log_path.exists() else ""

    def poweroff(self, timeout: float = 30.0) -> int | None:
        """`systemctl poweroff` and wait; returns nspawn's exit code (0 for a clean shutdown)."""
        return self.stop(timeout)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Shut down (poweroff, then SIGTERM, then SIGKILL); idempotent; restores the chroot tier."""
        if not self._active:
            return None
        proc, self._proc = self._proc, None
        try:
            if proc is None:
                return None
            if proc.poll() is None and self.leader:
                with contextlib.suppress(CommandFailed):
                    self.exec("systemctl", "poweroff", check=False, timeout=timeout)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return proc.wait(timeout)
            _terminate(proc.pid, self.leader)
            return proc.wait(10)
        finally:
            self._active = False
            self._pidfile.unlink(missing_ok=True)
            for cgroup in self.cgroups:
                _remove_cgroup(cgroup)
            self.root.booted = None
            self.root.attach_api_mounts()
            self.root.set_policy_rc_d(self._had_policy)
