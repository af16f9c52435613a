"""The lifecycle shell library on its own: rendered once per format, run under dash and under
bash --posix (RHEL's /bin/sh), table-driven, in milliseconds and without root.

Install tests prove the scripts with real package managers; these pin down the small decisions
those scripts make (version order, the upgrade guard, every setting's check, the environment
file parser, the JSON merge) for every input, including the ones no install test reaches.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from mmpkg.build.templates import render
from tests.support.harness import require
from tests.support.packages import PackageFactory
from tests.test_templates import fixed_spec

SHELLS = ("dash", "bash --posix")
FORMATS = ("deb", "rpm")


@functools.cache
def library(fmt: str) -> str:
    """The lifecycle library, and the chained upgrade that only mattermost-pkg carries."""
    view = {"spec": fixed_spec(), "fmt": fmt, "context": "maintscript"}
    admin = (
        "templates/lifecycle.sh.j2",
        "templates/lifecycle/chain.sh.j2",
        "templates/lifecycle/rollback.sh.j2",
    )
    return "".join(render(name, **view) for name in admin)


def run_sh(
    fmt: str,
    shell: str,
    body: str,
    tmp: Path,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Source the library with its paths moved under `tmp`, then run `body` with errexit on
    (under `prefix`, such as unshare, if given)."""
    if shutil.which(shell.split()[0]) is None:
        require(shell.split()[0], root=False)
    script = tmp / "script.sh"
    script.write_text(
        "set -e\n"
        + library(fmt)
        + f"""
MM_ETC={tmp}/etc MM_SHARE={tmp}/share MM_BACKUPS={tmp}/backups MM_LOGS={tmp}/logs MM_STATE={tmp}/state
MM_CONFIG_DIR={tmp}/etc/config MM_CONFIG="$MM_ETC/config.json" MM_ENV_FILE="$MM_ETC/mattermost.env"
MM_USER=root MM_GROUP=root
MM_PACKAGE_CONF="$MM_ETC/package.conf" MM_OVERRIDES_DIR="$MM_ETC/overrides.d"
MM_PENDING="$MM_BACKUPS/pending" MM_LAST_CONFIGURED="$MM_BACKUPS/last-configured-version"
MM_HEAL="$MM_BACKUPS/heal" MM_REPORT="$MM_BACKUPS/last-report.json" MM_REPORT_SECRET="$MM_ETC/report.secret"
mm_systemd_running() {{ return 1; }}
"""
        + body
        + "\n"
    )
    full_env = {"PATH": os.environ["PATH"], "HOME": str(tmp)} | dict(env or {})
    return subprocess.run(
        [*prefix, *shell.split(), str(script)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=tmp,
        timeout=300,
    )


@pytest.fixture(params=[(f, s) for f in FORMATS for s in SHELLS], ids=lambda p: f"{p[0]}-{p[1].split()[0]}")
def sh(request: pytest.FixtureRequest, tmp_path: Path) -> ShellRunner:
    fmt, shell = request.param
    return ShellRunner(fmt, shell, tmp_path)


class ShellRunner:
    def __init__(self, fmt: str, shell: str, tmp: Path) -> None:
        self.fmt, self.shell, self.tmp = fmt, shell, tmp
        for sub in ("etc", "share", "backups", "logs", "state"):
            (tmp / sub).mkdir(exist_ok=True)

    def __call__(self, body: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_sh(self.fmt, self.shell, body, self.tmp, env)

    def ok(self, body: str, **env: str) -> str:
        proc = self(body, **env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def fails(self, body: str, **env: str) -> str:
        """The body must end the script with exactly one `mattermost: error:` line."""
        proc = self(body, **env)
        assert proc.returncode != 0, proc.stdout
        errors = [line for line in proc.stderr.splitlines() if line.startswith("mattermost: error: ")]
        assert len(errors) == 1, proc.stderr
        return errors[0]


# ---- versions ----

ORDER = [
    ("10.5.2", "10.11.1"),
    ("9.11.0", "10.0.0"),
    ("10.0.0-rc1", "10.0.0"),
    ("10.0.0-rc2", "10.0.0-rc10"),
    ("5.37.9", "5.37.10"),
    ("0.0.1", "999999.0.0"),
    ("7.1.0", "7.10.0"),
]
NOT_VERSIONS = [
    "", "unreadable", "unknown", "10.5", "10.5.2.1", "10..2", ".10.5", "10.5.", "10.5.x",
    "v10.5.2", "10.5.2-beta1", "10.5.2-rc", "1234567.0.0", "10.5.2 ", "-1.0.0", "10.5.2-rc1-rc2",
]  # fmt: skip


@pytest.mark.parametrize(("older", "newer"), ORDER)
def test_version_order(sh: ShellRunner, older: str, newer: str) -> None:
    out = sh.ok(
        f"""
        if mm_version_lt {older} {newer}; then echo lt; fi
        if mm_version_lt {newer} {older}; then echo gt; fi
        if mm_version_lt {older} {older}; then echo self; fi
        """
    )
    assert out.split() == ["lt"]


@pytest.mark.parametrize("text", NOT_VERSIONS)
def test_not_a_version(sh: ShellRunner, text: str) -> None:
    assert sh.ok(f"if mm_version_valid '{text}'; then echo valid; else echo invalid; fi").strip() == "invalid"
    # Compared anyway, it ends the script instead of answering "not older".
    assert "cannot compare" in sh.fails(f"if mm_version_lt '{text}' 10.5.2; then :; fi; echo unreachable")


# ---- the upgrade guard (the package is 10.5.2) ----

GUARD = [
    # (installed, environment, refused because ...)
    ("", {}, None),
    ("10.5.2", {}, None),
    ("10.5.1", {}, None),
    ("9.11.0", {}, None),
    ("9.5.0", {}, None),  # across 9.11: supported, not tested
    ("8.1.0", {}, "upgrade to 9.5 (ESR) first"),  # across 9.5 and 9.11
    ("7.1.0", {}, "upgrade to 7.8 (ESR) first"),
    ("10.11.1", {}, "refusing to downgrade"),
    ("10.11.1", {"MMPKG_ALLOW_DOWNGRADE": "1"}, None),
    ("7.0.0", {}, "upgrade to 7.1 (ESR) first"),
    ("5.36.0", {}, "upgrade to 5.37 (ESR) first"),
    ("7.0.0", {"MMPKG_ALLOW_UNSUPPORTED_UPGRADE": "1"}, None),
    ("unreadable", {}, "cannot read the installed version"),
    ("unknown", {}, "cannot read the installed version"),
    ("10.5", {}, "cannot read the installed version"),
    ("garbage", {"MMPKG_ALLOW_DOWNGRADE": "1"}, "cannot read the installed version"),
    ("garbage", {"MMPKG_ALLOW_UNSUPPORTED_UPGRADE": "1"}, None),
]


@pytest.mark.parametrize(("installed", "env", "refusal"), GUARD)
def test_guard(sh: ShellRunner, installed: str, env: dict[str, str], refusal: str | None) -> None:
    body = f"mm_load_settings strict\nmm_check_upgrade_path '{installed}'\necho allowed"
    if refusal is None:
        assert sh.ok(body, **env).strip().endswith("allowed")
    else:
        assert refusal in sh.fails(body, **env)


def test_guard_reads_an_empty_version_file_as_unreadable(sh: ShellRunner) -> None:
    (sh.tmp / "share").mkdir(exist_ok=True)
    (sh.tmp / "share/version").write_text("")
    assert "cannot read the installed version ('unreadable'" in sh.fails(
        'mm_load_settings strict\nv=$(mm_installed_version)\nmm_check_upgrade_path "$v"'
    )


# ---- settings: checked before anything changes, the same in dash and bash ----

BAD_SETTINGS = [
    ("MMPKG_BACKUP_KEEP", "abc"),
    ("MMPKG_BACKUP_KEEP", "0"),
    ("MMPKG_BACKUP_KEEP", "-1"),
    ("MMPKG_BACKUP_KEEP", ""),
    ("MMPKG_BACKUP_KEEP", "1e3"),
    ("MMPKG_BACKUP_KEEP", "99999999999999999999"),
    ("MMPKG_BACKUP_KEEP", "a[$(touch pwned)]"),
    ("MMPKG_BACKUP_KEEP", "x[`touch pwned`]"),
    ("MMPKG_START_TIMEOUT", "2m"),
    ("MMPKG_START_TIMEOUT", "1.5"),
    ("MMPKG_ALLOW_DOWNGRADE", "yes"),
    ("MMPKG_ALLOW_UNSUPPORTED_UPGRADE", "true"),
    ("MMPKG_PURGE_DATA", "2"),
    ("MMPKG_DB_BACKUP", "yes"),
    ("MMPKG_REQUIRE_DB_BACKUP", "2"),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_bad_setting_is_refused(sh: ShellRunner, name: str, value: str) -> None:
    line = sh.fails("mm_load_settings strict\necho loaded", **{name: value})
    assert name in line
    assert not (sh.tmp / "pwned").exists()


@pytest.mark.parametrize(("value", "expected"), [("5", "5"), ("08", "8"), ("000012", "12"), ("1", "1")])
def test_counts_are_read_as_decimal(sh: ShellRunner, value: str, expected: str) -> None:
    assert (
        sh.ok('mm_load_settings strict\necho "$MM_BACKUP_KEEP"', MMPKG_BACKUP_KEEP=value).strip() == expected
    )


def write_conf(sh: ShellRunner, text: str, mode: int = 0o644) -> Path:
    conf = sh.tmp / "etc/package.conf"
    conf.write_text(text)
    conf.chmod(mode)
    return conf


def test_package_conf_holds_the_persistent_settings(sh: ShellRunner) -> None:
    if os.geteuid() != 0:
        pytest.skip("package.conf is only trusted when owned by root")
    write_conf(sh, "# kept for the upgrade robot\nMMPKG_BACKUP_KEEP=9\n  MMPKG_START_TIMEOUT = '30'\n")
    out = sh.ok('mm_load_settings strict\necho "$MM_BACKUP_KEEP $MM_START_TIMEOUT"')
    assert out.split() == ["9", "30"]
    # The environment still wins.
    out = sh.ok('mm_load_settings strict\necho "$MM_BACKUP_KEEP"', MMPKG_BACKUP_KEEP="2")
    assert out.strip() == "2"


def test_package_conf_values_are_checked(sh: ShellRunner) -> None:
    if os.geteuid() != 0:
        pytest.skip("package.conf is only trusted when owned by root")
    write_conf(sh, "MMPKG_BACKUP_KEEP=lots\n")
    line = sh.fails("mm_load_settings strict")
    assert "MMPKG_BACKUP_KEEP in" in line and "package.conf" in line and "'lots'" in line


def test_package_conf_one_off_switches_and_typos_are_ignored_with_a_warning(sh: ShellRunner) -> None:
    if os.geteuid() != 0:
        pytest.skip("package.conf is only trusted when owned by root")
    write_conf(sh, "MMPKG_ALLOW_DOWNGRADE=1\nMMPKG_BACKUP_KEPP=3\n")
    proc = sh('mm_load_settings strict\necho "$MM_ALLOW_DOWNGRADE $MM_BACKUP_KEEP"')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "5"]
    assert "MMPKG_ALLOW_DOWNGRADE in" in proc.stderr and "one-off switch" in proc.stderr
    assert "MMPKG_BACKUP_KEPP" in proc.stderr


def test_package_conf_others_can_write_is_not_read(sh: ShellRunner) -> None:
    write_conf(sh, "MMPKG_BACKUP_KEEP=1\n", mode=0o666)
    proc = sh('mm_load_settings strict\necho "$MM_BACKUP_KEEP"')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "5"
    assert "ignoring" in proc.stderr and "package.conf" in proc.stderr


# ---- the environment file, parsed as systemd's EnvironmentFile= (systemd.exec(5)) ----

ENV_LINES = [
    ("MM_A=plain", "plain"),
    ("MM_A = spaced ", "spaced"),
    ('MM_A="double quoted"', "double quoted"),
    ("MM_A='single quoted'", "single quoted"),
    ("  MM_A=leading blanks", "leading blanks"),
    ("MM_A=has=equals", "has=equals"),
    ("MM_A=$(touch pwned)", "$(touch pwned)"),
    ("MM_A=`touch pwned`", "`touch pwned`"),
    ("MM_A=a;b", "a;b"),
    ("# MM_A=commented", ""),
    ("; MM_A=commented", ""),
    ("export MM_A=not-an-assignment", ""),
    ("MM A=bad key", ""),
    ("1MM_A=bad key", ""),
]


@pytest.mark.parametrize(("line", "value"), ENV_LINES)
def test_env_file_parser(sh: ShellRunner, line: str, value: str) -> None:
    (sh.tmp / "etc/mattermost.env").write_text(f"MM_B=before\n{line}\nMM_C=after")
    out = sh.ok('printf \'[%s]\' "$(mm_env_value MM_A)" "$(mm_env_value MM_C)"')
    assert out == f"[{value}][after]"
    assert not (sh.tmp / "pwned").exists()


def test_env_file_last_assignment_wins(sh: ShellRunner) -> None:
    (sh.tmp / "etc/mattermost.env").write_text("MM_A=one\nMM_A=two\n")
    assert sh.ok("mm_env_value MM_A; echo").strip() == "two"


# ---- settings as the server sees them, and the JSON merge ----


def test_setting_keeps_false_and_zero(sh: ShellRunner) -> None:
    (sh.tmp / "etc/config.json").write_text(json.dumps({"S": {"F": False, "Z": 0, "E": "", "N": None}}))
    out = sh.ok("for k in F Z E N; do printf '[%s]' \"$(mm_setting S $k)\"; done")
    assert out == "[false][0][][]"


def test_environment_wins_over_config(sh: ShellRunner) -> None:
    (sh.tmp / "etc/config.json").write_text(json.dumps({"ServiceSettings": {"SiteURL": "file"}}))
    (sh.tmp / "etc/mattermost.env").write_text("MM_SERVICESETTINGS_SITEURL=env\n")
    assert sh.ok("mm_setting ServiceSettings SiteURL").strip() == "env"


PING = [
    (":8065", "http://127.0.0.1:8065/api/v4/system/ping"),
    ("", "http://127.0.0.1:8065/api/v4/system/ping"),
    ("localhost", "http://localhost:8065/api/v4/system/ping"),
    ("10.0.0.5:9000", "http://10.0.0.5:9000/api/v4/system/ping"),
    ("0.0.0.0:80", "http://127.0.0.1:80/api/v4/system/ping"),
    ("[::]:8065", "http://[::1]:8065/api/v4/system/ping"),
    ("[::1]", "http://[::1]:8065/api/v4/system/ping"),
    ("[fe80::1]:8443", "http://[fe80::1]:8443/api/v4/system/ping"),
    # What the service user wrote there reaches root's curl as one plain address, never as a
    # glob of many (curl's {a,b} and [1-9]) or another URL.
    ("{a,b,c}:8065", "http://127.0.0.1:8065/api/v4/system/ping"),
    ("[1-65535]:8065", "http://127.0.0.1:8065/api/v4/system/ping"),
    ("localhost:{1,2}", "http://localhost:8065/api/v4/system/ping"),
    ("example.com/x?y#:80", "http://127.0.0.1:80/api/v4/system/ping"),
    ("user@example.com:80", "http://127.0.0.1:80/api/v4/system/ping"),
]


@pytest.mark.parametrize(("listen", "url"), PING)
def test_ping_url(sh: ShellRunner, listen: str, url: str) -> None:
    (sh.tmp / "etc/config.json").write_text(json.dumps({"ServiceSettings": {"ListenAddress": listen}}))
    assert sh.ok("mm_ping_url").strip() == url


def deep_merge(base: Any, layer: Any) -> Any:
    out = dict(base)
    for key, value in layer.items():
        old = out.get(key)
        out[key] = deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def test_merge_layers_in_name_order(sh: ShellRunner) -> None:
    live: dict[str, Any] = {"A": {"x": 1, "keep": "yes", "nested": {"a": 1}}, "B": [1, 2], "Salt": "s3cr3t"}
    build: dict[str, Any] = {"A": {"x": 2, "nested": {"b": 2}}, "B": [3]}
    admin: dict[str, Any] = {
        "10 first.json": {"A": {"x": 3}, "C": False},
        "20-second.json": {"A": {"x": 4, "nested": {"a": None}}},
        "Z-upper.json": {"D": "upper sorts before lower in C"},
        "a-lower.json": {"D": "lower wins"},
    }
    (sh.tmp / "etc/config.json").write_text(json.dumps(live))
    (sh.tmp / "share/overrides.json").write_text(json.dumps(build))
    (sh.tmp / "etc/overrides.d").mkdir()
    for name, data in admin.items():
        (sh.tmp / "etc/overrides.d" / name).write_text(json.dumps(data))
    (sh.tmp / "etc/overrides.d/ignored.txt").write_text("{not json")
    sh.ok(f'mm_merge_into "{sh.tmp}/merged.json" "$MM_CONFIG"')
    expected = deep_merge(live, build)
    for name in sorted(admin, key=lambda n: n.encode()):
        expected = deep_merge(expected, admin[name])
    assert json.loads((sh.tmp / "merged.json").read_text()) == expected


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "not a JSON object"),
        ("[1]", "not a JSON object"),
        ("{", "not a JSON object"),
        ('"x"', "not a JSON object"),
    ],
)
def test_bad_override_file_is_refused_with_jq_reason(sh: ShellRunner, content: str, why: str) -> None:
    (sh.tmp / "etc/overrides.d").mkdir()
    (sh.tmp / "etc/overrides.d/50-bad.json").write_text(content)
    line = sh.fails("mm_check_overrides")
    assert "50-bad.json" in line and why in line


def test_override_the_release_has_no_setting_for_is_named(sh: ShellRunner) -> None:
    """The server drops what its Config struct has no field for whenever it writes config.json:
    such an override would be merged, dropped at the next start, and merged again."""
    (sh.tmp / "share/config.defaults.json").write_text(
        json.dumps({"TeamSettings": {"SiteName": "Mattermost"}, "PluginSettings": {"Plugins": {}}})
    )
    (sh.tmp / "etc/overrides.d").mkdir()
    (sh.tmp / "etc/overrides.d/50-site.json").write_text(
        json.dumps(
            {
                "TeamSettings": {"SiteName": "Chat", "SiteNmae": "typo"},
                "PluginSettings": {"Plugins": {"com.example.x": {"Token": "t"}}},
                "NoSuchSettings": {"A": 1},
            }
        )
    )
    proc = sh("mm_check_overrides\nmm_name_unknown_overrides")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("mattermost: warning: ")]
    assert len(warnings) == 1, proc.stderr
    assert "50-site.json" in warnings[0]
    assert "TeamSettings.SiteNmae, NoSuchSettings" in warnings[0]
    assert "drops" in warnings[0] and "Plugins" not in warnings[0]


# ---- "database unreachable" against "database refused us" ----

DB_OUTPUT = [
    ("Error: failed to ping DB: dial tcp 127.0.0.1:5432: connect: connection refused", True),
    ("Error: failed to ping DB: dial tcp: lookup db.internal: no such host", True),
    ("Error: failed to ping DB: dial tcp 10.1.1.1:5432: i/o timeout", True),
    ("Error: failed to ping DB: dial tcp 10.1.1.1:5432: connect: network is unreachable", True),
    ('Error: failed to ping DB: pq: password authentication failed for user "mmuser"', False),
    (
        "failed to connect to `host=db user=mm`: failed SASL auth (FATAL: password authentication failed)",
        False,
    ),
    ('Error: failed to ping DB: pq: role "mmuser" does not exist', False),
    ('Error: failed to ping DB: pq: database "mattermost" does not exist', False),
    ("Error: failed to apply database migrations: pq: relation already exists", False),
    # pg_dump's (libpq's) spelling of the same failures
    ('pg_dump: error: connection to server at "127.0.0.1", port 5999 failed: Connection refused', True),
    (
        'pg_dump: error: could not translate host name "db.internal" to address: Name or service not known',
        True,
    ),
    ('pg_dump: error: connection to server at "10.1.1.1", port 5432 failed: timeout expired', True),
    (
        'pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  password authentication failed for user "mm"',
        False,
    ),
    # localhost is two addresses to libpq; where ::1 is not configured (a container, a network
    # namespace with no interface up) the first says so and the next is refused.
    (
        'pg_dump: error: connection to server at "localhost" (::1), port 5432 failed: Cannot assign requested address\n'
        "\tIs the server running on that host and accepting TCP/IP connections?\n"
        'connection to server at "localhost" (127.0.0.1), port 5432 failed: Network is unreachable',
        True,
    ),
    ("", False),
]


@pytest.mark.parametrize(("output", "unreachable"), DB_OUTPUT)
def test_db_unreachable_is_only_a_network_failure(sh: ShellRunner, output: str, unreachable: bool) -> None:
    out = sh.ok(f"if mm_db_unreachable {_quote(output)}; then echo yes; else echo no; fi")
    assert out.strip() == ("yes" if unreachable else "no")


def test_a_script_in_a_network_namespace_of_its_own_knows_it(sh: ShellRunner) -> None:
    """rpm 4.20's unshare plugin runs scriptlets so (Debian 13's rpm does by default): no
    database can be reached from there, and the scripts say why instead of waiting for it."""
    require("unshare")
    body = 'if mm_offline; then echo offline; else echo online; fi; mm_offline_note; printf %s "$MM_OFFLINE_NOTE"'
    assert sh.ok(body) == "online\n"
    inside = run_sh(sh.fmt, sh.shell, body, sh.tmp, prefix=("unshare", "--net"))
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.startswith("offline\n; this script runs without network"), inside.stdout


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@contextlib.contextmanager
def postgres_that_refuses_logins() -> Iterator[int]:
    """A TCP port that answers like a PostgreSQL server refusing the login (ErrorResponse,
    SQLSTATE 28P01), after declining SSL and GSS encryption; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    refusal = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "mmuser"\0\0'

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                while (head := conn.recv(8)) and len(head) == 8:
                    length, code = struct.unpack("!II", head)
                    conn.recv(max(length - 8, 0))
                    if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                        conn.sendall(b"N")
                        continue
                    conn.sendall(b"E" + struct.pack("!I", len(refusal) + 4) + refusal)
                    break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def path_without(tmp: Path, *names: str) -> str:
    """A PATH with every command of this one but `names`."""
    hidden = tmp / "path-without"
    hidden.mkdir(exist_ok=True)
    for directory in os.environ["PATH"].split(":"):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = hidden / entry.name
            if entry.name not in names and not link.exists() and not link.is_symlink():
                link.symlink_to(entry.path)
    return str(hidden)


def with_data_source(sh: ShellRunner, dsn: str) -> None:
    (sh.tmp / "etc/config.json").write_text(json.dumps({"SqlSettings": {"DataSource": dsn}}))


@pytest.mark.parametrize("tool", ["pg_isready", "bash"])
def test_db_probe_tells_a_silent_server_from_one_that_answers(sh: ShellRunner, tool: str) -> None:
    """`db ping` (11.9+) ends every failure in "context deadline exceeded"; whether a server is
    there is asked of the network instead, as the service user: pg_isready, else bash's TCP."""
    needs_root()
    if tool == "pg_isready" and shutil.which("pg_isready") is None:
        pytest.skip("pg_isready (postgresql-client) is not installed")
    env = {} if tool == "pg_isready" else {"PATH": path_without(sh.tmp, "pg_isready")}
    probe = "mm_db_probe\necho $MM_DB_PROBE"
    with postgres_that_refuses_logins() as port:
        with_data_source(sh, f"postgres://mmuser:secret@127.0.0.1:{port}/mattermost?sslmode=disable")
        assert sh.ok(probe, **env).strip() == "answers"
    with_data_source(sh, f"postgres://mmuser:secret@127.0.0.1:{closed_port()}/mattermost")
    assert sh.ok(probe, **env).strip() == "silent"
    with_data_source(sh, "postgres://mmuser:secret@db.invalid/mattermost")
    assert sh.ok(probe, **env).strip() == "silent"
    with_data_source(sh, "mmuser:secret@tcp(localhost:3306)/mattermost")
    assert sh.ok(probe, **env).strip() == "unknown"


# What upstream's `db ping` prints when it gives up, for every cause (commands/db_ping.go).
PING_TIMEOUT = "Error: timed out waiting for database after 5 attempts: context deadline exceeded"


@pytest.mark.parametrize("answers", [False, True], ids=["nothing-there", "login-refused"])
def test_failed_db_ping_is_unreachable_only_when_nothing_answers(sh: ShellRunner, answers: bool) -> None:
    needs_root()
    prefix = sh.tmp / "opt"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin/mattermost").write_text(
        f"#!/bin/sh\necho \"$*\" >>{prefix}/ran\necho '{PING_TIMEOUT}' >&2\nexit 1\n"
    )
    (prefix / "bin/mattermost").chmod(0o755)
    body = f"""
        MM_PREFIX={prefix} MM_HAS_DB_MIGRATE=1 MM_HAS_DB_PING=1 MM_MIGRATE_LOG={sh.tmp}/logs/upgrade.log
        mm_migrate
        echo "$MM_MIGRATE_RESULT|$MM_MIGRATE_REASON"
    """
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(postgres_that_refuses_logins()) if answers else closed_port()
        with_data_source(sh, f"postgres://mmuser:secret@127.0.0.1:{port}/mattermost?sslmode=disable")
        result, _, reason = sh.ok(body).strip().splitlines()[-1].partition("|")
    assert (prefix / "ran").read_text() == "db ping --timeout 10s --retry-interval 2s\n"  # no migrate
    if answers:
        assert result == "failed"
        assert f"127.0.0.1:{port} answers" in reason and PING_TIMEOUT in reason
    else:
        assert (result, reason) == ("unreachable", "")


# ---- the strictest shellcheck on every script the packages carry ----

# SC2250 asks for ${var} braces around every expansion: style, with no effect on safety (SC2086
# quoting is enforced). SC2310 (errexit is off in a function called from a condition) is allowed
# only for the functions below: predicates with no side effects, functions that return each
# step's failure themselves, and wrappers of a single command whose exit status is the whole answer. Any other function called from `if`, `!`, `||` or `&&`
# fails this test.
EXCLUDED = ("SC2250",)
CONDITION_SAFE = {
    # predicates
    "mm_version_key", "mm_version_parts", "mm_version_valid", "mm_version_lt", "mm_env_assignment", "mm_config_in_database",
    "mm_json_object", "mm_systemd_running", "mm_service_active", "mm_unit_known", "mm_uses_mysql",
    "mm_handmade_install", "mm_leftover_install", "mm_installed_is_foreign", "mm_being_replaced", "mm_db_unreachable", "mm_offline", "mm_conf_trusted",
    "mm_pending_value", "mm_setting", "mm_conf_value", "mm_rewritten_files", "mm_pending_elsewhere",
    "mm_pct_decode", "mm_is_root", "mm_root_only_dir", "mm_root_owned_file", "mm_root_file", "mm_read_root_file",
    "mm_root_path", "mm_he_present", "mm_earlier_state", "mm_hidden", "mm_self_heals",
    # every step's failure returned explicitly
    "mm_write_manifest", "mm_hmac_sha256",
    # one command each
    "mm_as_service", "mm_read_service_file", "mm_invoke", "mm_run_as_service", "mm_service_stop", "mm_offered_versions", "mm_install_version",
    "mm_pg_run", "mm_downgrade_to", "mm_read_dump", "mm_read_database_config", "mm_unit_values",
}  # fmt: skip


def package_scripts(packages: PackageFactory, dest: Path) -> list[Path]:
    built = packages.build("10.5.2")
    subprocess.run(["dpkg-deb", "--control", built.deb, dest / "DEBIAN"], check=True)
    scripts = [dest / "DEBIAN" / s for s in ("preinst", "postinst", "prerm", "postrm")]
    admin = dest / "mattermost-pkg"
    subprocess.run(["dpkg-deb", "-x", built.deb, dest / "data"], check=True)
    shutil.copy(dest / "data/usr/sbin/mattermost-pkg", admin)
    scripts.append(admin)
    rpm_admin = dest / "rpm-mattermost-pkg"
    cpio = subprocess.run(["rpm2cpio", built.rpm], capture_output=True, check=True).stdout
    (dest / "rpmdata").mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=dest / "rpmdata", check=True)
    shutil.copy(dest / "rpmdata/usr/sbin/mattermost-pkg", rpm_admin)
    scripts.append(rpm_admin)
    for tag in ("PREIN", "POSTIN", "PREUN", "POSTUN", "POSTTRANS"):
        path = dest / f"rpm-{tag}"
        text = subprocess.run(
            ["rpm", "-qp", "--qf", f"%{{{tag}}}", built.rpm], capture_output=True, text=True, check=True
        ).stdout
        path.write_text("#!/bin/sh\n" + text)
        scripts.append(path)
    return scripts


@pytest.mark.tools
def test_scripts_pass_the_strictest_shellcheck(packages: PackageFactory, tmp_path: Path) -> None:
    require("shellcheck", "rpm2cpio", "cpio", root=False)
    for script in package_scripts(packages, tmp_path):
        text = script.read_text().splitlines()
        proc = subprocess.run(
            ["shellcheck", "-s", "sh", "-o", "all", "-e", ",".join(EXCLUDED), "-f", "json1", str(script)],
            capture_output=True,
            text=True,
        )
        comments = json.loads(proc.stdout)["comments"]
        problems = []
        for c in comments:
            where = text[c["line"] - 1][c["column"] - 1 :]
            called = re.match(r"!?\s*(\w+)", where)
            if c["code"] == 2310 and called and called.group(1) in CONDITION_SAFE:
                continue
            problems.append(f"{script.name}:{c['line']}: SC{c['code']} {c['message']}\n    {where.strip()}")
        assert not problems, "\n".join(problems)
        for shell in SHELLS:
            syntax = subprocess.run([*shell.split(), "-n", str(script)], capture_output=True, text=True)
            assert syntax.returncode == 0, f"{shell} {script.name}: {syntax.stderr}"


def test_lenient_settings_warn_and_use_the_default(sh: ShellRunner) -> None:
    """dpkg's unwinding and removals load settings leniently: a typo must not break them."""
    proc = sh('mm_load_settings lenient\necho "$MM_BACKUP_KEEP $MM_START_TIMEOUT"', MMPKG_BACKUP_KEEP="abc")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["5", "120"]
    assert "mattermost: warning: the environment variable MMPKG_BACKUP_KEEP is 'abc'" in proc.stderr


def test_rpm_scriptlet_refuses_a_missing_count(tmp_path: Path) -> None:
    """An empty $1 would otherwise read as a first install."""
    text = render("rpm/scriptlet.j2", scriptlet="pre", context="maintscript", spec=fixed_spec(), fmt="rpm")
    script = tmp_path / "pre.sh"
    script.write_text(text)
    for shell in SHELLS:
        proc = subprocess.run([*shell.split(), str(script), ""], capture_output=True, text=True)
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith("mattermost: error: rpm gave this scriptlet '' instead of")


def test_temporary_directory_when_tmpdir_does_not_exist(sh: ShellRunner) -> None:
    """dpkg hands its caller's TMPDIR to the scripts, even where it does not exist (a chroot)."""
    out = sh.ok('mm_make_tmp\necho "$MM_TMP"', TMPDIR=str(sh.tmp / "gone"))
    assert out.strip()
    assert not out.strip().startswith(str(sh.tmp / "gone"))


# ---- the privilege rule: what the service user may change while root works ----


def needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("changes owners and runs commands through runuser: needs root")


def test_adoption_takes_only_the_directory_it_checked(sh: ShellRunner) -> None:
    """Until the hand-made tree is root's, its user can put a link where config/ was (here, in
    the snapshot step); root must not then take, empty and hand over the link's target."""
    needs_root()
    prefix, victim = sh.tmp / "opt", sh.tmp / "victim"
    (prefix / "config").mkdir(parents=True)
    (prefix / "config/config.json").write_text("{}")
    handmade_binary(prefix, build_number="10.5.1")
    (victim / "sub").mkdir(parents=True)
    victim.chmod(0o755)
    proc = sh(
        f"""
        MM_PREFIX={prefix}
        mm_check_upgrade_path() {{ :; }}
        mm_refuse_unmanaged_server() {{ :; }}
        mm_prepare() {{
            mkdir -p "$MM_BACKUPS/snap" && ln -sfn "$MM_BACKUPS/snap" "$MM_PENDING"
            mv "$MM_PREFIX/config" "$MM_PREFIX/config.away" && ln -s {victim} "$MM_PREFIX/config"
        }}
        mm_adopt
        """
    )
    assert proc.returncode != 0, proc.stdout
    assert "is no longer a directory" in proc.stderr
    assert (victim.stat().st_mode & 0o7777) == 0o755
    assert (victim / "sub").is_dir()
    assert not (sh.tmp / "etc/config").exists()


# `db migrate`'s help, a string in every release binary from 6.5 on (upstream commands/db.go).
MIGRATE_HELP = "Migrate the database if there are any unapplied migrations"


def handmade_binary(prefix: Path, *, build_number: str, help_text: str = MIGRATE_HELP) -> Path:
    """A bin/mattermost that answers `version` like upstream's and notes every run in `ran`."""
    binary = prefix / "bin/mattermost"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(
        "#!/bin/sh\n"
        f"# {help_text}\n"
        f'echo "$*" >>{prefix}/ran\n'
        'if [ "$1" = version ]; then\n'
        f"    printf 'Version: 10.5.2\\nBuild Number: {build_number}\\nBuild Date: n/a\\n'\n"
        "    printf 'Build Hash: 0123\\nBuild Enterprise Ready: true\\n'\n"
        "fi\n"
    )
    binary.chmod(0o755)
    return binary


@pytest.mark.parametrize(("build_number", "read"), [("10.5.1", "10.5.1"), ("dev", "10.5.2"), ("", "10.5.2")])
def test_handmade_version_is_what_the_binary_prints(sh: ShellRunner, build_number: str, read: str) -> None:
    """A release binary's build information has no -ldflags (-trimpath): it is asked, as the
    service user; its Build Number, or else its Version when that is no release's number."""
    needs_root()
    prefix = sh.tmp / "opt"
    handmade_binary(prefix, build_number=build_number)
    out = sh.ok(f"MM_PREFIX={prefix}\nmm_handmade_version")
    assert out == f"{read}\n"
    assert (prefix / "ran").read_text() == "version\n"


def test_handmade_version_never_runs_a_binary_older_than_6_5(sh: ShellRunner) -> None:
    """Before 6.5 `mattermost version` started the server and migrated the database: a binary
    without `db migrate` (which came in the same change) is not run, and its version is unknown."""
    needs_root()
    prefix = sh.tmp / "opt"
    handmade_binary(prefix, build_number="6.4.3", help_text="Commands related to the database")
    assert sh.ok(f"MM_PREFIX={prefix}\nmm_handmade_version") == ""
    assert not (prefix / "ran").exists()


# ---- the environment of a hand-made unit, carried over on adoption ----


def handmade_unit(tmp: Path, service: str) -> Path:
    """A unit like upstream's, with `service` lines in its [Service] section."""
    unit = tmp / "mattermost.service"
    unit.write_text(
        "[Unit]\nDescription=Mattermost\nEnvironment=MM_NOT_A_SERVICE_SETTING=1\n\n"
        f"[Service]\nType=notify\n{service}\nExecStart=/opt/mattermost/bin/mattermost\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    return unit


def test_a_handmade_environment_is_carried_as_systemd_reads_it(sh: ShellRunner) -> None:
    """Environment= words, then each EnvironmentFile= (an empty one forgets those before it;
    '-' for a file that may be missing), the files' values winning; comments, quotes and spaces
    as systemd takes them; only MM_* names, the others named in one warning."""
    needs_root()
    first = sh.tmp / "first.env"
    first.write_text(
        "# the database (it's here)\n; MM_SQLSETTINGS_DRIVERNAME=mysql\n"
        "  MM_SQLSETTINGS_DATASOURCE = 'postgres://mm:pw@db/mm?sslmode=disable&connect_timeout=10'  \n"
        'MM_TEAMSETTINGS_SITENAME="Our chat"\nGOMAXPROCS=2\nexport MM_EXPORTED=1\nnot an assignment\n'
    )
    second = sh.tmp / "second.env"
    second.write_text("MM_TEAMSETTINGS_SITENAME=Later\nMM_CONFIG=postgres://mm:pw@db/mm")
    unit = handmade_unit(
        sh.tmp,
        f"EnvironmentFile={sh.tmp}/forgotten.env\nEnvironmentFile=\n"
        'Environment="MM_LOGSETTINGS_CONSOLELEVEL=DEBUG" LD_PRELOAD=/tmp/x.so\n'
        f"EnvironmentFile={first}\nEnvironmentFile=-{sh.tmp}/missing.env\nEnvironmentFile=-{second}",
    )
    proc = sh(
        f"""mm_handmade_environment {unit}
        sed '/^#/d' "$MM_ENV_CARRIED"
        echo "[$(mm_env_value MM_TEAMSETTINGS_SITENAME)]"
        if mm_config_in_database; then echo in-database; fi
        cat "$MM_TMP/handmade-env-files"
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "MM_LOGSETTINGS_CONSOLELEVEL=DEBUG",
        "MM_SQLSETTINGS_DATASOURCE=postgres://mm:pw@db/mm?sslmode=disable&connect_timeout=10",
        "MM_TEAMSETTINGS_SITENAME='Our chat'",
        "MM_TEAMSETTINGS_SITENAME=Later",
        "MM_CONFIG=postgres://mm:pw@db/mm",
        "[Later]",
        "in-database",
        str(first),
        str(second),
    ]
    assert proc.stderr.splitlines() == [
        "mattermost: warning: not carried over from the hand-made server's environment: LD_PRELOAD, GOMAXPROCS "
        f"(only MM_* settings go into {sh.tmp}/etc/mattermost.env; give the server others with "
        "'systemctl edit mattermost.service')"
    ]


REFUSED_ENVIRONMENTS = [
    # (the unit's [Service] lines, with {env} for the environment file; its text; the reason)
    (
        "EnvironmentFile={env}",
        'MM_TEAMSETTINGS_SITENAME="a \\"quoted\\" name"\n',
        "a value with a quote or a backslash",
    ),
    (
        "EnvironmentFile={env}",
        'HTTPS_PROXY="http://proxy\nMM_CONFIG=postgres://db/mm"\n',
        "a quote or a backslash",
    ),
    ("EnvironmentFile={env}", "MM_CONFIG=postgres://db/\\\nmm\n", "goes on over the next"),
    ("Environment=MM_FILESETTINGS_DIRECTORY=%h/data", "", "holds a specifier or a backslash"),
    ('Environment="MM_CONFIG=postgres://db/mm', "", "has a quote that is not closed"),
    ("EnvironmentFile=/opt/mattermost/config/*.environment", "", "a specifier, a backslash or a pattern"),
    ("EnvironmentFile=config/mattermost.environment", "", "is not an absolute path"),
    ("EnvironmentFile={env}.missing", "", "does not exist"),
]


@pytest.mark.parametrize(("service", "text", "why"), REFUSED_ENVIRONMENTS)
def test_a_handmade_environment_the_package_cannot_read_as_systemd_does_is_refused(
    sh: ShellRunner, service: str, text: str, why: str
) -> None:
    """Whatever it hides may be MM_CONFIG: where the configuration is must not be guessed."""
    needs_root()
    env = sh.tmp / "mattermost.environment"
    env.write_text(text)
    unit = handmade_unit(sh.tmp, service.format(env=env))
    error = sh.fails(f"mm_handmade_environment {unit}")
    assert error.startswith(
        "mattermost: error: cannot carry the environment of the hand-made server over: "
    ), error
    assert why in error
    assert error.endswith(f"(in {unit} or the file it names) and try again; nothing was changed"), error


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("config.json", True), ("/opt/mattermost/config/config.json", True), ("mysql://u:p@tcp(db)/mm", True),
     ("/etc/mattermost-custom.json", False), ("custom.json", False)],
)  # fmt: skip
def test_a_handmade_config_elsewhere_is_refused(sh: ShellRunner, value: str, accepted: bool) -> None:
    """MM_CONFIG naming another file: the package keeps the configuration in config.json only."""
    needs_root()
    env = sh.tmp / "mattermost.environment"
    env.write_text(f"MM_CONFIG={value}\n")
    body = f"MM_PREFIX=/opt/mattermost\nmm_handmade_environment {handmade_unit(sh.tmp, f'EnvironmentFile={env}')}"
    if accepted:
        sh.ok(body)
    else:
        error = sh.fails(body)
        assert f"the hand-made server reads its configuration from {value} (MM_CONFIG" in error


@pytest.mark.parametrize(
    ("name", "uid", "mode"),
    [("mattermost.env", 65534, 0o640), ("package.conf", 0, 0o666), ("overrides.d/50-x.json", 65534, 0o644)],
)
def test_rollback_restores_as_root_only_what_root_alone_wrote(
    sh: ShellRunner, name: str, uid: int, mode: int
) -> None:
    """An older package copied /etc/mattermost while the service user could write there: a copy
    of root's file that it owned (or could write) holds what it chose, and would come back as
    root's file (an environment file, read by systemd for the root part of the unit)."""
    needs_root()
    snap = sh.tmp / "backups/snap"
    (snap / "etc-mattermost/overrides.d").mkdir(parents=True)
    (snap / "state").write_text("from=10.5.1\nto=10.5.2\ncomplete=1\n")
    # The server's own file of an older snapshot is restored as the service user: allowed.
    (snap / "etc-mattermost/config.json").write_text("{}")
    os.chown(snap / "etc-mattermost/config.json", 65534, 65534)
    for other in ("mattermost.env", "package.conf", "overrides.d/50-x.json"):
        (snap / "etc-mattermost" / other).write_text("LD_PRELOAD=/var/lib/mattermost/x.so\n")
        (snap / "etc-mattermost" / other).chmod(0o644)
    os.chown(snap / "etc-mattermost" / name, uid, uid)
    (snap / "etc-mattermost" / name).chmod(mode)
    assert f"{snap}/etc-mattermost/{name}" in sh.fails(f"mm_check_snapshot {snap}")
    os.chown(snap / "etc-mattermost" / name, 0, 0)
    (snap / "etc-mattermost" / name).chmod(0o640)
    sh.ok(f"mm_check_snapshot {snap}")


def test_what_runs_as_the_service_user_sees_nothing_of_root_s_environment(sh: ShellRunner) -> None:
    """Every process of the service user's can read the environment of every other one
    (/proc/PID/environ): what root's caller exported (a proxy's password, a token) stays with
    root. The environment file's values reach the server's own commands in their environment,
    never in an argument, which every local user can read."""
    needs_root()
    real = shutil.which("runuser")
    shim = sh.tmp / "shim"
    shim.mkdir()
    (shim / "runuser").write_text(
        f'#!/bin/sh\nprintf "CALL %s\\n" "$*" >>{sh.tmp}/runuser.args\nexec {real} "$@"\n'
    )
    (shim / "runuser").chmod(0o755)
    (sh.tmp / "etc/mattermost.env").write_text("MM_SQLSETTINGS_DATASOURCE=postgres://mm:envpw0rd@db/mm\n")
    (sh.tmp / "etc/mattermost.env").chmod(0o640)
    (sh.tmp / "etc/config").mkdir()
    (sh.tmp / "private.json").write_text("{}")
    body = f"""
        MM_PREFIX={sh.tmp} MM_CONFIG_HOME={sh.tmp}/etc/config MM_CONFIG={sh.tmp}/etc/config/config.json
        mm_as_service env
        mm_pg_run env
        mm_run_as_service /usr/bin/env
        mm_install_config {sh.tmp}/private.json
    """
    out = sh.ok(
        body, PATH=f"{shim}:{os.environ['PATH']}", http_proxy="http://u:t0ken@proxy:3128", MY_TOKEN="t0ken"
    )
    assert "envpw0rd" in out  # the server's command has its environment file
    assert "t0ken" not in out
    args = (sh.tmp / "runuser.args").read_text()
    assert "t0ken" not in args and "envpw0rd" not in args
    assert args.count("CALL ") == 4


# What a process of the service user's prints is the service user's to choose: another of its
# processes can write into it (ptrace, /proc/PID/mem). Here the stand-in prints it directly.
LYING_SERVICE = """
mm_as_service() {
    case "$1" in
        find) printf '%s\\n' config.json ../../../escaped ../escaped . .. ;;
        du) printf 'a[$(touch %s/pwned)]\\t%s\\n' "$MM_BACKUPS" "$MM_ETC" ;;
        *) (cd / && "$@") ;;
    esac
}
"""


def test_names_the_service_user_lists_stay_in_the_snapshot(sh: ShellRunner) -> None:
    needs_root()
    (sh.tmp / "etc/config").mkdir()
    (sh.tmp / "etc/config/config.json").write_text("{}")
    snap = sh.tmp / "backups/a/b/snap"
    snap.mkdir(parents=True)
    sh.ok(
        LYING_SERVICE
        + f'MM_CONFIG_HOME={sh.tmp}/etc/config\nmm_copy_service_config {snap}/config\necho "[$mm_fs_error]"'
    )
    assert sorted(p.name for p in (snap / "config").iterdir()) == ["config.json"]
    assert not list(sh.tmp.rglob("escaped"))


def test_numbers_the_service_user_gives_are_only_numbers(sh: ShellRunner) -> None:
    """bash (RHEL's /bin/sh) runs a command substitution in an array index in arithmetic."""
    proc = sh(LYING_SERVICE + "mm_check_space 0 0\necho checked")
    assert not (sh.tmp / "backups/pwned").exists()
    assert proc.returncode == 0, proc.stderr


def test_the_dump_is_read_as_the_service_user(sh: ShellRunner) -> None:
    """What pg_dump wrote came from the service user's process and database: pg_dump writes it
    and pg_restore parses it as that user, never as root, through a descriptor of the dump's
    directory root opened (the service user cannot reach the snapshot by name); afterwards the
    directory is root's, so no process of that user's can add or remove a name in it."""
    needs_root()
    real = shutil.which("runuser")
    # The tools where the service user (nobody here) can run them; the snapshot stays where
    # only root can reach it by name.
    shim = Path(tempfile.mkdtemp(prefix="mmpkg-shim-"))
    shim.chmod(0o755)
    last = "for a; do d=$a; done; d=${d#--file=}"
    tools = {
        "runuser": f'printf "CALL %s\\n" "$*" >>{shim}/runuser.args\nexec {real} "$@"',
        "pg_dump": f'{last}\nprintf \'PGDMP toc\' >"$d/toc.dat" && id -un >"$d/writer"',
        "pg_restore": f'{last}\ncat "$d/toc.dat" >/dev/null || exit 1\n'
        'case "$*" in *--list*) echo "; toc" ;; *) ;; esac',
        "psql": "cat >/dev/null",
    }
    for name, text in tools.items():
        (shim / name).write_text(f"#!/bin/sh\n{text}\n")
        (shim / name).chmod(0o755)
    snap = sh.tmp / "backups/snap"
    snap.mkdir(parents=True)
    snap.chmod(0o700)
    (snap / "state").write_text("from=1\n")
    body = f"""
        MM_USER=nobody MM_GROUP=nogroup
        mm_pg_parse_url postgres://mm:pw@db/mm
        mm_dump_database {snap} "while the server still runs"
        [ -z "$mm_dd_error" ] || mm_fail "$mm_dd_error"
        stat -c 'dir %U:%G %a' {snap}/database
        stat -c 'file %U %a' {snap}/database/toc.dat
        mm_restore_database {snap}/database
    """
    try:
        out = sh.ok(body, PATH=f"{shim}:{os.environ['PATH']}")
        calls = (shim / "runuser.args").read_text()
    finally:
        shutil.rmtree(shim)
    assert re.search(r"^CALL -u nobody -- env HOME=\S+ pg_dump --format=directory --jobs=\d ", calls, re.M)
    assert "--file=/proc/self/fd/7" in calls
    assert "-- pg_restore --list /proc/self/fd/7" in calls
    assert re.search(r"pg_restore --no-owner --no-privileges --exit-on-error --no-password --jobs=\d ", calls)
    assert (snap / "database/writer").read_text().strip() == "nobody"
    assert "dir root:nogroup 750" in out and "file nobody 600" in out
    assert "dump=complete" in (snap / "state").read_text()


def test_what_runs_as_the_service_user_has_no_terminal_of_root_s(sh: ShellRunner) -> None:
    """An administrator's terminal is the controlling terminal of the package's scripts: a
    process of the service user's in the same session could push keystrokes into it (TIOCSTI)
    for root's shell to run once the scripts end."""
    needs_root()
    require("script", "ps", root=False)
    body = """
        mm_as_service sh -c 'echo "as_service=$(ps -o tty= -p $$)"'
        mm_pg_run sh -c 'echo "pg_run=$(ps -o tty= -p $$)"'
        MM_PREFIX=/
        mm_run_as_service sh -c 'echo "run_as_service=$(ps -o tty= -p $$)"'
    """
    sh.ok(body)
    shell = sh.shell.split()[0] + (" --posix" if "bash" in sh.shell else "")
    proc = subprocess.run(
        ["script", "-qec", f"{shell} {sh.tmp}/script.sh", "/dev/null"],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": str(sh.tmp)}, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    ttys = dict(line.strip().split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert ttys == {"as_service": "?", "pg_run": "?", "run_as_service": "?"}, proc.stdout
