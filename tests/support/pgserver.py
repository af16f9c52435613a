"""Real PostgreSQL clusters for the tests, on loopback ports: 13, 15 and 17, the versions Debian
11, 12 and 13 ship.

15 is the host's: Debian's `postgresql` package (/usr/lib/postgresql/15/bin), its cluster in a
temporary directory. 13 and 17 are Debian's own builds, `postgresql-13` from bullseye and
`postgresql-17` from trixie: a cached root with the package (harness.pristine_root; built once,
1-2 minutes) and the server running chrooted in an overlay of it, its cluster inside the
overlay. Every root shares the host's network, so the sample server and pg_dump, on the host or
in another root, reach any of them on 127.0.0.1.

One cluster per major and session, one database (and its owner) per test:
`PgServer.new_database()`. Logins take a password (scram-sha-256), as on a real server, so a
wrong or missing password is refused. The postmaster is a child of the test process that dies
with it (setpriv --pdeathsig), so a crashed or killed run leaves no server behind; the cluster's
directory goes with the session (a stale overlay is swept by the next run, harness.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import harness

PG_BIN = Path(os.environ.get("MMPKG_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "mmpkg_admin"
HOST_MAJOR = 15
# The Debian release each major comes from: Debian 11, 12 and 13's own PostgreSQL.
SUITES = {13: "bullseye", 15: "bookworm", 17: "trixie"}
MAJORS = tuple(SUITES)
# The host's tools for any cluster: setpriv starts its programs as postgres, psql asks it.
HOST_TOOLS = ("setpriv", "psql")


def root_packages(major: int) -> tuple[str, ...]:
    """A root's packages for a server of `major`: Debian's own, and setpriv (util-linux) to
    drop to the postgres user the package made there."""
    return (f"postgresql-{major}", "util-linux")


@dataclass(frozen=True)
class PgDatabase:
    """One test's database, owned by its own role."""

    server: PgServer
    name: str
    user: str
    password: str

    def dsn(self, *, host: str = "127.0.0.1", port: int | None = None, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return (
            f"postgres://{self.user}:{secret}@{host}:{port or self.server.port}/{self.name}"
            "?sslmode=disable&connect_timeout=5"
        )

    def query(self, sql: str) -> list[str]:
        """Rows of `sql`, as the database's owner sees them ("a|b" for two columns)."""
        return self.server.psql(sql, database=self.name, user=self.user, password=self.password)


@dataclass
class PgServer:
    major: int
    port: int
    password: str
    log: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    def psql(
        self, sql: str, *, database: str = "postgres", user: str = SUPERUSER, password: str = ""
    ) -> list[str]:
        # The host's psql (15) for every server: the queries here are plain SQL, which any
        # libpq speaks to any of them.
        env = harness.host_env({"PGPASSWORD": password or self.password})
        argv: list[harness.StrPath] = [
            PG_BIN / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
            "-p", str(self.port), "-U", user, "-d", database, "-c", sql,
        ]  # fmt: skip
        return harness.run_host(argv, env=env, timeout=60).stdout.splitlines()

    def server_version_num(self) -> int:
        return int(self.psql("SHOW server_version_num")[0])

    def new_database(self, prefix: str = "mm") -> PgDatabase:
        n = next(self._names)
        name, user, password = f"{prefix}_{n}", f"{prefix}_user_{n}", secrets.token_urlsafe(12)
        self.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self.psql(f"CREATE DATABASE {name} OWNER {user}")
        return PgDatabase(server=self, name=name, user=user, password=password)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class _Place:
    """Where a cluster's programs run: on the host (`chroot` None) or chrooted in a root, with
    the cluster's directory `base` as they see it and `host_base` as the host sees it."""

    bindir: str
    base: str
    host_base: Path
    chroot: Path | None = None

    def as_postgres(self, program: str, *args: str) -> list[str]:
        # setpriv resolves the name in the root's own /etc/passwd; --pdeathsig: the program dies
        # with the test process however that ends.
        argv = [
            "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--pdeathsig=KILL",
            "--", f"{self.bindir}/{program}", *args,
        ]  # fmt: skip
        return ["chroot", str(self.chroot), *argv] if self.chroot else argv


@contextlib.contextmanager
def pg_server(major: int = HOST_MAJOR) -> Iterator[PgServer]:
    """Start a cluster of PostgreSQL `major` (13, 15 or 17; about 1 s, and for 13 and 17 the
    root's first build) and stop and delete it when the block ends."""
    if major not in SUITES:
        raise ValueError(f"no PostgreSQL {major} here: {', '.join(map(str, MAJORS))}")
    if major == HOST_MAJOR:
        with _host_place() as place:
            yield from _cluster(major, place)
    else:
        with _root_place(major) as place:
            yield from _cluster(major, place)


@contextlib.contextmanager
def _host_place() -> Iterator[_Place]:
    harness.require(*HOST_TOOLS, str(PG_BIN / "initdb"))
    base = Path(tempfile.mkdtemp(prefix="mmpkg-pg-"))
    try:
        base.chmod(0o755)
        shutil.chown(base, "postgres", "postgres")  # the package made the user
        yield _Place(bindir=str(PG_BIN), base=str(base), host_base=base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def _root_place(major: int) -> Iterator[_Place]:
    harness.require(*harness.ROOT_TOOLS, *HOST_TOOLS)
    lower = harness.pristine_root(suite=SUITES[major], packages=root_packages(major))
    with harness.Root(lower, name=f"postgresql-{major}") as root:
        # The package's postgres user owns its home; the cluster goes below it.
        base = "/var/lib/postgresql/mmpkg"
        home = root.stat("/var/lib/postgresql")
        host_base = root.path(base)
        host_base.mkdir(mode=0o755)
        os.chown(host_base, home.uid, home.gid)
        yield _Place(
            bindir=f"/usr/lib/postgresql/{major}/bin", base=base, host_base=host_base, chroot=root.dir
        )


def _cluster(major: int, place: _Place) -> Iterator[PgServer]:
    password = secrets.token_urlsafe(16)
    pwfile = place.host_base / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    owner = place.host_base.stat()
    os.chown(pwfile, owner.st_uid, owner.st_gid)
    harness.run_host(
        place.as_postgres(
            "initdb", "-D", f"{place.base}/data", "-U", SUPERUSER, f"--pwfile={place.base}/pwfile",
            "--auth=scram-sha-256", "--no-sync", "-E", "UTF8",
        ),
        timeout=120,
        where=f"initdb of PostgreSQL {major}",
    )  # fmt: skip
    pwfile.unlink()
    log = place.host_base / "log"
    for attempt in itertools.count(1):
        port = _free_port()
        with log.open("ab") as out:
            # The postmaster in the foreground, a child of this process, in a session of its
            # own so that a ^C to pytest does not reach it before the fixture stops it.
            proc = subprocess.Popen(
                place.as_postgres(
                    "postgres", "-D", f"{place.base}/data", "-p", str(port), "-k", place.base,
                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                ),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=harness.host_env(),
                start_new_session=True,
            )  # fmt: skip
        server = PgServer(major=major, port=port, password=password, log=log)
        try:
            if _wait_ready(server, proc):
                break
            # Another worker took the port between _free_port and the bind: try another one.
            if attempt >= 3 or "Address already in use" not in log.read_text(errors="replace"):
                raise harness.HarnessError(
                    f"PostgreSQL {major} did not start:\n{log.read_text(errors='replace')[-4000:]}"
                )
        except BaseException:
            _stop(proc)
            raise
    try:
        yield server
    finally:
        _stop(proc)


def _wait_ready(server: PgServer, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    """True once the server takes a login; False when it exited first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        try:
            server.psql("SELECT 1")
            return True
        except harness.CommandFailed:
            if time.monotonic() > deadline:
                raise harness.HarnessError(
                    f"PostgreSQL {server.major} took no login in {timeout:g} s:\n{server.log.read_text()[-4000:]}"
                ) from None
            time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """An immediate shutdown (SIGQUIT): nothing in these clusters is kept."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
