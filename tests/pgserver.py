"""A real PostgreSQL 15 cluster for the tests, on a loopback port, in a temporary directory.

Debian's `postgresql` package on the host provides the server (/usr/lib/postgresql/15/bin);
the throw-away roots share the host's network, so the sample server and pg_dump inside a root
reach it on 127.0.0.1. One cluster per session, one database (and its owner) per test:
`PgServer.new_database()`. Logins take a password (scram-sha-256), as on a real server, so a
wrong or missing password is refused.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import harness

PG_BIN = Path(os.environ.get("MMPKG_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "mmpkg_admin"


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
    base: Path
    port: int
    password: str
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.base / "data"

    def psql(
        self, sql: str, *, database: str = "postgres", user: str = SUPERUSER, password: str = ""
    ) -> list[str]:
        env = harness.host_env({"PGPASSWORD": password or self.password})
        argv: list[harness.StrPath] = [
            PG_BIN / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
            "-p", str(self.port), "-U", user, "-d", database, "-c", sql,
        ]  # fmt: skip
        return harness.run_host(argv, env=env, timeout=60).stdout.splitlines()

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


def _as_postgres(*argv: str | os.PathLike[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *(os.fspath(a) for a in argv)]


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """Start a cluster (about 1 s) and stop and delete it when the block ends."""
    harness.require("runuser", "psql", str(PG_BIN / "initdb"))
    pwd.getpwnam("postgres")  # the package made the user the server runs as
    base = Path(tempfile.mkdtemp(prefix="mmpkg-pg-"))
    try:
        base.chmod(0o755)
        shutil.chown(base, "postgres", "postgres")
        password = secrets.token_urlsafe(16)
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        harness.run_host(
            _as_postgres(
                PG_BIN / "initdb", "-D", base / "data", "-U", SUPERUSER, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "--no-sync", "-E", "UTF8",
            ),
            timeout=120,
        )  # fmt: skip
        pwfile.unlink()
        port = _free_port()
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        harness.run_host(
            _as_postgres(
                PG_BIN / "pg_ctl", "-D", base / "data", "-o", options, "-l", base / "log", "-w", "start"
            ),
            timeout=120,
        )
        server = PgServer(base=base, port=port, password=password)
        try:
            yield server
        finally:
            subprocess.run(
                _as_postgres(PG_BIN / "pg_ctl", "-D", base / "data", "-m", "immediate", "-w", "stop"),
                capture_output=True,
                check=False,
                timeout=60,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
