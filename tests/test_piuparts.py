"""piuparts on the .deb: install, remove, reinstall, purge, and upgrade from the previous version.

piuparts (Debian's own install/upgrade/removal tester) records every file of a clean bookworm
chroot, runs the package through its life there and reports whatever was left behind, modified
or removed, plus broken symlinks, debsums mismatches and processes left running. It starts from
a gzip tarball of the cached mmdebstrap root (`harness.pristine_root()`), made once and kept
under harness.CACHE_DIR, so a run never debootstraps; the package's dependencies are already in
it, and its `apt-get update` finds the mirror's lists unchanged (or, offline, keeps them). The
previous version comes from a local flat repository (tests/support/aptrepo.py), bind-mounted into the
chroot and named with `--extra-repo`, as `man piuparts` shows.

The only ignores are what a purge keeps by design (docs/development.md, "piuparts"). Anything
else piuparts reports fails the test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import aptrepo, harness
from tests.support.packages import PackageFactory

pytestmark = pytest.mark.install

PREVIOUS, CURRENT = "10.5.2", "10.11.1"
PACKAGE = "mattermost"

TOOLS = ("piuparts", "tar", "gzip", *aptrepo.TOOLS)
# Bump when base_tarball() changes what goes into the tarball, so cached ones are remade.
BASE_LAYOUT = 1

# What a purge keeps by design (docs/administering.md; docs/development.md, "piuparts", explains each).
# The file store and plugins, unless MMPKG_PURGE_DATA=1. The leading ':' makes piuparts log each
# path it ignores, so the tests also see that the store really was kept.
STORE_KEPT = ":^/var/lib/mattermost/.*"
# Pre-upgrade configuration snapshots, unless MMPKG_PURGE_DATA=1. piuparts' own "/var/backups/.*"
# ignores them too (and first, so they are never logged); named so the contract is explicit.
BACKUPS_KEPT = "^/var/backups/mattermost/.*"
# The mattermost user and group are never deleted (piuparts ignores these files by default too).
USER_KEPT = tuple(
    f"/etc/{db}{suffix}" for db in ("passwd", "group", "shadow", "gshadow") for suffix in ("", "-")
)
IGNORES = (
    f"--ignore-regex={STORE_KEPT}",
    f"--ignore-regex={BACKUPS_KEPT}",
    *(f"--ignore={path}" for path in USER_KEPT),
)

# Defects piuparts finds in the package today: (its heading, the path) -> what is wrong. A test
# that finds only these xfails; once one is fixed the tests fail until it is deleted here.
# piuparts' closing verdicts, which only repeat the findings above them.
VERDICTS = ("Installation and purging test.", "Installation, upgrade and purging tests.")

# What the package creates in the file store, which a purge keeps.
STORE_DIRS = (
    "/var/lib/mattermost/", "/var/lib/mattermost/data/", "/var/lib/mattermost/plugins/",
    "/var/lib/mattermost/client/", "/var/lib/mattermost/client/plugins/",
)  # fmt: skip

_TIMESTAMP = re.compile(r"^\d+m\d+(?:\.\d+)?s [A-Z]+: ")


@dataclass(frozen=True)
class Piuparts:
    argv: list[str]
    returncode: int | None
    log: str

    def findings(self) -> set[tuple[str, str]]:
        """Each `FAIL:` message as (heading, path), or (heading, "") when it lists no paths."""
        found: set[tuple[str, str]] = set()
        lines = self.log.splitlines()
        for i, line in enumerate(lines):
            heading = line.partition("FAIL: ")[2].strip() if _TIMESTAMP.match(line) else ""
            if not heading or heading in VERDICTS:
                continue
            paths = []
            for item in lines[i + 1 :]:
                if _TIMESTAMP.match(item) or not item.strip():
                    break
                paths.append(item.strip().split("\t")[0].strip())
            found |= {(heading, p) for p in paths} or {(heading, "")}
        return found

    def kept(self) -> set[str]:
        """The paths an ignore hid in the final tree (those named with a leading ':')."""
        return {m[1] for m in re.finditer(r" INFO: IGNORED PATH@2: (.*)$", self.log, re.MULTILINE)}

    def passed(self, verdict: str) -> bool:
        return self.returncode == 0 and f"PASS: {verdict}" in self.log

    def excerpt(self) -> str:
        """The FAIL and ERROR lines with what follows them, and the end of the log."""
        lines = self.log.splitlines()
        keep = [i for i, line in enumerate(lines) if " ERROR: " in line or " FAIL: " in line]
        picked = sorted({j for i in keep for j in range(i, min(i + 12, len(lines)))})
        head = "\n".join(lines[j] for j in picked)
        return f"{' '.join(self.argv)}\n--- errors ---\n{head}\n--- end of log ---\n{self.log[-4000:]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def base_tarball(pristine: Path) -> Path:
    """piuparts' --basetgz: the pristine root as a gzip tarball (piuparts unpacks with tar -z),
    made once per pristine root and cached next to it under harness.CACHE_DIR."""
    cache = harness.CACHE_DIR / "piuparts"
    final = cache / f"{pristine.name}-{BASE_LAYOUT}.tgz"
    if final.is_file():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f"{final.name}.lock"):
        if final.is_file():
            return final
        partial = cache / f".{final.name}.{os.getpid()}"
        try:
            # Numeric owners: unpacked by name, the host's uids would replace the root's own.
            # gzip -1: half the time of the default level for 10 % more bytes.
            argv: list[harness.StrPath] = [
                "tar", "--create", "--use-compress-program=gzip -1", "--numeric-owner",
                "--one-file-system", f"--file={partial}", "-C", pristine, ".",
            ]  # fmt: skip
            harness.run_host(argv, timeout=900)
            os.rename(partial, final)
        finally:
            partial.unlink(missing_ok=True)
    return final


@pytest.fixture(scope="session")
def basetgz(pristine: Path) -> Path:
    harness.require(*TOOLS)
    return base_tarball(pristine)


def piuparts(deb: Path, *options: str, basetgz: Path, workdir: Path) -> Piuparts:
    """One piuparts run on `deb` from `basetgz`, its chroot under `workdir`."""
    argv = [
        "piuparts", f"--distribution={harness.SUITE}",
        # The components the pristine root's apt lists have, so `apt-get update` has nothing new.
        f"--mirror={harness.MIRROR} main", f"--basetgz={basetgz}", f"--tmpdir={workdir}",
        # adequate's findings are warnings only, and only where it happens to be installed.
        "--no-adequate",
        # Stricter than the defaults: a dangling symlink and files left in /tmp fail too.
        "--fail-on-broken-symlinks", "--pedantic-purge-test",
        *IGNORES,
        *options, str(deb),
    ]  # fmt: skip
    proc = harness.run_host(argv, check=False, env=harness.host_env({"TMPDIR": str(workdir)}), timeout=900)
    return Piuparts(argv, proc.returncode, proc.stdout + proc.stderr)


def assert_piuparts_passed(result: Piuparts, verdict: str, *, kept: Iterable[str]) -> None:
    """piuparts found nothing, the purge kept each of `kept` (in-root paths, directories ending
    in /), and piuparts said PASS for `verdict`."""
    found = sorted(result.findings())
    assert not found, f"piuparts found {found}:\n{result.excerpt()}"
    missing = sorted(set(kept) - result.kept())
    assert not missing, f"the purge did not keep {missing}:\n{result.excerpt()}"
    # A PASS for this test, not just exit 0: piuparts skips an upgrade test it cannot set up.
    assert result.passed(verdict), f"piuparts did not pass {verdict!r}:\n{result.excerpt()}"


@pytest.fixture
def workdir(request: pytest.FixtureRequest) -> Path:
    """A directory for piuparts' chroot (on disk, in the harness's session directory, so a crashed
    run's mounts are cleaned up by the next one); removed with the session."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]
    return Path(tempfile.mkdtemp(prefix=f"piuparts-{name}-", dir=harness.session_dir()))


def test_install_remove_reinstall_purge(basetgz: Path, packages: PackageFactory, workdir: Path) -> None:
    # --install-remove-install: install, remove, install again over the kept configuration
    # (dpkg's config-files state), reinstall, then purge and compare with the clean chroot.
    deb = packages.build(CURRENT).deb
    result = piuparts(deb, "--no-upgrade-test", "--install-remove-install", basetgz=basetgz, workdir=workdir)
    assert_piuparts_passed(result, "Installation and purging test.", kept=STORE_DIRS)


def test_upgrade_from_previous_version(basetgz: Path, packages: PackageFactory, workdir: Path) -> None:
    # piuparts installs the old version by name with apt-get, upgrades to the .deb, then purges.
    repo = aptrepo.flat_repo([packages.build(PREVIOUS).deb], workdir / "repo")
    result = piuparts(
        packages.build(CURRENT).deb, "--no-install-purge-test",
        f"--bindmount={repo.path}", f"--extra-repo={repo.source}",
        basetgz=basetgz, workdir=workdir,
    )  # fmt: skip
    # The old version really came from the repository and was upgraded.
    upgraded = f"Unpacking {PACKAGE} ({CURRENT}-1) over ({PREVIOUS}-1)"
    assert upgraded in result.log, f"no {upgraded!r}:\n{result.excerpt()}"
    assert_piuparts_passed(result, "Installation, upgrade and purging tests.", kept=STORE_DIRS)


def test_findings_are_read_from_the_log() -> None:
    log = (
        "0m14.2s ERROR: FAIL: Package purging left files on system:\n"
        "  /var/lib/mattermost/\t not owned\n"
        "  /var/lib/mattermost/data/\t not owned\n"
        "\n"
        "0m14.2s ERROR: FAIL: After purging files have disappeared:\n"
        "  /opt/\t owned by: mattermost\n"
        "\n"
        "0m14.2s ERROR: FAIL: Processes are running inside chroot:\n"
        "0m14.2s ERROR: FAIL: Installation and purging test.\n"
    )
    log += "0m14.3s INFO: IGNORED PATH@2: /var/lib/mattermost/data/\n"
    result = Piuparts(["piuparts"], 1, log)
    assert result.kept() == {"/var/lib/mattermost/data/"}
    assert result.findings() == {
        ("Package purging left files on system:", "/var/lib/mattermost/"),
        ("Package purging left files on system:", "/var/lib/mattermost/data/"),
        ("After purging files have disappeared:", "/opt/"),
        ("Processes are running inside chroot:", ""),
    }
    assert not result.passed("Installation and purging test.")
