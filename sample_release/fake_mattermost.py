#!/usr/bin/python3
# The Go build information of a release binary, as `go version -m` prints it. Releases are built
# with -trimpath (upstream server/build/release.mk), and Go then records no -ldflags
# (cmd/go/internal/load/pkg.go, golang/go#52372): the version and edition set with -X are not
# here. In the real binary they are strings in .rodata, found through the symbol table.
# path	github.com/mattermost/mattermost/server/v8/cmd/mattermost
# mod	github.com/mattermost/mattermost/server/v8	(devel)
# build	-buildmode=exe
# build	-compiler=gc
# build	-trimpath=true
# build	GOARCH=@@ARCH@@
# build	GOOS=linux
"""bin/mattermost of an mmpkg sample release: a small stand-in for the real Go server.

It behaves like a v6.5+ release binary wherever a package touches it: cobra-style CLI, config
file search, defaults and secrets filled in and written back on start, MM_* overrides kept in
memory, a database whose schema the `db` commands and the server migrate, plugin, file-store and
log directories, the ping endpoint and sd_notify READY=1.

The database is a real PostgreSQL when the DSN is a postgres:// URL and no stand-in is meant:
a db_migrations table, tables each release creates or alters, a row the server writes at each
start; it is reached with psql (postgresql-client). The stand-in is the directory
$MMPKG_SAMPLE_DB_DIR, or /var/lib/mattermost-sample-db where that exists; database NAME is the
JSON file NAME.json in it, and the file server_version_num in it is what the stand-in answers
to `SHOW server_version_num` (150000 without it). Test knobs, for both:
MMPKG_SAMPLE_DB_UNREACHABLE=1 (connection refused), MMPKG_SAMPLE_DB_AUTH_FAIL=1 (the password is
refused), MMPKG_SAMPLE_MIGRATION_FAIL=1, MMPKG_SAMPLE_START_HANG=1 (the server never listens
nor says it is ready, as 6.4 did for some after their upgrade: mattermost/mattermost#19832),
and MMPKG_SAMPLE_DB_RETRY_SECONDS, the seconds between the server's 18 attempts to reach its
database (upstream's 10, from 9.0 2; tests set 0 so that an unreachable database fails at
once). The two faults also take a version instead of 1: then only that release's binary has
them, so that the release before it, rolled back to, works.

mmpkg's generator fills in the build constants below, which stand for the -X values, and the
help texts of the commands this version has (so a text such as `db migrate`'s is in the file
only from the release that has the command, as in the real binary). This is one file because
it is installed as bin/mattermost on its own.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# ruff: noqa: E501 - some upstream texts below must stay whole

BUILD_NUMBER = "@@BUILD_NUMBER@@"
ENTERPRISE_READY = "@@ENTERPRISE_READY@@"
BUILD_DATE = "@@BUILD_DATE@@"
BUILD_HASH = "@@BUILD_HASH@@"
DEFAULTS_JSON = "@@DEFAULTS_JSON@@"
# Each command's one-line help (cobra's Short), for the commands this version has: "db migrate".
COMMAND_HELP_JSON = "@@COMMAND_HELP@@"
# pflag's note for a deprecated flag (upstream commands/version.go from 6.5 on).
SKIP_SERVER_START_DEPRECATED = (
    "This flag is not necessary anymore and the flag will be removed in the future releases. "
    "Consider removing it from your scripts."
)

DB_DIR_DEFAULT = "/var/lib/mattermost-sample-db"
# Keys whose value is a JSON map upstream, not a struct: env overrides replace them whole.
MAP_KEYS = {"Plugins", "PluginStates", "AdvancedLoggingJSON"}
# model.NewRandomString's alphabet.
RANDOM_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
SCRIPT_RE = re.compile(r'(<script id="publicPathInWindowScript">)[^<]*(</script>)')
CSP_RE = re.compile(r'(http-equiv="Content-Security-Policy" content="[^"]*?)(?: \'sha256-[^\']*\')?"')
STRING_FLAGS = {"config", "timeout", "retry-interval"}


class Fatal(Exception):
    """Ends the command: cobra prints `Error: <message>` and main exits 1."""


class MigrationFailed(Fatal):
    """A pending migration could not be applied; the schema is unchanged."""


class StoreRefused(Fatal):
    """The store would not start on this database server (11.0 on: an error, not mlog.Fatal)."""


def release() -> tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", BUILD_NUMBER)
    if m is None:
        raise Fatal(f"unparseable build number {BUILD_NUMBER}")
    return int(m[1]), int(m[2]), int(m[3])


def final_version() -> str:
    return "{}.{}.{}".format(*release())


def schema() -> int:
    major, minor, patch = release()
    return major * 10000 + minor * 100 + patch


def at_least(major: int, minor: int) -> bool:
    return release()[:2] >= (major, minor)


# --- command line -------------------------------------------------------------------------


def commands() -> dict[tuple[str, ...], set[str]]:
    """Each command this build has, with its local flags; `db` alone only prints help."""
    cmds: dict[tuple[str, ...], set[str]] = {
        (): set(),
        ("server",): set(),
        ("version",): {"skip-server-start"},
        ("db",): set(),
        ("db", "version"): {"all"},
    }
    if at_least(5, 32):
        cmds["db", "init"] = set()
    if at_least(6, 5):
        cmds["db", "migrate"] = {"auto-recover", "save-plan", "dry-run"} if at_least(8, 0) else set()
    if at_least(11, 9):
        cmds["db", "ping"] = {"timeout", "retry-interval"}
    return cmds


def command_help() -> dict[str, str]:
    """ "db migrate" -> its one-line help, for the commands the generator gave help for."""
    loaded: dict[str, str] = json.loads(COMMAND_HELP_JSON)
    return loaded


def parse_args(argv: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    cmds = commands()
    path: tuple[str, ...] = ()
    flags: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1:
            name, value = arg[1], arg[2:].removeprefix("=")
            if name not in {"c", "h"}:
                raise Fatal(f"unknown shorthand flag: '{name}' in {arg}")
            eq = "=" if value else ""
        else:
            child = (*path, arg)
            if child in cmds:
                path = child
            elif any(len(c) == len(path) + 1 and c[: len(path)] == path for c in cmds):
                where = " ".join(("mattermost", *path))
                raise Fatal(f'unknown command "{arg}" for "{where}"')
            continue  # a leaf command ignores stray arguments, as cobra's legacyArgs does
        name = {"c": "config", "h": "help"}.get(name, name)
        if name in STRING_FLAGS and not eq:
            following = next(args, None)
            if following is None:
                raise Fatal(f"flag needs an argument: --{name}")
            value = following
        if name in STRING_FLAGS or parse_bool(value or "true") is not False:
            flags[name] = value or "true"
    allowed = {"config", "help"} | cmds[path]
    for name in flags:
        if name not in allowed:
            raise Fatal(f"unknown flag: --{name}")
    return path, flags


def usage(path: tuple[str, ...]) -> str:
    subs = sorted(c[-1] for c in commands() if len(c) == len(path) + 1 and c[:-1] == path)
    lines = [f"Usage:\n  {' '.join(('mattermost', *path))} [flags]"]
    if subs:
        helps = command_help()
        width = max(11, *(len(s) for s in subs))  # cobra's rpad to NamePadding, at least 11
        listed = (f"  {s:<{width}} {helps.get(' '.join((*path, s)), '')}".rstrip() for s in subs)
        lines.append("\nAvailable Commands:\n" + "\n".join(listed))
    lines.append("\nFlags:\n  -c, --config string   Configuration file to use.\n  -h, --help")
    return "\n".join(lines)


# --- file search (channels/utils/fileutils) -----------------------------------------------


def search_bases() -> list[Path]:
    """The cwd and three parents, then the same from the real directory of this binary (the
    executable python runs this file from: sys.argv[0], sample_release/elf.py)."""
    bases: list[Path] = []
    for start in (Path.cwd(), Path(os.path.realpath(sys.argv[0])).parent):
        bases += [start, *list(start.parents)[:3]]
    return bases


def find_dir(name: str) -> Path | None:
    return next((b / name for b in search_bases() if (b / name).is_dir()), None)


def resolve_config_path(name: str) -> Path:
    if os.path.isabs(name):
        return Path(name)
    for base in search_bases():
        for sub in ("config", "."):
            if (base / sub / name).is_file():
                return (base / sub / name).absolute()
    if (config_dir := find_dir("config")) is not None:
        return config_dir.absolute() / name
    raise Fatal(f"failed to load configuration: failed to find config file {name}")


# --- configuration (server/config) --------------------------------------------------------


def is_database_dsn(dsn: str) -> bool:
    return dsn.startswith(("postgres://", "postgresql://", "mysql://"))


class ConfigStore:
    """A config file or, for a database DSN, the active row of that database's Configurations
    table (upstream server/config/database.go@01a41075, DatabaseStore)."""

    def __init__(self, dsn: str) -> None:
        self.db: Database | None = None
        self.path: Path | None = None
        self.dsn = dsn
        if is_database_dsn(dsn):
            self.db = open_database(dsn, "mysql" if dsn.startswith("mysql") else "postgres")
            # NewDatabaseStore runs the config store's own migrations on every open, read-only
            # commands included (initializeConfigurationsTable).
            self.db.prepare_config_store()
        else:
            self.path = resolve_config_path(dsn)

    def read(self, *, create: bool) -> dict[str, Any]:
        if self.db is not None:
            stored = self.db.read_config()
            if stored:
                return stored
            # DatabaseStore.Load with no active row: an empty config whose database is the one
            # the DSN names (a mysql:// DSN without its scheme), so `db init` and a first start
            # put the schema next to the configuration.
            driver = "mysql" if self.dsn.startswith("mysql") else "postgres"
            source = self.dsn.removeprefix("mysql://")
            return {"SqlSettings": {"DriverName": driver, "DataSource": source}}
        assert self.path is not None
        if create and not self.path.exists():
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except OSError as e:
                raise Fatal(f"failed to load configuration: failed to create {describe(e)}") from e
        try:
            text = self.path.read_text()
        except OSError as e:
            raise Fatal(f"failed to load configuration: {describe(e)}") from e
        if not text.strip():
            return {}  # an empty file is a fresh install (upstream #38538)
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as e:
            raise Fatal(f"failed to load configuration: failed to unmarshal config: {e}") from e
        if not isinstance(loaded, dict):
            raise Fatal("failed to load configuration: config is not a JSON object")
        return loaded

    def write(self, cfg: dict[str, Any]) -> None:
        """Persist like renameio: a temp file in the same directory renamed over the original."""
        if self.db is not None:
            self.db.write_config(cfg)
            return
        assert self.path is not None
        try:
            mode = self.path.stat().st_mode & 0o7777
            atomic_write(self.path, go_json(cfg, 4).encode(), mode)
        except OSError as e:
            msg = f"failed to persist: failed to write file: {describe(e)}"
            raise Fatal(f"failed to load configuration: {msg}") from e


def go_json(value: Any, indent: int) -> str:
    """json.MarshalIndent: HTML-safe escapes (a DataSource shows \\u0026), no final newline."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def describe(e: OSError) -> str:
    """Go's `open PATH: permission denied` spelling of an OSError."""
    reason = os.strerror(e.errno).lower() if e.errno else str(e)
    return f"open {e.filename}: {reason}" if e.filename else reason


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def go_type(value: Any) -> str:
    for kind, name in ((bool, "bool"), (int, "int"), (str, "string"), (list, "slice")):
        if isinstance(value, kind):
            return name
    return "object"


def in_struct(where: str, key: str) -> bool:
    """Whether the Config struct has `key` below `where` though this build's defaults do not
    name it: only an earlier release's sample setting (every release adds one, and keeps the
    fields of those before it)."""
    m = re.fullmatch(r"SampleSince(\d{6})", key)
    return where == ".ExperimentalSettings" and m is not None and int(m[1]) <= schema()


def fill_defaults(value: Any, default: Any, where: str) -> Any:
    """Unmarshal into the Config struct, then SetDefaults: every missing key is added
    recursively, and a key the struct has no field for is dropped, as json.Unmarshal drops it
    (upstream server/config/utils.go unmarshalConfig, then marshalConfig on persist). A map's keys (MAP_KEYS, or an empty
    default) are its data and are all kept."""
    if value is None:
        return copy.deepcopy(default)
    is_map = where.rpartition(".")[2] in MAP_KEYS
    if isinstance(default, dict) and default:
        if not isinstance(value, dict):
            raise Fatal(f"failed to load configuration: json: cannot unmarshal into {where}")
        merged = {k: fill_defaults(value.get(k), d, f"{where}.{k}") for k, d in default.items()}
        merged.update(
            (k, v) for k, v in value.items() if k not in default and (is_map or in_struct(where, k))
        )
        return merged
    if isinstance(default, dict) or go_type(value) == go_type(default):
        return value
    raise Fatal(
        f"failed to load configuration: json: cannot unmarshal {go_type(value)} "
        f"into Go struct field Config{where} of type {go_type(default)}"
    )


def random_string() -> str:
    return "".join(secrets.choice(RANDOM_ALPHABET) for _ in range(32))


def new_id() -> str:
    """model.NewId: 26 characters of the same alphabet."""
    return random_string()[:26]


def parse_bool(raw: str) -> bool | None:
    """strconv.ParseBool."""
    if raw in {"1", "t", "T", "TRUE", "true", "True"}:
        return True
    if raw in {"0", "f", "F", "FALSE", "false", "False"}:
        return False
    return None


def env_value(raw: str, default: Any) -> Any:
    """strconv-style parsing; None when the value is invalid (upstream ignores it silently)."""
    if isinstance(default, bool):
        return parse_bool(raw)
    if isinstance(default, int):
        return int(raw) if re.fullmatch(r"[+-]?\d+", raw) else None
    if isinstance(default, list):
        return raw.split()
    if isinstance(default, dict):
        with contextlib.suppress(json.JSONDecodeError):
            parsed = json.loads(raw)
            return parsed if isinstance(parsed, dict) else None
        return None
    return raw


def apply_env(cfg: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """MM_SECTION_KEY overrides, matched case-insensitively against the known settings only."""
    out = copy.deepcopy(cfg)
    for name, raw in sorted(os.environ.items()):
        if not name.upper().startswith("MM_"):
            continue
        node, known = out, defaults
        parts = name.upper()[3:].split("_")
        for i, part in enumerate(parts):
            key = next((k for k in known if k.upper() == part), None)
            if key is None:
                break
            last = i == len(parts) - 1
            if not last and isinstance(known[key], dict) and key not in MAP_KEYS:
                node, known = node[key], known[key]
                continue
            if last and (value := env_value(raw, known[key])) is not None:
                node[key] = value
            break
    return out


def is_valid(code: str, text: str) -> str:
    """An IsValid error as the sample spells those whose English upstream text it lacks."""
    return f"model.config.is_valid.{code}.app_error, {text}"


def validate(cfg: dict[str, Any]) -> None:
    """The IsValid checks a package can trip over; they fail before anything is written. The
    error is wrapped as 11.x wraps it: "failed to load configuration: failed to create store:
    unable to load on store creation: invalid config: Config.IsValid: Hiding archived channels
    is no longer supported. [...]" (an 11.1.0 log, YunoHost-Apps/mattermost_ynh#553; an 11.0.1
    one in mattermost/mattermost#34084)."""
    sql = cfg["SqlSettings"]
    v11 = at_least(11, 0)
    checks = [
        (not sql["DataSource"], is_valid("sql_data_src", "SqlSettings.DataSource must not be empty")),
        (sql["DriverName"] not in {"postgres", "mysql"}, is_valid("sql_driver", "unknown DriverName")),
        (
            v11 and sql["DriverName"] == "mysql",
            is_valid(
                "sql_driver", "MySQL is no longer supported from Mattermost v11 on: migrate to PostgreSQL"
            ),
        ),
        (
            0 < len(sql["AtRestEncryptKey"]) < 32,
            is_valid("encrypt_sql", "SqlSettings.AtRestEncryptKey must be at least 32 characters"),
        ),
        (
            0 < len(cfg["FileSettings"]["PublicLinkSalt"]) < 32,
            is_valid("file_salt", "FileSettings.PublicLinkSalt must be at least 32 characters"),
        ),
        (
            # 11.0 made it always true, and refuses false (PR #30868; upgrade notes, v11.0).
            v11 and cfg["TeamSettings"]["ExperimentalViewArchivedChannels"] is False,
            "Hiding archived channels is no longer supported. "
            "Make these channels private and remove members instead.",
        ),
        (
            # "must be false to start the server" (upgrade notes, v11.0; PR #33751).
            v11 and cfg["ExperimentalSettings"]["ClientSideCertEnable"] is True,
            is_valid(
                "client_side_cert_enable", "ExperimentalSettings.ClientSideCertEnable is no longer supported"
            ),
        ),
    ]
    for failed, text in checks:
        if failed:
            raise Fatal(
                "failed to load configuration: failed to create store: unable to load on store "
                f"creation: invalid config: Config.IsValid: {text}"
            )


class Config:
    """What Store.Load produces: the config to persist, and the one in effect (with env)."""

    def __init__(self, dsn: str, *, create: bool, custom_defaults: dict[str, Any] | None = None) -> None:
        self.store = ConfigStore(dsn)
        defaults: dict[str, Any] = json.loads(DEFAULTS_JSON)
        loaded = self.store.read(create=create)
        if custom_defaults is not None:
            # Store.Load: what is stored wins over the custom defaults, key by key (config.Merge).
            loaded = merge_over(custom_defaults, loaded)
        self.persisted: dict[str, Any] = fill_defaults(loaded, defaults, "")
        for section, key in (("SqlSettings", "AtRestEncryptKey"), ("FileSettings", "PublicLinkSalt")):
            if self.persisted[section][key] == "":
                self.persisted[section][key] = random_string()
        self.effective = apply_env(self.persisted, defaults)
        validate(self.effective)

    def section(self, name: str) -> dict[str, Any]:
        section: dict[str, Any] = self.effective[name]
        return section

    def main_database(self) -> Database:
        sql = self.section("SqlSettings")
        return open_database(sql["DataSource"], sql["DriverName"])


def config_dsn(flags: dict[str, str]) -> str:
    return flags.get("config") or os.environ.get("MM_CONFIG") or "config.json"


def merge_over(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """utils.Merge: `patch`'s values win, object by object."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_over(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_custom_defaults() -> dict[str, Any] | None:
    """commands/utils.go loadCustomDefaults: the JSON file MM_CUSTOM_DEFAULTS_PATH names, which
    `server` and `db init` lay under the configuration they load."""
    path = os.environ.get("MM_CUSTOM_DEFAULTS_PATH", "")
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise Fatal(f'unable to open custom defaults file at "{path}": {describe(e)}') from e
    try:
        loaded = json.loads(text)
    except ValueError as e:
        raise Fatal(f"unable to decode custom defaults configuration: {e}") from e
    if not isinstance(loaded, dict):
        raise Fatal("unable to decode custom defaults configuration: not a JSON object")
    return loaded


# --- the database: a stand-in directory, or a real PostgreSQL ------------------------------


def stand_in_dir() -> Path | None:
    """The stand-in's directory, when one is meant: named in the environment (missing then means
    unreachable), or the default one where it exists. Otherwise the DSN names a real server."""
    if named := os.environ.get("MMPKG_SAMPLE_DB_DIR"):
        return Path(named)
    default = Path(DB_DIR_DEFAULT)
    return default if default.is_dir() else None


def open_database(dsn: str, driver: str) -> Database:
    folder = stand_in_dir()
    if folder is None and driver == "postgres" and dsn.startswith(("postgres://", "postgresql://")):
        return PostgresDatabase(dsn)
    return FileDatabase(dsn, driver, folder or Path(DB_DIR_DEFAULT))


def check_knobs(driver: str, user: str) -> None:
    """The test knobs, whichever database stands behind them."""
    if os.environ.get("MMPKG_SAMPLE_DB_UNREACHABLE") == "1":
        refused(driver)
    if os.environ.get("MMPKG_SAMPLE_DB_AUTH_FAIL") == "1":
        # What lib/pq reports for a wrong password: the server answered and refused us.
        raise Fatal(f'failed to ping DB: pq: password authentication failed for user "{user}"')


def refused(driver: str, where: str = "") -> None:
    where = where or ("127.0.0.1:3306" if driver == "mysql" else "127.0.0.1:5432")
    raise Fatal(f"failed to ping DB: dial tcp {where}: connect: connection refused")


def fault(name: str) -> bool:
    """Whether test knob `name` is on for this binary: 1, or this release's version."""
    return os.environ.get(name) in ("1", final_version())


def simulated_failure(name: str) -> MigrationFailed:
    return MigrationFailed(f"migration {name} failed: ERROR: simulated failure (SQLSTATE XX000)")


class Database:
    """What the commands need of a database."""

    def check_reachable(self) -> None:
        raise NotImplementedError

    def migrate(self, *, dry_run: bool = False) -> list[str]:
        """Apply this build's migration if the schema is older; return the names applied."""
        raise NotImplementedError

    def applied(self) -> list[tuple[int, str]]:
        """The migrations recorded, oldest first: (version, name)."""
        raise NotImplementedError

    def prepare_config_store(self) -> None:
        """The tables a database config store needs, made the first time it is opened."""

    def read_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def write_config(self, cfg: dict[str, Any]) -> None:
        raise NotImplementedError

    def record_start(self) -> None:
        """A row the running server writes, as users' posts would be: an upgrade must keep it."""

    def server_version_num(self) -> str:
        """What `SHOW server_version_num` answers (sqlstore's GetDbVersion(true))."""
        raise NotImplementedError


class FileDatabase(Database):
    """One JSON file per database name in the directory that plays the database server."""

    def __init__(self, dsn: str, driver: str, folder: Path) -> None:
        self.driver = driver
        self.dir = folder
        # postgres://user:pass@host/NAME?params, or mysql's user:pass@tcp(host:port)/NAME?params
        path = urlsplit(dsn).path if "://" in dsn else dsn.partition("?")[0].partition("/")[2]
        self.name = path.lstrip("/") or "mattermost"
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", self.name):
            raise Fatal(f"failed to ping DB: invalid database name {self.name!r}")
        self.path = self.dir / f"{self.name}.json"
        self.user = (urlsplit(dsn).username if "://" in dsn else dsn.partition(":")[0]) or "mmuser"

    def check_reachable(self) -> None:
        if not self.dir.is_dir():
            refused(self.driver)
        check_knobs(self.driver, self.user)

    def server_version_num(self) -> str:
        try:
            return (self.dir / "server_version_num").read_text().strip()
        except FileNotFoundError:
            return "150000"
        except OSError as e:
            raise Fatal(f"failed to read the stand-in's server version: {describe(e)}") from e

    def applied(self) -> list[tuple[int, str]]:
        return [(int(m["name"].rpartition("_")[2]), m["name"]) for m in self.read()["migrations"]]

    def read_config(self) -> dict[str, Any]:
        self.check_reachable()
        stored = self.read().get("config")
        return stored if isinstance(stored, dict) else {}

    def write_config(self, cfg: dict[str, Any]) -> None:
        with self.locked():
            state = self.read()
            state["config"] = cfg
            self.write(state)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Like morph's db_lock: one migrator at a time."""
        self.check_reachable()
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def read(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            state = {}  # an empty database, as created by the DBA
        except (OSError, ValueError) as e:
            raise Fatal(f"failed to read database {self.name}: {e}") from e
        state.setdefault("schema_version", 0)
        state.setdefault("migrations", [])
        return state

    def write(self, state: dict[str, Any]) -> None:
        atomic_write(self.path, (json.dumps(state, indent=2) + "\n").encode(), 0o644)

    def migrate(self, *, dry_run: bool = False) -> list[str]:
        name = f"sample_{schema():06d}"
        try:
            with self.locked():
                state = self.read()
                if state["schema_version"] >= schema():
                    return []
                if dry_run:
                    return [name]
                if fault("MMPKG_SAMPLE_MIGRATION_FAIL"):
                    raise simulated_failure(name)
                state["migrations"].append({"name": name, "version": final_version()})
                state["schema_version"] = schema()
                self.write(state)
        except OSError as e:
            raise MigrationFailed(describe(e)) from e
        return [name]


# --- a real PostgreSQL ----------------------------------------------------------------------

# pg_advisory_xact_lock's keys: one migrator at a time, as morph's mutexes do (the config
# store's is "mm-config-lock-key", apart from the server's).
MIGRATION_LOCK = 7_461_626
CONFIG_MIGRATION_LOCK = 7_461_627


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PostgresDatabase(Database):
    """The server a postgres:// DSN names, reached through psql with the DSN's credentials in
    psql's environment (never its arguments), and its errors spelt the way lib/pq spells them."""

    def __init__(self, dsn: str) -> None:
        url = urlsplit(dsn)
        try:
            self.port = url.port or 5432
        except ValueError as e:
            raise Fatal(f"failed to ping DB: invalid port in {url.netloc.rpartition('@')[2]}") from e
        self.host = unquote(url.hostname or "") or "localhost"
        self.user = unquote(url.username or "") or os.environ.get("USER", "postgres")
        self.password = unquote(url.password or "")
        self.name = unquote(url.path.lstrip("/")) or self.user
        query = parse_qs(url.query)
        # lib/pq's default is sslmode=require; connect_timeout is in seconds, as for libpq.
        self.sslmode = query.get("sslmode", ["require"])[0]
        self.timeout = query.get("connect_timeout", ["10"])[0]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user, PGDATABASE=self.name,
            PGSSLMODE=self.sslmode, PGCONNECT_TIMEOUT=self.timeout, PGAPPNAME="mattermost",
        )  # fmt: skip
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def psql(self, script: str) -> list[str]:
        """Run `script` in one session, stopping at its first error; the rows it printed."""
        if shutil.which("psql") is None:
            raise Fatal("failed to ping DB: psql not found: install postgresql-client")
        argv = ["psql", "--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--set=ON_ERROR_STOP=1"]
        proc = subprocess.run(
            [*argv, "--set=VERBOSITY=verbose", "--file=-"],
            input=script, env=self.environment(), capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise self.error(proc.stderr)
        return proc.stdout.splitlines()

    def error(self, stderr: str) -> Fatal:
        where = f"{self.host}:{self.port}"
        if "Connection refused" in stderr:
            return Fatal(f"failed to ping DB: dial tcp {where}: connect: connection refused")
        if "could not translate host name" in stderr:
            return Fatal(f"failed to ping DB: dial tcp: lookup {self.host}: no such host")
        if "timeout expired" in stderr:
            return Fatal(f"failed to ping DB: dial tcp {where}: i/o timeout")
        found = re.search(r"\b(FATAL|ERROR):\s+(?:([0-9A-Z]{5}): )?(.*)", stderr)
        if found is None:
            lines = [line for line in stderr.splitlines() if line.strip()]
            return Fatal(f"failed to ping DB: {lines[-1] if lines else 'psql failed'}")
        if found[1] == "FATAL":  # the server refused the session: a login, a role, a database
            return Fatal(f"failed to ping DB: pq: {found[3]}")
        return MigrationFailed(f"ERROR: {found[3]} (SQLSTATE {found[2]})")

    def check_reachable(self) -> None:
        check_knobs("postgres", self.user)
        self.psql("SELECT 1;")

    def server_version_num(self) -> str:
        rows = self.psql("SHOW server_version_num;")
        return rows[0] if rows else ""

    def applied(self) -> list[tuple[int, str]]:
        self.check_reachable()
        rows = self.psql(
            "SELECT to_regclass('db_migrations') IS NOT NULL AS present \\gset\n"
            "\\if :present\nSELECT version, name FROM db_migrations ORDER BY version;\n\\endif\n"
        )
        return [(int(v), n) for v, _, n in (row.partition("|") for row in rows)]

    def migrate(self, *, dry_run: bool = False) -> list[str]:
        name = f"sample_{schema():06d}"
        done = [v for v, _ in self.applied() if v >= schema()]
        if done:
            return []
        if dry_run:
            return [name]
        # Each release creates or alters real tables, in one transaction with its record.
        fail = "DO $$BEGIN RAISE EXCEPTION 'simulated failure' USING ERRCODE = 'XX000'; END$$;"
        script = f"""
            BEGIN;
            SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
            CREATE TABLE IF NOT EXISTS db_migrations (version bigint PRIMARY KEY, name varchar(64) NOT NULL);
            SELECT count(*) > 0 AS done FROM db_migrations WHERE version >= {schema()} \\gset
            \\if :done
            \\else
            CREATE TABLE IF NOT EXISTS systems (name varchar(64) PRIMARY KEY, value text NOT NULL);
            CREATE TABLE IF NOT EXISTS posts (id bigserial PRIMARY KEY, createat bigint NOT NULL, message text NOT NULL);
            ALTER TABLE posts ADD COLUMN IF NOT EXISTS since_{schema()} bigint;
            INSERT INTO systems VALUES ('Version', {sql_literal(final_version())})
                ON CONFLICT (name) DO UPDATE SET value = excluded.value;
            {fail if fault("MMPKG_SAMPLE_MIGRATION_FAIL") else ""}
            INSERT INTO db_migrations VALUES ({schema()}, {sql_literal(name)});
            \\endif
            COMMIT;
        """
        try:
            self.psql(script)
        except MigrationFailed as e:
            raise MigrationFailed(f"migration {name} failed: {e}") from e
        return [name]

    def prepare_config_store(self) -> None:
        """initializeConfigurationsTable: the config store's migrations
        (server/config/migrations/postgres/00000{1,2,3}_*.up.sql), applied under morph's lock
        and recorded in db_config_migrations, apart from the server's own db_migrations."""
        self.check_reachable()
        migrations = (
            (1, "create_configurations", """
                CREATE TABLE IF NOT EXISTS configurations (
                    id varchar(26), value text NOT NULL, createat bigint NOT NULL,
                    active boolean DEFAULT NULL, PRIMARY KEY (id), UNIQUE (active)
                );"""),
            (2, "create_configuration_files", """
                CREATE TABLE IF NOT EXISTS configurationfiles (
                    name varchar(64), data text NOT NULL, createat bigint NOT NULL,
                    updateat bigint NOT NULL, PRIMARY KEY (name)
                );"""),
            (3, "update_configurations_sha", "ALTER TABLE configurations ADD COLUMN IF NOT EXISTS sha char(64) DEFAULT '';"),
        )  # fmt: skip
        steps = "".join(
            f"SELECT count(*) = 0 AS todo FROM db_config_migrations WHERE version = {version} \\gset\n"
            f"\\if :todo\n{sql}\nINSERT INTO db_config_migrations VALUES ({version}, {sql_literal(name)});\n\\endif\n"
            for version, name, sql in migrations
        )
        self.psql(
            f"BEGIN;\nSELECT pg_advisory_xact_lock({CONFIG_MIGRATION_LOCK});\n"
            "CREATE TABLE IF NOT EXISTS db_config_migrations (version bigint PRIMARY KEY, name varchar(64) NOT NULL);\n"
            f"{steps}COMMIT;\n"
        )

    def read_config(self) -> dict[str, Any]:
        """DatabaseStore.Load: the active row's Value."""
        rows = self.psql("SELECT value FROM configurations WHERE active;")
        with contextlib.suppress(ValueError):
            stored = json.loads("\n".join(rows)) if rows else {}
            return stored if isinstance(stored, dict) else {}
        raise Fatal("failed to load configuration: the stored configuration is not JSON")

    def write_config(self, cfg: dict[str, Any]) -> None:
        """DatabaseStore.persist: marshalConfig's JSON (4-space indent) as a new active row, the
        old one kept inactive; nothing written when its SHA-256 is the active row's."""
        value = go_json(cfg, 4)
        sha = hashlib.sha256(value.encode()).hexdigest()
        tag = f"$cfg{secrets.token_hex(8)}$"  # a dollar quote no JSON text can end
        self.psql(f"""
            BEGIN;
            SELECT count(*) > 0 AS same FROM configurations WHERE active AND trim(sha) = {sql_literal(sha)} \\gset
            \\if :same
            \\else
            UPDATE configurations SET active = NULL WHERE active;
            INSERT INTO configurations (id, value, createat, active, sha)
                VALUES ({sql_literal(new_id())}, {tag}{value}{tag}, (extract(epoch FROM now()) * 1000)::bigint, true,
                        {sql_literal(sha)});
            \\endif
            COMMIT;
        """)

    def record_start(self) -> None:
        message = sql_literal(f"server {final_version()} started")
        self.psql(
            f"INSERT INTO posts (createat, message) VALUES ((extract(epoch FROM now()) * 1000)::bigint, {message});"
        )


# --- logging ------------------------------------------------------------------------------


def log_folder(location: str) -> Path:
    """config.GetLogFileLocation: FileLocation, or logs/ as fileutils.FindDir finds it, else
    the working directory ("./")."""
    return Path(location) if location else (find_dir("logs") or Path("."))


def log_root() -> Path:
    """config.GetLogRootPath (11.4+; upstream server/config/logger.go@86b60aad, PR #35014):
    MM_LOG_PATH, else logs/ as FindDir finds it."""
    return Path(os.environ.get("MM_LOG_PATH") or log_folder("")).absolute()


class Logger:
    """mlog's JSON lines: to stdout when EnableConsole, to <FileLocation>/<name>."""

    def __init__(self, settings: dict[str, Any], name: str = "mattermost.log", *, fatal: bool = True) -> None:
        self.console = bool(settings["EnableConsole"]) and fatal
        self.file: Path | None = None
        self.error = ""
        if settings["EnableFile"]:
            folder = log_folder(settings["FileLocation"])
            self.file = folder.absolute() / name
            try:  # lumberjack creates the directory and a 0600 file
                folder.mkdir(mode=0o755, parents=True, exist_ok=True)
                os.close(os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
            except OSError as e:
                if fatal:
                    raise Fatal(f"failed to initialize logging: {describe(e)}") from e
                self.file, self.error = None, describe(e)

    def log(self, level: str, msg: str, **fields: object) -> None:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " Z"
        line = json.dumps({"timestamp": now, "level": level, "msg": msg, **fields})
        if self.console:
            print(line, flush=True)
        if self.file is not None:
            with open(self.file, "a") as f:
                f.write(line + "\n")


def warn_if_root() -> None:
    if os.geteuid() == 0:
        msg = "Running Mattermost as root is not recommended. Please use a non-root user."
        print(json.dumps({"level": "warn", "msg": msg}), file=sys.stderr)


# --- commands -----------------------------------------------------------------------------


def cmd_version(flags: dict[str, str]) -> int:
    """commands/version.go@50392b86. From 6.5 (mattermost/mattermost#19364) it prints the build and
    touches nothing; before, it started the app (config write, migrations) unless
    --skip-server-start, which 6.5 kept as a deprecated no-op."""
    lines = [
        f"Version: {final_version()}",
        f"Build Number: {BUILD_NUMBER}",
        f"Build Date: {BUILD_DATE}",
        f"Build Hash: {BUILD_HASH}",
        f"Build Enterprise Ready: {ENTERPRISE_READY}",
    ]
    if not at_least(6, 5) and "skip-server-start" not in flags:
        cfg = Config(config_dsn(flags), create=True)
        cfg.store.write(cfg.persisted)
        cfg.main_database().migrate()
        lines.append(f"DB Version: {final_version()}")
    print("\n".join(lines))
    return 0


def cmd_db(path: tuple[str, ...], flags: dict[str, str]) -> int:
    sub = path[1] if len(path) > 1 else ""
    if sub == "":
        print(usage(path))
        return 0
    dsn = config_dsn(flags)
    if sub == "ping":
        return db_ping(dsn, flags)
    custom = None
    if sub == "init":
        if not is_database_dsn(dsn):
            raise Fatal("this command should be run using a database configuration DSN")
        try:
            custom = load_custom_defaults()
        except Fatal as e:
            raise Fatal(f"error loading custom configuration defaults: {e}") from e
    cfg = Config(dsn, create=True, custom_defaults=custom)
    db = cfg.main_database()
    connect(db, log_line)
    problem = ensure_minimum_db_version(db, cfg.section("SqlSettings")["DriverName"])
    if problem is not None:
        if sub == "migrate":
            # commands/db.go wraps sqlstore.NewMigrator's error.
            raise Fatal(f"failed to create migrator: error while checking DB version: {problem}")
        store_refused(problem, log_line)
    if sub == "init":
        cfg.store.write(cfg.persisted)  # the DB store keeps the config it was initialised with
    try:
        applied = db.migrate(dry_run="dry-run" in flags)
    except MigrationFailed as e:
        raise Fatal(f"failed to apply database migrations: {e}") from e
    if sub == "migrate":
        if "save-plan" in flags and applied:
            save_plan(cfg, applied)
        if not applied:
            print("No migrations to apply.")
        elif "dry-run" in flags:
            print("\n".join(f"Would apply migration {name} (dry run)" for name in applied))
        else:
            print("Database successfully migrated")
    elif sub == "init":
        print("Database store correctly initialised")
    elif sub == "version":
        recorded = db.applied()
        if "all" in flags:
            for version, name in recorded:
                print(f"Varsion: {version}, Name: {name}")
        else:
            print(f"Current database schema version is: {max((v for v, _ in recorded), default=0)}")
    return 0


def save_plan(cfg: Config, applied: list[str]) -> None:
    """`--save-plan` stores the plan in the file store, next to the data it belongs with."""
    store = Path(cfg.section("FileSettings")["Directory"])
    plan = {"migrations": applied, "version": final_version()}
    target = store / "migrations" / f"migration_plan_{schema()}_{int(time.time())}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(plan, indent=2))
    except OSError as e:
        raise Fatal(f"failed to save migration plan: {describe(e)}") from e
    print(f"Migration plan saved to {target}")


def go_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise Fatal(f'invalid argument "{text}": time: invalid duration "{text}"')
    return sum(float(n) * units[u] for n, u in parts)


# sqlstore.SetupConnection: DBPingAttempts tries, upstream channels/store/sqlstore/store.go.
PING_ATTEMPTS = 18


def log_line(level: str, msg: str, **fields: object) -> None:
    """mlog's JSON line on stdout, where a command's log goes when no logger is configured."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " Z"
    print(json.dumps({"timestamp": now, "level": level, "msg": msg, **fields}), flush=True)


def connect(db: Database, log: Callable[..., None]) -> None:
    """sqlstore.SetupConnection, which `db migrate`, `db version`, `db init` and the server
    all go through: 18 attempts, each failure logged with the driver's error. Up to 8.x they
    are DBPingTimeoutSecs (10 s) apart and the last ends in mlog.Fatal, which exits 1 (store.go
    at mattermost/mattermost@013ae534); later, DBConnRetrySleep (2 s) apart, the error is
    returned (server/channels/db/sql setup, version boundary inferred)."""
    upstream = 2 if at_least(9, 0) else 10
    wait = float(os.environ.get("MMPKG_SAMPLE_DB_RETRY_SECONDS") or upstream)
    for attempt in range(1, PING_ATTEMPTS + 1):
        if attempt > 1 or not at_least(9, 0):  # later releases say so only when retrying
            log("info", "Pinging SQL", database="master")
        try:
            db.check_reachable()
            return
        except MigrationFailed:
            raise
        except Fatal as e:
            error = str(e).removeprefix("failed to ping DB: ")
            if attempt < PING_ATTEMPTS:
                log("error", "Failed to ping DB", error=error, **{"retrying in seconds": upstream})
                time.sleep(wait)
            elif at_least(9, 0):
                raise
            else:
                log("fatal", "Failed to ping DB, server will exit.", error=error)
                raise SystemExit(1) from e


def minimum_postgres() -> int | None:
    """sqlstore's minimumRequiredPostgresVersion (channels/store/sqlstore/store.go) in this
    release, as server_version_num: 10 from 5.32 (PR #16564, mattermost/mattermost#16978), 11
    from 8.0 (PR #23315), 13 from 10.6 (PR #30039), 14 from 11.0 (PR #34010)."""
    for since, minimum in (((11, 0), 140000), ((10, 6), 130000), ((8, 0), 110000), ((5, 32), 100000)):
        if at_least(*since):
            return minimum
    return None


def pg_version_string(v: int) -> str:
    """sqlstore's versionString: major and minor as server_version_num holds them from 10 on
    (130022 is "13.22"); it reads 9.6.3's 90603 as "9.603" too, as upstream does."""
    return f"{v // 10000}.{v % 10000}"


def ensure_minimum_db_version(db: Database, driver: str) -> str | None:
    """sqlstore's ensureMinimumDBVersion, run after the connection is set up and before any
    migration: why the database server is refused, or None. The sample checks PostgreSQL only
    (upstream also wants MySQL 5.7.12, which no package test runs)."""
    minimum = minimum_postgres()
    if driver != "postgres" or minimum is None:
        return None
    raw = db.server_version_num()
    if not raw.isdigit():
        return f'cannot parse DB version: strconv.Atoi: parsing "{raw}": invalid syntax'
    if int(raw) < minimum:
        found, wanted = pg_version_string(int(raw)), pg_version_string(minimum)
        return f"minimum Postgres version requirements not met. Found: {found}, Wanted: {wanted}"
    return None


def console(level: str, msg: str, **fields: object) -> None:
    """mlog.CreateConsoleLogger: logr's plain format on stdout (colours left out)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " Z"
    pairs = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f'{level:<5} [{now}] {msg} caller="commands/db_ping.go" {pairs}', flush=True)


def sanitized(dsn: str) -> str:
    url = urlsplit(dsn)
    if url.password is None:
        return dsn
    return url._replace(netloc=url.netloc.replace(f":{url.password}@", ":****@", 1)).geturl()


def db_ping(dsn: str, flags: dict[str, str]) -> int:
    """commands/db_ping.go (11.9+, mattermost/mattermost@04bf19b2): the config's DataSource
    (or a postgres:// --config itself) pinged until --timeout. A failed attempt is logged
    without the driver's error, and every failure ends the same way: the deadline."""
    timeout = go_seconds(flags.get("timeout", "5m"))
    interval = go_seconds(flags.get("retry-interval", "2s"))
    if timeout <= 0:
        raise Fatal("--timeout must be > 0")
    if interval <= 0:
        raise Fatal("--retry-interval must be > 0")
    if not is_database_dsn(dsn):
        try:
            cfg = Config(dsn, create=False)
        except Fatal as e:
            raise Fatal(f'failed to load configuration from "{dsn}": {e}') from e
        dsn = cfg.section("SqlSettings")["DataSource"]
        if not dsn.startswith(("postgres://", "postgresql://")):
            raise Fatal("configured SqlSettings.DataSource is not a postgres DSN")
    db = open_database(dsn, "postgres")
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            db.check_reachable()
        except Fatal:
            pass
        else:
            console("info", "Database is reachable", dataSource=sanitized(dsn), attempt=attempt)
            return 0
        retry = flags.get("retry-interval", "2s")
        console("info", "Waiting for database", dataSource=sanitized(dsn), attempt=attempt,
                retry_interval=retry, status="ping_failed")  # fmt: skip
        left = deadline - time.monotonic()
        if left > interval:
            time.sleep(interval)
            continue
        time.sleep(max(left, 0))
        raise Fatal(f"timed out waiting for database after {attempt} attempts: context deadline exceeded")


def store_refused(problem: str, log: Callable[..., None], prefix: str = "") -> None:
    """sqlstore.New when ensureMinimumDBVersion refuses: from 11.0 it returns the error, which
    the server prints as "Error: failed to initialize platform: cannot create store: error while
    checking DB version: minimum Postgres version requirements not met. Found: 13.22, Wanted:
    14.0" (as seen from 11.0 and 11.5.1 on PostgreSQL 13); before, mlog.Fatal("Error while
    checking DB version.") logs it and exits 1 (store.go at mattermost/mattermost@013ae534)."""
    if at_least(11, 0):
        raise StoreRefused(f"{prefix}cannot create store: error while checking DB version: {problem}")
    log("fatal", "Error while checking DB version.", error=problem)
    raise SystemExit(1)


def install_prepackaged_plugins(plugin_dir: Path, log: Logger) -> None:
    source = find_dir("prepackaged_plugins")
    for bundle in sorted(source.glob("*.tar.gz")) if source else []:
        with tarfile.open(bundle) as tar:
            members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
            names = [Path(m.name) for m in members]
            if any(n.is_absolute() or ".." in n.parts for n in names) or not names:
                log.log("error", "Refusing unsafe plugin bundle", path=str(bundle))
                continue
            plugin_id = names[0].parts[0]
            manifest = tar.extractfile(f"{plugin_id}/plugin.json")
            version = json.load(manifest)["version"] if manifest else ""
            target = plugin_dir / plugin_id
            with contextlib.suppress(OSError, ValueError, KeyError):
                if json.loads((target / "plugin.json").read_text())["version"] == version:
                    continue
            shutil.rmtree(target, ignore_errors=True)  # no stale files from an older version
            for member, name in zip(members, names):  # one name per member
                dest = plugin_dir / name
                if member.isdir():
                    dest.mkdir(mode=0o755, parents=True, exist_ok=True)
                elif (data := tar.extractfile(member)) is not None:
                    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                    dest.write_bytes(data.read())
                    dest.chmod(0o755 if member.mode & 0o111 else 0o644)
            log.log("info", "Installed prepackaged plugin", plugin_id=plugin_id, version=version)


def start_plugins(cfg: Config, log: Logger) -> None:
    """app/plugin.go: a non-recursive Mkdir of both directories; failures are logged, not fatal."""
    settings = cfg.section("PluginSettings")
    if not settings["Enable"]:
        return
    try:
        for key in ("Directory", "ClientDirectory"):
            with contextlib.suppress(FileExistsError):
                os.mkdir(settings[key], 0o744)
        if settings["AutomaticPrepackagedPlugins"]:
            install_prepackaged_plugins(Path(settings["Directory"]), log)
    except (OSError, tarfile.TarError, KeyError, ValueError) as e:
        log.log("error", "Failed to start up plugins", error=str(e))


def check_file_store(cfg: Config, log: Logger) -> None:
    settings = cfg.section("FileSettings")
    if settings["DriverName"] != "local":
        return
    folder = Path(settings["Directory"])  # relative to the cwd, like upstream
    try:
        folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        (folder / "testfile").write_bytes(b"testingwrite")
        (folder / "testfile").unlink()
    except OSError as e:
        log.log("error", "Problem with file storage settings", error=describe(e))


def update_subpath(cfg: Config) -> str:
    """UpdateAssetsSubpathFromConfig: point the static paths in root.html, and in every
    manifest.json and *.css below client/, below SiteURL's path."""
    subpath: str = urlsplit(cfg.section("ServiceSettings")["SiteURL"]).path.rstrip("/")
    client = find_dir("client")
    if client is None or not (client / "root.html").is_file():
        return subpath
    root = client / "root.html"
    html = root.read_text()
    old = re.search(r"window\.publicPath='([^']*)'", html)
    old_static = old[1] if old else "/static/"
    new_static = f"{subpath}/static/"
    if old_static == new_static:
        return subpath
    script = f"window.publicPath='{new_static}'"
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    html = html.replace(f'"{old_static}', f'"{new_static}')
    html = SCRIPT_RE.sub(lambda m: f"{m[1]}{script}{m[2]}", html)
    # The inline script may only run if the Content-Security-Policy names its hash.
    html = CSP_RE.sub(lambda m: f"{m[1]} 'sha256-{digest}'\"", html, count=1)
    rewrite_in_place(root, html)
    # Then every manifest.json and stylesheet below client/, as upstream's filepath.Walk meets
    # them: into no linked directory, but through a link to a file.
    for folder, _, names in os.walk(client):
        for name in sorted(names):
            path = Path(folder) / name
            if name == "manifest.json" or name.endswith(".css"):
                rewrite_in_place(path, path.read_text().replace(old_static, new_static))
    return subpath


def rewrite_in_place(path: Path, text: str) -> None:
    try:
        with open(path, "r+") as f:  # in place, as upstream does: the file must be writable
            f.write(text)
            f.truncate()
    except OSError as e:
        raise Fatal(f"failed to update assets subpath from config: {describe(e)}") from e


class Httpd(ThreadingHTTPServer):
    daemon_threads = True
    version_id = ""
    subpath = ""
    log_file: Path | None = None

    def log_lines(self) -> list[str]:
        if self.log_file is None:
            return []
        if at_least(11, 4) and not self.log_file.resolve().is_relative_to(log_root().resolve()):
            return []  # the UI says: "No logs found. Ensure log files are within the logging root"
        try:
            return self.log_file.read_text().splitlines()
        except OSError:
            return []


class Handler(BaseHTTPRequestHandler):
    server_version = "Mattermost"

    def do_GET(self) -> None:
        httpd = self.server
        assert isinstance(httpd, Httpd)
        route = self.path.split("?")[0].removeprefix(httpd.subpath)
        body: object
        if route == "/api/v4/system/ping":
            status = 200
            body = {
                "status": "OK",
                "ActiveSearchBackend": "database",
                "version": final_version(),
            }
        elif route == "/api/v4/logs":
            # The System Console's log viewer (upstream needs a system admin; the sample has no
            # users). From 11.4 it reads no file outside the logging root (PR #35221).
            status, body = 200, httpd.log_lines()
        else:
            status = 404
            body = {"id": "api.context.404.app_error", "status_code": 404}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Version-Id", httpd.version_id)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the real server keeps access logs out of mattermost.log


def listen(cfg: Config, subpath: str) -> Httpd:
    address = cfg.section("ServiceSettings")["ListenAddress"]
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise Fatal(f"listen tcp: address {address}: missing port in address")
    host = host.strip("[]")
    # socketserver takes the address family from the class; this process serves once.
    Httpd.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        httpd = Httpd((host, int(port)), Handler)
    except OSError as e:
        raise Fatal(f"listen tcp {address}: bind: {describe(e)}") from e
    config_hash = hashlib.md5(json.dumps(cfg.effective, sort_keys=True).encode()).hexdigest()
    httpd.version_id = f"{final_version()}.{BUILD_NUMBER}.{config_hash}.false"
    httpd.subpath = subpath
    return httpd


def local_mode_socket(cfg: Config, log: Logger) -> Path | None:
    """ServiceSettings.EnableLocalMode: a Unix socket at LocalModeSocketLocation, the service
    user's alone, that `mmctl --local` talks to without credentials. A failure is logged; the
    server starts without it."""
    settings = cfg.section("ServiceSettings")
    if not settings["EnableLocalMode"]:
        return None
    path = Path(settings["LocalModeSocketLocation"])
    with contextlib.suppress(FileNotFoundError):
        if path.is_socket():
            path.unlink()  # one a crashed server left behind
    try:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(8)
    except OSError as e:
        log.log("error", "Failed to start local mode server", error=describe(e))
        return None
    LOCAL_LISTENERS.append(listener)  # kept open until the process ends
    return path


LOCAL_LISTENERS: list[socket.socket] = []


def notify_ready(log: Logger) -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(b"READY=1")
    except OSError as e:
        log.log("error", "Failed to notify systemd", error=str(e))


def cmd_server(flags: dict[str, str]) -> int:
    # Blocked now and collected by sigwait at the end, so a SIGTERM during start-up still
    # ends in a clean shutdown; threads started later inherit the mask.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        custom = load_custom_defaults()
    except Fatal as e:  # serverCmdF only warns
        custom = None
        print(
            json.dumps({"level": "warn", "msg": f"Error loading custom configuration defaults: {e}"}),
            file=sys.stderr,
        )
    cfg = Config(config_dsn(flags), create=True, custom_defaults=custom)
    cfg.store.write(cfg.persisted)
    log = Logger(cfg.section("LogSettings"))
    log.log("info", "Server is initializing...")
    if not at_least(11, 0):
        # The notification log (dropped in 11): its own file, in NotificationLogSettings'
        # FileLocation or where the main log would go by default. Failing to open it is logged
        # [inferred: upstream's handling of that failure was not re-read].
        notifications = Logger(cfg.section("NotificationLogSettings"), "notifications.log", fatal=False)
        if notifications.error:
            log.log("error", "Failed to open the notification log", error=notifications.error)
        notifications.log("info", "Notification logger started")
    build = f"{BUILD_NUMBER}/{BUILD_DATE}/{BUILD_HASH}/{ENTERPRISE_READY}"
    log.log("info", f"Current version is {final_version()} ({build})")
    db = cfg.main_database()
    try:
        connect(db, log.log)
        problem = ensure_minimum_db_version(db, cfg.section("SqlSettings")["DriverName"])
        if problem is not None:
            store_refused(problem, log.log, prefix="failed to initialize platform: ")
        db.migrate()
        db.record_start()
    except MigrationFailed as e:
        log.log("fatal", "Failed to apply database migrations.", error=str(e))
        raise Fatal(f"Failed to apply database migrations. {e}") from e
    except StoreRefused:
        raise
    except Fatal as e:
        log.log("fatal", "Failed to ping DB", error=str(e))
        raise
    start_plugins(cfg, log)
    check_file_store(cfg, log)
    if fault("MMPKG_SAMPLE_START_HANG"):
        signal.sigwait(stop_signals)  # stuck before it listens: no ping, no READY=1
        return 0
    httpd = listen(cfg, update_subpath(cfg))
    httpd.log_file = log.file
    # Port 0 means any free port: report the one the kernel picked.
    host = cfg.section("ServiceSettings")["ListenAddress"].rpartition(":")[0]
    address = f"{host}:{httpd.socket.getsockname()[1]}"
    log.log("info", f"Server is listening on {address}", address=address)
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    local = local_mode_socket(cfg, log)
    notify_ready(log)
    signal.sigwait(stop_signals)
    log.log("info", "Stopping Server...")
    httpd.shutdown()
    httpd.server_close()
    if local is not None:
        local.unlink(missing_ok=True)
    log.log("info", "Server stopped")
    return 0


def main(argv: list[str]) -> int:
    try:
        path, flags = parse_args(argv)
        if "help" in flags:
            print(usage(path))
            return 0
        if "skip-server-start" in flags and at_least(6, 5):
            msg = SKIP_SERVER_START_DEPRECATED
            print(f"Flag --skip-server-start has been deprecated, {msg}", file=sys.stderr)
        warn_if_root()
        if path in {(), ("server",)}:
            return cmd_server(flags)
        if path == ("version",):
            return cmd_version(flags)
        return cmd_db(path, flags)
    except Fatal as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
