"""The database backup's decisions in the shell library, under dash and bash --posix: reading a
postgres:// URL as lib/pq does, and whether an upgrade dumps, warns or refuses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.support.harness import require
from tests.test_shell import FORMATS, SHELLS, ShellRunner, _quote

FIELDS = ("MM_PG_OK", "MM_PG_HOST", "MM_PG_PORT", "MM_PG_USER", "MM_PG_PASSWORD", "MM_PG_DB", "MM_PG_SSLMODE")
SECRET = "s3cr$(touch pwned)`touch pwned`"


@pytest.fixture(params=[(f, s) for f in FORMATS for s in SHELLS], ids=lambda p: f"{p[0]}-{p[1].split()[0]}")
def sh(request: pytest.FixtureRequest, tmp_path: Path) -> ShellRunner:
    fmt, shell = request.param
    return ShellRunner(fmt, shell, tmp_path)


URLS = [
    "postgres://mmuser:mostest@localhost/mattermost_test?sslmode=disable&connect_timeout=10&binary_parameters=yes",
    "postgresql://u:p%40ss%3Aw%2Fd%25@db.example:6543/my%20db",
    "postgres://u@[::1]:5433/d?sslmode=verify-full",
    "postgres://u:pw@%2Fvar%2Frun%2Fpostgresql/d",
    "postgres://u:%0Apw%C3%A9@h/d",
    "postgres://u:" + SECRET.replace("`", "%60") + "@h/d",
    "postgres://h",
]


def parse(sh: ShellRunner, url: str) -> list[str]:
    fields = " ".join(f'"${name}"' for name in FIELDS)
    out = sh.ok(f"mm_pg_parse_url {_quote(url)}\nprintf '%s\\037' {fields}")
    assert not (sh.tmp / "pwned").exists()
    return out.split("\x1f")[:-1]


@pytest.mark.parametrize("url", URLS)
def test_a_url_is_read_as_urllib_reads_it(sh: ShellRunner, url: str) -> None:
    parts = urlsplit(url)
    expected = [
        "1",
        unquote(parts.hostname or "") if "[" not in parts.netloc else parts.hostname or "",
        str(parts.port or ""),
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        unquote(parts.path.lstrip("/")),
        dict(p.split("=", 1) for p in parts.query.split("&") if p).get("sslmode", ""),
    ]
    got = parse(sh, url)
    # urllib lowercases the host; lib/pq does not, and neither does the library.
    assert [got[0], got[1].lower(), *got[2:]] == expected


def test_the_last_at_sign_ends_the_password_and_the_query_can_name_the_host(sh: ShellRunner) -> None:
    assert parse(sh, "postgres://u:p@ss@h:1/d") == ["1", "h", "1", "u", "p@ss", "d", ""]
    assert parse(sh, "postgres:///d?host=%2Ftmp&port=5440") == ["1", "/tmp", "5440", "", "", "d", ""]


@pytest.mark.parametrize(
    "dsn",
    [
        "mysql://mm:pw@tcp(db:3306)/mattermost",
        "host=db user=mm password=pw dbname=mattermost",
        "postgres://u:%zz@h/d",
        "postgres://u:%00@h/d",
        "postgres://u:pw@h:port/d",
        "postgres://u:pw@h/d%",
        "",
    ],
)
def test_not_a_url_lib_pq_would_read(sh: ShellRunner, dsn: str) -> None:
    assert parse(sh, dsn)[0] == "0"


# ---- the decision: dump, warn and go on, refuse, or nothing at all ----


@pytest.fixture(scope="module")
def path_without_pg_dump(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with everything the host has except PostgreSQL's client tools."""
    bin_dir = tmp_path_factory.mktemp("bin-without-pg")
    for directory in os.environ["PATH"].split(os.pathsep):
        for tool in Path(directory).glob("*") if Path(directory).is_dir() else ():
            if tool.name in {"pg_dump", "pg_restore", "psql"} or (bin_dir / tool.name).exists():
                continue
            (bin_dir / tool.name).symlink_to(tool)
    return str(bin_dir)


DSN = f"postgres://mm:{SECRET.replace('`', '%60')}@db.example/mattermost?sslmode=disable"
# from, to, driver, dsn, environment, pg_dump installed, expected plan (or "refused")
DECISIONS = [
    ("10.5.2", "10.6.0", "postgres", DSN, {}, True, "dump"),
    ("10.5.2", "10.6.0", "", DSN, {}, True, "dump"),  # upstream's default driver
    ("10.6.0", "10.6.0", "postgres", DSN, {}, True, "off"),  # a reinstall migrates nothing
    ("10.5.2", "10.6.0", "postgres", DSN, {"MMPKG_DB_BACKUP": "0"}, True, "off"),
    ("10.5.2", "10.6.0", "mysql", "mm:pw@tcp(db:3306)/mm", {"MMPKG_DB_BACKUP": "0"}, False, "off"),
    ("10.5.2", "10.6.0", "mysql", "mm:pw@tcp(db:3306)/mm", {}, True, "skip"),
    ("10.5.2", "10.6.0", "mysql", "mm:pw@tcp(db:3306)/mm", {"MMPKG_REQUIRE_DB_BACKUP": "1"}, True, "refused"),
    ("10.5.2", "10.6.0", "postgres", "host=db user=mm", {}, True, "skip"),
    ("10.5.2", "10.6.0", "postgres", DSN, {}, False, "skip"),
    ("10.5.2", "10.6.0", "postgres", DSN, {"MMPKG_REQUIRE_DB_BACKUP": "1"}, False, "refused"),
    ("10.5.2", "10.6.0", "postgres", DSN, {"MMPKG_REQUIRE_DB_BACKUP": "1"}, True, "dump"),
    ("handmade", "10.6.0", "postgres", DSN, {}, True, "dump"),
]


@pytest.mark.parametrize(("old", "new", "driver", "dsn", "env", "pg_dump", "plan"), DECISIONS)
def test_backup_decision(
    sh: ShellRunner,
    path_without_pg_dump: str,
    old: str,
    new: str,
    driver: str,
    dsn: str,
    env: dict[str, str],
    pg_dump: bool,
    plan: str,
) -> None:
    if pg_dump:
        require("pg_dump", "pg_restore", root=False)
    else:
        env = {**env, "PATH": path_without_pg_dump}
    body = f"""
        mm_load_settings strict
        mm_db_backup_decide {old} {new} {_quote(driver)} {_quote(dsn)}
        echo "plan=$MM_DBB_PLAN"
    """
    proc = sh(body, **env)
    said = proc.stdout + proc.stderr
    assert "s3cr" not in said  # the password is never printed
    assert not (sh.tmp / "pwned").exists()
    if plan == "refused":
        assert proc.returncode == 1
        (error,) = [line for line in proc.stderr.splitlines() if line.startswith("mattermost: error:")]
        assert "MMPKG_REQUIRE_DB_BACKUP=1" in error and "Nothing was changed" in error
        return
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"plan={plan}"
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("mattermost: warning:")]
    assert len(warnings) == (plan == "skip"), proc.stderr
    if plan == "skip":
        assert "not backed up" in warnings[0] and "MMPKG_DB_BACKUP=0" in warnings[0]


def test_the_password_reaches_the_tool_in_its_environment_only(sh: ShellRunner) -> None:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("runs the tool as the service user with runuser: needs root")
    body = f"""
        MM_USER=root
        mm_pg_parse_url {_quote(DSN)}
        mm_pg_run sh -c 'printf "%s\\n" "$PGPASSWORD" "$PGHOST" "$PGDATABASE" "$PGSSLMODE"; tr "\\0" " " </proc/$PPID/cmdline'
    """
    lines = sh.ok(body).splitlines()
    assert lines[:4] == [SECRET, "db.example", "mattermost", "disable"]
    assert "s3cr" not in lines[4]  # the arguments of the process that started the tool
    assert not (sh.tmp / "pwned").exists()
