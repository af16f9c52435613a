"""What an administrator's Mattermost looks like inside a throw-away root, and how to compare it.

`Site` drives one installed server in a root: it gives it a database, runs the server for real
(as the service user, from the install directory, with the environment file, as the unit does)
so that it rewrites config.json, generates its keys and extracts plugins, and it records
`State`, everything an upgrade must never lose.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.support import harness

ETC = "/etc/mattermost"
# The server's own directory: only it writes there; /etc/mattermost is root's alone.
CONFIG_DIR = "/etc/mattermost/config"
CONFIG = f"{CONFIG_DIR}/config.json"
# Where older packages kept config.json: a link to it now.
LEGACY_CONFIG = "/etc/mattermost/config.json"
ENV_FILE = "/etc/mattermost/mattermost.env"
OVERRIDES = "/etc/mattermost/overrides.d"
DB_DIR = "/var/lib/mattermost-sample-db"
DB_FILE = f"{DB_DIR}/mattermost_test.json"
STORE = "/var/lib/mattermost/data"
PLUGINS = "/var/lib/mattermost/plugins"
CLIENT_PLUGINS = "/var/lib/mattermost/client/plugins"
LOGS = "/var/log/mattermost"
BACKUPS = "/var/backups/mattermost"
# Trees whose every file must come through an upgrade byte for byte.
KEPT_TREES = (STORE, PLUGINS, CLIENT_PLUGINS, LOGS)
# The package's own record of the migrations it ran: every upgrade appends to it, and what it
# held before must still be there, in front, byte for byte.
PACKAGE_LOG = f"{LOGS}/package-upgrade.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class State:
    config: dict[str, Any]
    files: dict[str, str]  # path -> sha256, under KEPT_TREES, except PACKAGE_LOG
    package_log: bytes  # PACKAGE_LOG's content (b"" before any upgrade)
    owners: dict[str, tuple[str, str, int]]  # path -> (owner, group, mode) of what the package manages


@dataclass
class Site:
    root: harness.Root

    # ---- the database -------------------------------------------------------------------------

    def create_database(self) -> None:
        """The database 'server': a directory the service user can write (see docs/development.md,
        sample releases)."""
        self.root.run("install", "-d", "-o", "mattermost", "-g", "mattermost", "-m", "0750", DB_DIR)

    def schema(self) -> int:
        if not self.root.exists(DB_FILE):
            return 0
        return int(self.root.read_json(DB_FILE)["schema_version"])

    # ---- the server ---------------------------------------------------------------------------

    def env_vars(self) -> dict[str, str]:
        """The environment file's variables, read the way systemd reads EnvironmentFile=."""
        out: dict[str, str] = {}
        if self.root.exists(ENV_FILE):
            for line in self.root.read_text(ENV_FILE).splitlines():
                if line.strip() and not line.lstrip().startswith(("#", ";")) and "=" in line:
                    key, _, value = line.partition("=")
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                        value = value[1:-1]
                    out[key.strip()] = value
        return out

    def set_env(self, **variables: str) -> None:
        """Add or replace variables in the environment file (an administrator's edit)."""
        lines = [
            line
            for line in self.root.read_text(ENV_FILE).splitlines()
            if line.partition("=")[0].strip() not in variables
        ]
        lines += [f"{k}={v}" for k, v in variables.items()]
        self.root.write_text(ENV_FILE, "\n".join(lines) + "\n")

    @contextmanager
    def serve(self, *, timeout: float = 30, env: dict[str, str] | None = None) -> Iterator[str]:
        """Run the installed server until the block ends; yields its ping URL.

        Chroot tier only (a booted root runs it through systemd instead). The port comes from a
        process environment variable, which the server never writes into config.json. `env`:
        what a hand-made unit's environment gives it instead of the environment file.
        """
        port = free_port()
        env = {
            **(self.env_vars() if env is None else env),
            "MM_SERVICESETTINGS_LISTENADDRESS": f"127.0.0.1:{port}",
        }
        assignments = [f"{k}={v}" for k, v in env.items()]
        argv = [
            "chroot", str(self.root.dir), "runuser", "-u", "mattermost", "--",
            "env", "-i", "PATH=/usr/bin:/bin", "HOME=/var/lib/mattermost", *assignments,
            "sh", "-c", "cd /opt/mattermost && exec bin/mattermost",
        ]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}/api/v4/system/ping"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"the server exited with {proc.returncode}:\n{out}")
                try:
                    with urllib.request.urlopen(url, timeout=1) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not answer {url} within {timeout} s")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()

    def ping_version(self, url: str) -> str:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return str(json.loads(reply.read())["version"])

    def store_config_in_database(self, dsn: str, config: str) -> None:
        """Upstream's configuration-in-your-database.rst: the configuration file `config` moves
        into the database `dsn`. Here with `db init` and the file as its custom defaults
        (MM_CUSTOM_DEFAULTS_PATH), which stores the same settings in the empty store as `mmctl
        config migrate` does; as the service user, from the install directory."""
        self.root.run(
            "runuser", "-u", "mattermost", "--", "env", "-C", "/opt/mattermost", f"MM_CONFIG={dsn}",
            f"MM_CUSTOM_DEFAULTS_PATH={config}", "bin/mattermost", "db", "init",
        )  # fmt: skip

    # ---- what an administrator has done -------------------------------------------------------

    def edit_config(self, section: str, key: str, value: Any) -> None:
        """A System Console save: the server writes the key into config.json."""
        config = self.root.read_json(CONFIG)
        config.setdefault(section, {})[key] = value
        path = self.root.path(CONFIG)
        path.write_text(json.dumps(config, indent=4))

    def add_override(self, name: str, data: dict[str, Any]) -> None:
        self.root.run("install", "-d", "-m", "0755", OVERRIDES)
        self.root.write_text(f"{OVERRIDES}/{name}", json.dumps(data, ensure_ascii=False))

    def add_files(self) -> None:
        """Uploads in the file store, an installed plugin and a client plugin bundle."""
        script = f"""
            set -e
            mkdir -p {STORE}/teams/t1/channels/c1 {PLUGINS}/com.example.custom {CLIENT_PLUGINS}/com.example.custom
            printf 'report' > {STORE}/teams/t1/channels/c1/report.pdf
            head -c 4096 /dev/urandom > {STORE}/teams/t1/channels/c1/image.png
            printf '{{"id": "com.example.custom", "version": "1.0.0"}}' > {PLUGINS}/com.example.custom/plugin.json
            printf 'bundle' > {CLIENT_PLUGINS}/com.example.custom/main.js
            chown -R mattermost:mattermost {STORE}/teams {PLUGINS}/com.example.custom {CLIENT_PLUGINS}/com.example.custom
        """
        self.root.run("runuser", "-u", "root", "--", "sh", "-c", script)

    # ---- comparing ----------------------------------------------------------------------------

    def state(self) -> State:
        files: dict[str, str] = {}
        for tree in KEPT_TREES:
            if not self.root.exists(tree):
                continue
            base = self.root.path(tree)
            for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink()):
                if f"{tree}/{path.relative_to(base)}" == PACKAGE_LOG:
                    continue
                files[f"{tree}/{path.relative_to(base)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
        owners = {}
        for managed in (ETC, CONFIG_DIR, CONFIG, ENV_FILE, STORE, PLUGINS, CLIENT_PLUGINS, LOGS, BACKUPS):
            if self.root.exists(managed):
                info = self.root.stat(managed)
                owners[managed] = (info.owner, info.group, info.mode)
        log = self.root.path(PACKAGE_LOG).read_bytes() if self.root.exists(PACKAGE_LOG) else b""
        return State(config=self.root.read_json(CONFIG), files=files, package_log=log, owners=owners)


def assert_nothing_lost(before: State, after: State, *, changed_keys: frozenset[str] = frozenset()) -> None:
    """Every key present before keeps its value (except `changed_keys`, "Section.Key"), every kept
    file is byte-identical (the package's own log only appended to), and ownership and modes are
    unchanged."""
    for section, values in before.config.items():
        if not isinstance(values, dict):
            assert after.config.get(section) == values, section
            continue
        for key, value in values.items():
            if f"{section}.{key}" in changed_keys:
                continue
            assert after.config.get(section, {}).get(key) == value, f"{section}.{key} changed"
    missing = {p: h for p, h in before.files.items() if after.files.get(p) != h}
    assert not missing, f"files lost or changed: {sorted(missing)}"
    assert after.package_log.startswith(before.package_log), f"{PACKAGE_LOG} was rewritten"
    assert before.owners == after.owners


EXPECTED_OWNERS = {
    ETC: ("root", "root", 0o755),
    CONFIG_DIR: ("mattermost", "mattermost", 0o750),
    CONFIG: ("mattermost", "mattermost", 0o600),
    ENV_FILE: ("root", "mattermost", 0o640),
    STORE: ("mattermost", "mattermost", 0o750),
    PLUGINS: ("mattermost", "mattermost", 0o750),
    CLIENT_PLUGINS: ("mattermost", "mattermost", 0o750),
    LOGS: ("mattermost", "mattermost", 0o750),
    BACKUPS: ("root", "root", 0o700),
}
