"""What a release refuses at start (mmpkg/mattermost/start_refusals.py): the table, the sample server that
stands for upstream's binary refusing the same on its own terms, the guard's shell functions
under dash and bash --posix, and the build.

The database servers are real: Debian 11's PostgreSQL 13, which 11.0 refuses and 10.11 takes,
Debian 12's 15 and Debian 13's 17 (tests/support/pgserver.py). Refusals of older servers than those
(10 for 8.0, 9.6 for 5.32) are shown with the sample's stand-in, which answers any
server_version_num, and with the shell comparing a real server's against a minimum above it.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mmpkg.build.options import BuildOptions
from mmpkg.build.pipeline import build
from mmpkg.errors import UsageError
from mmpkg.mattermost.start_refusals import TABLE, MinimumPostgres, RefusedSetting
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import PackageFormat
from sample_release import write_sample_release
from tests.support.pgserver import PgDatabase, PgServer, _free_port
from tests.test_sample import Install
from tests.test_shell import FORMATS, SHELLS, ShellRunner

V = MattermostVersion.parse
ARCHIVED = next(row for row in TABLE.settings if row.key == "ExperimentalViewArchivedChannels")


# ---- the table ----


def test_every_row_names_its_source_and_the_minima_rise() -> None:
    rows: list[MinimumPostgres | RefusedSetting] = [*TABLE.postgres, *TABLE.settings]
    assert all(row.source.startswith(("https://docs.mattermost.com/", "https://github.com/")) for row in rows)
    assert [row.since for row in TABLE.postgres] == sorted(row.since for row in TABLE.postgres)
    assert [row.version_num for row in TABLE.postgres] == sorted({row.version_num for row in TABLE.postgres})


MINIMA = [
    ("5.31.9", None), ("5.32.0", 10), ("7.8.15", 10), ("8.0.0", 11), ("10.5.2", 11), ("10.6.0", 13),
    ("10.11.1", 13), ("11.0.0-rc1", 13), ("11.0.0", 14), ("11.10.0", 14),
]  # fmt: skip


@pytest.mark.parametrize(("version", "major"), MINIMA)
def test_the_minimum_in_force(version: str, major: int | None) -> None:
    row = TABLE.minimum_postgres(V(version))
    assert (row.major if row else None) == major


def test_a_refused_setting_is_a_boolean_of_its_value_from_its_release_on() -> None:
    assert (
        ARCHIVED.refuses(V("11.0.0"), False)
        and ARCHIVED.env == "MM_TEAMSETTINGS_EXPERIMENTALVIEWARCHIVEDCHANNELS"
    )
    assert not ARCHIVED.refuses(V("10.11.1"), False)
    assert not ARCHIVED.refuses(V("11.0.0"), True)
    assert not ARCHIVED.refuses(V("11.0.0"), 0) and not ARCHIVED.refuses(V("11.0.0"), None)
    assert ARCHIVED.named_in('{"TeamSettings": {"ExperimentalViewArchivedChannels": true}}')
    assert not ARCHIVED.named_in('{"TeamSettings": {"SiteName": "x"}}') and not ARCHIVED.named_in("{}")


# ---- the sample server refuses what the table says, the way upstream does ----


def _install(version: str, tmp: Path, server_version_num: int | None = None) -> Install:
    tarball = write_sample_release(V(version), dest=tmp / "releases")
    into = tmp / version
    into.mkdir()
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    install = Install(into / "mattermost", into / "db")
    install.db_dir.mkdir()
    if server_version_num is not None:
        (install.db_dir / "server_version_num").write_text(f"{server_version_num}\n")
    return install


def _found(num: int) -> str:
    return f"{num // 10000}.{num % 10000}"  # upstream's versionString


def _before(version: MattermostVersion) -> MattermostVersion:
    """A release just before `version`'s line."""
    if version.minor:
        return MattermostVersion(version.major, version.minor - 1, 0)
    return MattermostVersion(version.major - 1, 99, 0)


@pytest.mark.parametrize("row", TABLE.postgres, ids=lambda r: f"{r.since}")
def test_the_sample_refuses_an_older_postgresql_from_the_rows_release(
    row: MinimumPostgres, tmp_path: Path
) -> None:
    """One below the row's minimum: its release stops at start before migrating, and so does
    `db migrate` (6.5 on); the release before it, whose own minimum is lower, runs."""
    below = row.version_num - 1
    since = _install(str(row.since), tmp_path, below)
    refused = f"minimum Postgres version requirements not met. Found: {_found(below)}, Wanted: {_found(row.version_num)}"
    server = since.run("server")
    assert server.returncode == 1
    if row.since.at_least(11):
        assert server.stderr.strip().endswith(
            f"Error: failed to initialize platform: cannot create store: error while checking DB version: {refused}"
        )
    else:  # mlog.Fatal: the log line, then exit 1
        fatal = [json.loads(line) for line in server.stdout.splitlines() if '"fatal"' in line]
        assert [(f["msg"], f["error"]) for f in fatal] == [("Error while checking DB version.", refused)]
    if row.since.at_least(6, 5):
        migrate = since.run("db", "migrate")
        assert migrate.returncode == 1
        assert (
            migrate.stderr.splitlines()[-1]
            == f"Error: failed to create migrator: error while checking DB version: {refused}"
        )
    assert not (since.db_dir / "mattermost_test.json").exists()  # nothing migrated
    ok = _install(str(_before(row.since)), tmp_path, below).run("db", "version")
    assert ok.returncode == 0, ok.stderr
    at = _install(str(row.since), tmp_path / "at", row.version_num).run("db", "version")
    assert at.returncode == 0, at.stderr


@pytest.mark.parametrize("row", TABLE.settings, ids=lambda r: r.name)
def test_the_sample_refuses_a_refused_setting_from_the_rows_release(
    row: RefusedSetting, tmp_path: Path
) -> None:
    env = {row.env: json.dumps(row.value)}
    since = _install(str(row.since), tmp_path)
    refused = since.run("server", env=env)
    assert refused.returncode == 1
    text = row.upstream if row is ARCHIVED else row.name
    last = refused.stderr.splitlines()[-1]  # after the warning about running as root
    assert last.startswith("Error: failed to load configuration: failed to create store: ") and text in last
    earlier = MattermostVersion(row.since.major - 1, 11, 0)
    assert _install(str(earlier), tmp_path, None).run("db", "migrate", env=env).returncode == 0


# Each release line's verdict on each real PostgreSQL: 10.11 (wants 13) takes them all; 11.0
# (wants 14) refuses Debian 11's 13.
REAL = [("10.11.1", 13, True), ("11.0.0", 13, False), ("11.0.0", 15, True), ("11.0.0", 17, True)]


@pytest.mark.parametrize(("version", "major", "starts"), REAL, ids=[f"{v}-pg{m}" for v, m, _ in REAL])
def test_the_sample_reads_the_real_servers_version(
    postgres_of: Callable[[int], PgServer], version: str, major: int, starts: bool, tmp_path: Path
) -> None:
    server = postgres_of(major)
    db = server.new_database()
    install = _install(version, tmp_path)
    env = {"MMPKG_SAMPLE_DB_DIR": "", "MM_SQLSETTINGS_DATASOURCE": db.dsn()}
    migrate = install.run("db", "migrate", env=env)
    if starts:
        assert migrate.returncode == 0, migrate.stderr
        assert db.query("SELECT count(*) FROM db_migrations") == ["1"]
        return
    wanted = TABLE.minimum_postgres(V(version))
    assert wanted is not None
    found = server.server_version_num()
    refused = f"minimum Postgres version requirements not met. Found: {_found(found)}, Wanted: {_found(wanted.version_num)}"
    assert migrate.returncode == 1
    assert (
        migrate.stderr.splitlines()[-1]
        == f"Error: failed to create migrator: error while checking DB version: {refused}"
    )
    server_run = install.run("server", env=env)
    assert server_run.returncode == 1
    assert server_run.stderr.strip().endswith(
        f"Error: failed to initialize platform: cannot create store: error while checking DB version: {refused}"
    )
    assert db.query("SELECT to_regclass('db_migrations') IS NULL") == ["t"]  # nothing migrated


# ---- the guard, in the shell ----


@pytest.fixture(params=[(f, s) for f in FORMATS for s in SHELLS], ids=lambda p: f"{p[0]}-{p[1].split()[0]}")
def sh(request: pytest.FixtureRequest, tmp_path: Path) -> ShellRunner:
    fmt, shell = request.param
    return ShellRunner(fmt, shell, tmp_path)


def _config(sh: ShellRunner, settings: dict[str, dict[str, object]]) -> None:
    (sh.tmp / "etc").mkdir(exist_ok=True)
    (sh.tmp / "etc/config.json").write_text(json.dumps(settings))


def _check(version: str) -> str:
    """The guard's setting check as mm_check_upgrade_path runs it: after config.json is read."""
    return f"MM_VERSION={version}\nmm_load_settings strict\nmm_check_config\nmm_check_start_settings\necho passed"


def test_a_refused_setting_in_config_json(sh: ShellRunner) -> None:
    _config(sh, {"TeamSettings": {"ExperimentalViewArchivedChannels": False}})
    error = sh.fails(_check("11.0.0"))
    assert error == (
        "mattermost: error: Mattermost 11.0.0 will not start with TeamSettings.ExperimentalViewArchivedChannels=false, "
        f'set by {sh.tmp}/etc/config.json (upstream: "{ARCHIVED.upstream}"): set it to true there, or remove it, '
        "then try again; nothing was changed"
    )
    assert sh.ok(_check("10.11.1")).strip() == "passed"


@pytest.mark.parametrize(
    ("env", "override", "where"),
    [
        ("f", None, "mattermost.env (MM_TEAMSETTINGS_EXPERIMENTALVIEWARCHIVEDCHANNELS=f)"),
        (None, False, "overrides.d/60-archived.json"),
        ("TRUE", False, None),  # the variable wins
        (None, True, None),  # the last override wins over config.json
        ("yes", None, None),  # not a Go boolean: the server ignores the variable
    ],
)
def test_where_a_refused_setting_comes_from(
    sh: ShellRunner, env: str | None, override: bool | None, where: str | None
) -> None:
    _config(sh, {"TeamSettings": {"ExperimentalViewArchivedChannels": True}})
    if env is not None:
        (sh.tmp / "etc/mattermost.env").write_text(
            f"MM_TEAMSETTINGS_EXPERIMENTALVIEWARCHIVEDCHANNELS={env}\n"
        )
    (sh.tmp / "etc/overrides.d").mkdir()
    (sh.tmp / "etc/overrides.d/50-team.json").write_text(
        '{"TeamSettings": {"ExperimentalViewArchivedChannels": false}}'
    )
    if override is not None:
        (sh.tmp / "etc/overrides.d/60-archived.json").write_text(
            json.dumps({"TeamSettings": {"ExperimentalViewArchivedChannels": override}})
        )
    else:
        (sh.tmp / "etc/overrides.d/50-team.json").unlink()
    if where is None:
        assert sh.ok(_check("11.0.0")).strip() == "passed"
    else:
        assert f"set by {sh.tmp}/etc/{where} " in sh.fails(_check("11.0.0"))


def test_the_packages_own_override_wins_over_config_json(sh: ShellRunner) -> None:
    _config(sh, {"TeamSettings": {"ExperimentalViewArchivedChannels": False}})
    args = "TeamSettings ExperimentalViewArchivedChannels MM_TEAMSETTINGS_EXPERIMENTALVIEWARCHIVEDCHANNELS"
    body = "mm_load_settings strict\nmm_check_config\n"
    assert sh.ok(body + f"mm_start_setting {args} 0") == f"false {sh.tmp}/etc/config.json\n"
    assert sh.ok(body + f"mm_start_setting {args} 1") == ""


@pytest.mark.parametrize(
    ("num", "name"), [("150018", "15.18"), ("130000", "13.0"), ("90603", "9.6.3"), ("100001", "10.1")]
)
def test_a_server_version_num_as_people_write_it(sh: ShellRunner, num: str, name: str) -> None:
    assert sh.ok(f"mm_pg_version_name {num}") == f"{name}\n"


def test_the_minimum_in_force_in_the_shell(sh: ShellRunner) -> None:
    versions = ["5.31.9", "5.32.0", "8.0.0-rc1", "8.0.0", "10.6.0", "11.0.0", "12.3.4"]
    body = "".join(f'echo "$(mm_pg_minimum {v})"\n' for v in versions)
    expected = [TABLE.minimum_postgres(V(v)) for v in versions]
    assert sh.ok(body).splitlines() == [str(row.version_num) if row else "" for row in expected]


@pytest.fixture
def db(postgres: PgServer) -> PgDatabase:
    return postgres.new_database()


def _with_database(sh: ShellRunner, dsn: str) -> None:
    (sh.tmp / "etc").mkdir(exist_ok=True)
    (sh.tmp / "etc/mattermost.env").write_text(f"MM_SQLSETTINGS_DATASOURCE={dsn}\n")


def _db_check(version: str, old: str, minimum: int | None = None) -> str:
    """mm_check_database_version as the guard runs it; with `minimum`, for a release that wants
    that server_version_num (a minimum above the real server's, which no release has yet)."""
    model = "" if minimum is None else f'mm_pg_minimum() {{ [ "$1" = {old} ] || echo {minimum}; }}\n'
    return (
        f"{model}MM_VERSION={version}\nmm_load_settings strict\nmm_check_database_version {old}\necho passed"
    )


def _server_version_num(db: PgDatabase) -> int:
    return int(db.query("SHOW server_version_num")[0])


def test_the_database_servers_version_is_asked_and_compared(sh: ShellRunner, db: PgDatabase) -> None:
    _with_database(sh, db.dsn())
    real = _server_version_num(db)
    proc = sh(_db_check("11.0.0", "10.11.1"))  # 13 to 14: asked, and 15 will do
    assert proc.returncode == 0 and proc.stdout.strip() == "passed" and not proc.stderr, proc.stderr
    assert sh.ok(_db_check("11.0.0", "10.11.1", minimum=real)).strip() == "passed"
    error = sh.fails(_db_check("11.0.0", "10.11.1", minimum=(real // 10000 + 1) * 10000))
    assert error == (
        f"mattermost: error: refusing to upgrade to 11.0.0: the database server at 127.0.0.1:{db.server.port} runs "
        f"PostgreSQL {real // 10000}.{real % 10000}, and Mattermost 11.0.0 will not start on PostgreSQL older than "
        f'{real // 10000 + 1} (upstream: "minimum Postgres version requirements not met"). Upgrade PostgreSQL '
        "first, then try again; nothing was changed"
    )
    assert db.password not in error


def test_the_guard_refuses_11_on_a_real_postgresql_13_and_lets_10_11_through(
    sh: ShellRunner, postgres_of: Callable[[int], PgServer]
) -> None:
    """Debian 11's PostgreSQL 13, asked as the package's guard asks it: 10.11 (wants 13) goes
    on, 11.0 (wants 14) is refused with the version the server reports."""
    db = postgres_of(13).new_database()
    _with_database(sh, db.dsn())
    proc = sh(_db_check("10.11.1", "10.5.2"))  # 11 to 13: asked, and 13 will do
    assert proc.returncode == 0 and proc.stdout.strip() == "passed" and not proc.stderr, proc.stderr
    real = _server_version_num(db)
    assert real // 10000 == 13
    error = sh.fails(_db_check("11.0.0", "10.11.1"))
    assert error == (
        f"mattermost: error: refusing to upgrade to 11.0.0: the database server at 127.0.0.1:{db.server.port} runs "
        f"PostgreSQL 13.{real % 10000}, and Mattermost 11.0.0 will not start on PostgreSQL older than 14 "
        '(upstream: "minimum Postgres version requirements not met"). Upgrade PostgreSQL first, then try again; '
        "nothing was changed"
    )
    assert db.password not in error


def test_the_guard_lets_11_through_on_a_real_postgresql_17(
    sh: ShellRunner, postgres_of: Callable[[int], PgServer]
) -> None:
    _with_database(sh, postgres_of(17).new_database().dsn())
    proc = sh(_db_check("11.0.0", "10.11.1"))
    assert proc.returncode == 0 and proc.stdout.strip() == "passed" and not proc.stderr, proc.stderr


def test_the_database_is_not_asked_when_the_minimum_does_not_rise(sh: ShellRunner, db: PgDatabase) -> None:
    """The installed release wanted the same: it ran on that server. Unreachable, it says nothing."""
    _with_database(sh, db.dsn(port=_free_port()))
    proc = sh(_db_check("11.1.0", "11.0.0"))
    assert proc.returncode == 0 and proc.stdout.strip() == "passed" and not proc.stderr, proc.stderr


@pytest.mark.parametrize("case", ["unreachable", "refused-login", "not-a-url"])
def test_a_database_that_cannot_be_asked_warns(sh: ShellRunner, db: PgDatabase, case: str) -> None:
    dsn = {
        "unreachable": db.dsn(port=_free_port()),
        "refused-login": db.dsn(password="wrong"),
        "not-a-url": f"host=127.0.0.1 user={db.user} dbname={db.name}",
    }[case]
    _with_database(sh, dsn)
    proc = sh(_db_check("11.0.0", "10.11.1"))
    assert proc.returncode == 0 and proc.stdout.strip() == "passed", proc.stderr
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith("mattermost: warning: cannot tell which PostgreSQL the database server")
    assert warning.endswith(
        "and Mattermost 11.0.0 will not start on PostgreSQL older than 14: check it before the server starts"
    )
    assert "wrong" not in warning and db.password not in warning
    why = {"unreachable": "Connection refused", "refused-login": "password authentication failed",
           "not-a-url": "not a postgres:// URL"}[case]  # fmt: skip
    assert why in warning


# ---- the build ----


def test_a_build_refuses_a_setting_its_release_will_not_start_with(tmp_path: Path) -> None:
    tarball = write_sample_release(V("11.0.0"), dest=tmp_path / "releases")
    options = BuildOptions(
        maintainer="mmpkg tests <mmpkg-tests@example.com>",
        out=tmp_path / "out",
        formats=(PackageFormat.DEB,),
        settings=(("TeamSettings.ExperimentalViewArchivedChannels", False),),
    )
    with pytest.raises(UsageError) as refused:
        build(tarball, options)
    assert str(refused.value) == (
        "--set TeamSettings.ExperimentalViewArchivedChannels: Mattermost 11.0.0 will not start with false "
        f'(upstream: "{ARCHIVED.upstream}"); set it to true, or leave it out'
    )
    assert not list((tmp_path / "out").glob("*.deb"))
