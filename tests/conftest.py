"""Shared pytest fixtures.

Install-test fixtures (`pristine`, `root`, `booted`) wrap tests/support/harness.py; see its docstring.
PostgreSQL fixtures (`postgres`, `postgres_of`) wrap tests/support/pgserver.py.
`--update-goldens` (the `update_goldens` fixture) rewrites tests/test_templates.py's golden files.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.pgserver import HOST_MAJOR, PgServer, pg_server

_SUMMARY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="rewrite tests/golden/ from what the templates render now (tests/test_templates.py); review the diff",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    """Whether this run rewrites the golden files instead of comparing against them."""
    return bool(request.config.getoption("--update-goldens"))


def pytest_report_header() -> str:
    chosen = ", ".join(d.name for d in harness.selected_distros())
    return f"distributions (generations tests, {harness.DISTROS_ENV}): {chosen}; the rest: {harness.DEFAULT_DISTRO.name}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `generations` whose roots are made by `root` runs once per selected
    distribution; every other test gets the `distro` fixture's default, Debian 12."""
    if "distro" in metafunc.fixturenames and metafunc.definition.get_closest_marker("generations"):
        chosen = harness.selected_distros()
        metafunc.parametrize("distro", chosen, ids=[d.name for d in chosen], scope="function")


@pytest.fixture
def distro() -> harness.Distro:
    """The generation a test's `root` is made of (parametrized for `generations` tests)."""
    return harness.DEFAULT_DISTRO


@pytest.fixture(autouse=True)
def _packages_for_the_root(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on another generation than the default installs packages built for it (`--target
    debian-11`: an xz .deb its dpkg 1.20 reads), as its administrator would build them."""
    distro = request.getfixturevalue("distro") if "distro" in request.fixturenames else None
    if distro is None or distro == harness.DEFAULT_DISTRO:
        yield
        return
    factory: PackageFactory = request.getfixturevalue("packages")
    factory.default_targets = (distro.name,)
    try:
        yield
    finally:
        factory.default_targets = ()


@pytest.fixture(scope="session")
def pristine() -> Path:
    """The cached Debian 12 root (built once, ~15 s); read-only, only ever an overlay lower."""
    harness.require(*harness.ROOT_TOOLS)
    return harness.pristine_root()


@pytest.fixture
def root(distro: harness.Distro, request: pytest.FixtureRequest) -> Iterator[harness.Root]:
    """A fresh overlay root of `distro` for this test, unmounted and deleted afterwards whatever
    happens."""
    harness.require(*harness.ROOT_TOOLS)
    lower = harness.pristine_root(suite=distro.suite)
    with harness.Root(lower, name=request.node.name, distro=distro) as r:
        yield r


@pytest.fixture
def booted(root: harness.Root) -> Iterator[harness.BootFactory]:
    """`booted()` boots the test's root (or `booted(other_root)`); all are shut down afterwards."""
    harness.require(*harness.BOOT_TOOLS)
    started: list[harness.Booted] = []

    def boot(target: harness.Root | None = None) -> harness.Booted:
        container = harness.Booted(target or root)
        started.append(container)
        return container.start()

    yield boot
    for container in reversed(started):
        container.stop()


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> PackageFactory:
    """Sample releases and their packages, each built once per session."""
    return PackageFactory(tmp_path_factory.mktemp("packages"))


@pytest.fixture(scope="session")
def postgres_of() -> Iterator[Callable[[int], PgServer]]:
    """`postgres_of(major)`: a real PostgreSQL 13, 15 or 17 (Debian 11's, 12's, 13's) on
    127.0.0.1, started on first use and stopped at the end of the session (each xdist worker
    has its own). 15 is the host's; 13 and 17 run chrooted in a cached root of bullseye's or
    trixie's package, built once (about 30 s), then about 2 s a session."""
    started: dict[int, PgServer] = {}
    with contextlib.ExitStack() as stack:

        def get(major: int) -> PgServer:
            if major not in started:
                started[major] = stack.enter_context(pg_server(major))
            return started[major]

        yield get


@pytest.fixture(scope="session")
def postgres(postgres_of: Callable[[int], PgServer]) -> PgServer:
    """The host's real PostgreSQL 15 for the session; `postgres.new_database()` per test."""
    return postgres_of(HOST_MAJOR)


@pytest.fixture
def terminal_summary(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """`terminal_summary(text)` prints `text` in pytest's summary at the end of the run, with or
    without -s (what a test measured or covered, for the log)."""
    return request.config.stash.setdefault(_SUMMARY, []).append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    texts = terminalreporter.config.stash.get(_SUMMARY, [])
    if texts:
        terminalreporter.write_sep("=", "measured and covered")
        for text in texts:
            terminalreporter.write_line(text)


@pytest.fixture(scope="session", autouse=True)
def _stop_gpg_agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """gpg starts an agent for each test's GnuPG home, which outlives the test session and holds
    inotify instances (the kernel allows 128 a user; systemd-nspawn needs some): stop them."""
    yield
    base = tmp_path_factory.getbasetemp()
    subprocess.run(["pkill", "-f", f"gpg-agent --homedir {base}/"], check=False)
