"""The container tier (`-m docker`): the packages' whole life on each target distribution.

On every image of MMPKG_TEST_IMAGES (tests/support/docker_engine.py) the image's own package manager
installs the previous release, the site is used (a database, the server run, a System Console
edit, uploads and plugins, an administrator's override), the new release is installed over it,
nothing is lost, the server answers its ping with the new version, and the package is removed,
keeping the site. The containers are pytest-docker's: its `docker_services` fixture starts the
compose project of tests/docker/compose.yml, once per image, with the fixtures below.

The packages are sample releases built by this checkout, or, with MMPKG_TEST_PACKAGES=DIR, the
two newest versions of the server package found in DIR (a CI's build and the release before it).
A real server needs a database to answer its ping: with MMPKG_TEST_DATASOURCE (a role that may
create databases on a PostgreSQL server) each image's site gets a database of its own there,
set as the administrator sets it, and the upgrade backs it up with pg_dump; without it the
sample server uses its stand-in, a directory, which no real release can.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pytest_docker import Services

from mmpkg.packaging.version_order import PackageVersion
from mmpkg.repo.packages import inspect
from tests.support import docker_engine, harness
from tests.support.docker_engine import Container, Engine
from tests.support.packages import PackageFactory
from tests.support.scenario import (
    CLIENT_PLUGINS,
    CONFIG,
    DB_DIR,
    ENV_FILE,
    EXPECTED_OWNERS,
    KEPT_TREES,
    OVERRIDES,
    PACKAGE_LOG,
    PLUGINS,
    STORE,
    State,
    assert_nothing_lost,
    free_port,
)

pytestmark = pytest.mark.docker

V1, V2 = "10.5.2", "10.11.1"
SERVER_PACKAGES = ("mattermost", "mattermost-team")
PID_FILE = "/tmp/mmpkg-test-server.pid"
SERVER_OUT = "/tmp/mmpkg-test-server.out"
ORG = (("TeamSettings.SiteName", "Example Chat"),)


# --- pytest-docker's fixtures, for this tier ----------------------------------------------------


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with docker_engine.engine() as found:
        if found is None:
            harness.require(*docker_engine.ENGINE_TOOLS, "dockerd")
            reason = "no Docker engine answers and none could be started (.ci/dockerd, as root)"
            if harness._in_ci():
                pytest.fail(f"CI=true but {reason}", pytrace=False)
            pytest.skip(reason)
        yield found


@pytest.fixture(scope="session", params=docker_engine.images())
def image(request: pytest.FixtureRequest, engine: Engine) -> str:
    name = str(request.param)
    if name == docker_engine.LOCAL_IMAGE:
        harness.require(*harness.ROOT_TOOLS)
        return docker_engine.import_local_image(engine, harness.pristine_root())
    return name


@pytest.fixture(scope="session")
def package_dir(packages: PackageFactory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the containers see at /pkgs."""
    given = os.environ.get("MMPKG_TEST_PACKAGES")
    if given:
        return Path(given).resolve()
    harness.require("dpkg-deb", "rpmbuild", root=False)
    out = tmp_path_factory.mktemp("docker-packages")
    for version in (V1, V2):
        built = packages.build(version, settings=ORG)
        for path in (built.deb, built.rpm):
            os.link(path, out / path.name)
    return out


@pytest.fixture(scope="session")
def docker_compose_command(engine: Engine, image: str, package_dir: Path) -> str:
    return engine.compose_command(image, package_dir)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(docker_engine.COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name(image: str) -> str:
    return f"mmpkg{os.getpid()}-{re.sub(r'[^a-z0-9]+', '-', image.lower()).strip('-')}"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    # Compose v1 has no `up --wait` (pytest-docker's default); the service is ready once up.
    return ["up -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    # `sleep infinity` ignores SIGTERM: waiting for it would only cost the 10 s default.
    return ["down -v -t 0"]


@pytest.fixture
def container(
    docker_services: Services, docker_ip: str, engine: Engine, docker_compose_project_name: str
) -> Container:
    return Container.of(engine, docker_compose_project_name, ip=docker_ip)


# --- the site in a container --------------------------------------------------------------------


def pick(package_dir: Path, family: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """((file, version) of the previous release, (file, version) of the new one) for `family`."""
    found: list[tuple[str, str]] = []
    for path in sorted(package_dir.glob(f"*.{family}")):
        (incoming, *_) = inspect(path)
        if incoming.entry.name in SERVER_PACKAGES:
            found.append((path.name, incoming.entry.version.split("-")[0]))
    found.sort(key=lambda f: PackageVersion(family, f[1]))
    assert len(found) >= 2, (
        f"{package_dir} needs two versions of the server's .{family} to upgrade between: {found}"
    )
    return found[-2], found[-1]


class Pkg:
    """The image's package manager, as an administrator types it (stdin at EOF: no prompt)."""

    def __init__(self, box: Container, family: str) -> None:
        self.box, self.family = box, family

    def install(self, file: str) -> str:
        if self.family == "deb":
            # Registry images (ubuntu:24.04, debian:13) ship without package lists, so apt
            # could not resolve the package's Depends; the locally imported root keeps its own.
            # dnf fetches its repositories' metadata by itself.
            self.box.sh("ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -q")
            return self.box.sh(
                f"DEBIAN_FRONTEND=noninteractive apt-get install -y /pkgs/{shlex.quote(file)}"
            ).stdout
        return self.box.run("dnf", "install", "-y", f"/pkgs/{file}").stdout

    def database_client(self, admin: str) -> None:
        """psql and pg_dump, the client the package recommends, new enough for the server
        `admin` names: pg_dump refuses a server newer than itself, and RHEL 9's default stream
        (13) is older than any server a release of v11 runs on."""
        if self.family == "deb":
            self.box.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-client")
            return
        self.box.run("dnf", "install", "-y", "postgresql")
        server = self.box.run("psql", "-X", "-A", "-t", admin, "-c", "SHOW server_version_num").stdout
        client = self.box.sh("pg_dump --version | grep -o '[0-9][0-9]*' | head -n 1").stdout
        if int(server) // 10000 > int(client):
            stream = f"postgresql:{int(server) // 10000}"
            self.box.sh(
                f"dnf module reset -y postgresql && dnf module enable -y {stream} && dnf distro-sync -y postgresql"
            )

    def upgrade(self, file: str) -> str:
        if self.family == "deb":
            return self.install(file)
        return self.box.run("dnf", "upgrade", "-y", f"/pkgs/{file}").stdout

    def remove(self, name: str) -> None:
        if self.family == "deb":
            self.box.sh(f"DEBIAN_FRONTEND=noninteractive apt-get remove -y {name}")
        else:
            self.box.run("dnf", "remove", "-y", name)

    def version(self, name: str) -> str | None:
        query = (
            ["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", name]
            if self.family == "deb"
            else ["rpm", "-q", "--qf", "ii %{VERSION}-%{RELEASE}", name]
        )
        out = self.box.run(*query, check=False)
        fields = out.stdout.split()
        return fields[1].split("-")[0] if out.returncode == 0 and fields[:1] == ["ii"] else None


def env_file(box: Container) -> dict[str, str]:
    """The environment file's variables, read as systemd's EnvironmentFile= reads them."""
    out: dict[str, str] = {}
    for line in box.read_text(ENV_FILE).splitlines():
        if line.strip() and not line.lstrip().startswith(("#", ";")) and "=" in line:
            key, _, value = line.partition("=")
            value = value.strip()
            # systemd takes a value in single or double quotes (mattermost-pkg writes single).
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key.strip()] = value
    return out


def create_database(box: Container, pkg: Pkg) -> dict[str, str]:
    """The database the server is to use, as variables for its environment.

    With MMPKG_TEST_DATASOURCE (a PostgreSQL URL of a role that may create roles and databases:
    the CI templates' service) each image gets a database and an owner of its own on that
    server, since a database the last image's newer release migrated is none to install the
    older one on. The administrator's steps follow: the PostgreSQL client the package
    recommends, then `mattermost-pkg configure --datasource`, which tries the URL before it
    writes it to the environment file, where the upgrade's database backup reads it too."""
    admin = os.environ.get("MMPKG_TEST_DATASOURCE")
    if not admin:
        box.run("install", "-d", "-o", "mattermost", "-g", "mattermost", "-m", "0750", DB_DIR)
        return {}
    name, password = f"mmtier_{secrets.token_hex(4)}", secrets.token_hex(12)
    pkg.database_client(admin)
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", admin]
    box.run(*psql, "-c", f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    box.run(*psql, "-c", f"CREATE DATABASE {name} OWNER {name}")
    url = urlsplit(admin)
    host = url.netloc.rpartition("@")[2]
    dsn = urlunsplit(
        (url.scheme, f"{name}:{password}@{host}", f"/{name}", "sslmode=disable&connect_timeout=10", "")
    )
    box.run("mattermost-pkg", "configure", "--datasource", dsn)
    assert env_file(box)["MM_SQLSETTINGS_DATASOURCE"] == dsn
    return {}


@contextmanager
def serving(box: Container, database: dict[str, str], *, timeout: float = 60) -> Iterator[str]:
    """The installed server, run as the unit runs it (the service user, the environment file),
    until the block ends; yields the ping URL. Host networking: the engine's host is the
    container's, so the server listens on loopback unless the engine is elsewhere (GitLab's
    dind service, pytest-docker's `docker_ip`)."""
    port = free_port()
    listen = "127.0.0.1" if box.ip == "127.0.0.1" else "0.0.0.0"
    env = {**env_file(box), **database, "MM_SERVICESETTINGS_LISTENADDRESS": f"{listen}:{port}"}
    start = f"echo $$ > {PID_FILE}; exec bin/mattermost > {SERVER_OUT} 2>&1"
    box.detached(
        "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/var/lib/mattermost",
        *(f"{k}={v}" for k, v in env.items()), "sh", "-c", start,
        user="mattermost", workdir="/opt/mattermost",
    )  # fmt: skip
    url = f"http://{box.ip}:{port}/api/v4/system/ping"
    try:

        def up() -> bool:
            if box.sh(f"kill -0 $(cat {PID_FILE})", check=False).returncode != 0:
                raise AssertionError("the server exited")
            return _answers(url)

        harness.wait_until(up, timeout=timeout, interval=0.1, what=f"the server to answer {url}")
        yield url
    except AssertionError as e:
        raise AssertionError(f"{e}\n{box.sh(f'cat {SERVER_OUT}', check=False).stdout}") from e
    finally:
        stop = f"pid=$(cat {PID_FILE}) && kill $pid && while kill -0 $pid 2>/dev/null; do sleep 0.1; done"
        box.sh(f"timeout 20 sh -c {shlex.quote(stop)} || kill -9 $(cat {PID_FILE})", check=False)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def ping_version(url: str) -> str:
    """The version the server reports: the sample's ping body, or the real server's header."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        body = json.loads(reply.read())
        return str(body.get("version") or reply.headers.get("X-Version-Id", "").split(".")[:3])


def use_site(box: Container) -> None:
    """What an administrator does between upgrades: a System Console save, an override, files."""
    config = box.read_json(CONFIG)
    config["TeamSettings"]["MaxUsersPerTeam"] = 250
    config["ServiceSettings"]["SiteURL"] = "https://chat.example.com"
    config["EmailSettings"]["FeedbackName"] = "Console sender"
    box.write_text(CONFIG, json.dumps(config, indent=4))
    box.run("install", "-d", "-m", "0755", OVERRIDES)
    box.write_text(
        f"{OVERRIDES}/50-admin.json", json.dumps({"EmailSettings": {"FeedbackName": "Example IT"}})
    )
    box.sh(
        f"""set -e
        mkdir -p {STORE}/teams/t1/channels/c1 {PLUGINS}/com.example.custom {CLIENT_PLUGINS}/com.example.custom
        printf report > {STORE}/teams/t1/channels/c1/report.pdf
        head -c 4096 /dev/urandom > {STORE}/teams/t1/channels/c1/image.png
        printf '{{"id": "com.example.custom", "version": "1.0.0"}}' > {PLUGINS}/com.example.custom/plugin.json
        printf bundle > {CLIENT_PLUGINS}/com.example.custom/main.js
        chown -R mattermost:mattermost {STORE}/teams {PLUGINS}/com.example.custom {CLIENT_PLUGINS}/com.example.custom
        """
    )


def state(box: Container) -> State:
    """scenario.State, read inside the container with the image's own coreutils."""
    files: dict[str, str] = {}
    for tree in KEPT_TREES:
        listing = box.sh(f"test ! -d {tree} || find {tree} -type f -exec sha256sum {{}} +").stdout
        for line in listing.splitlines():
            digest, _, path = line.partition("  ")
            if path != PACKAGE_LOG:
                files[path] = digest
    owners: dict[str, tuple[str, str, int]] = {}
    for managed in EXPECTED_OWNERS:
        out = box.run("stat", "-c", "%U %G %a", managed, check=False)
        if out.returncode == 0:
            owner, group, mode = out.stdout.split()
            owners[managed] = (owner, group, int(mode, 8))
    log = box.read_text(PACKAGE_LOG).encode() if box.exists(PACKAGE_LOG) else b""
    return State(config=box.read_json(CONFIG), files=files, package_log=log, owners=owners)


# --- the scenario -------------------------------------------------------------------------------


def test_install_use_upgrade_and_remove(container: Container, package_dir: Path, image: str) -> None:
    family = container.family()
    (old_file, old), (new_file, new) = pick(package_dir, family)
    (name, *_) = [e.entry.name for e in inspect(package_dir / new_file)]
    pkg = Pkg(container, family)

    pkg.install(old_file)
    assert pkg.version(name) == old
    database = create_database(container, pkg)
    with serving(container, database) as url:
        assert ping_version(url) == old
    use_site(container)
    with serving(container, database):
        pass
    before = state(container)
    assert before.owners == EXPECTED_OWNERS

    # The administrator stops a server that runs outside systemd; the package refuses otherwise.
    started = time.monotonic()
    pkg.upgrade(new_file)
    assert pkg.version(name) == new, f"{image}: still {pkg.version(name)} after upgrading"
    after = state(container)
    assert_nothing_lost(before, after, changed_keys=frozenset({"EmailSettings.FeedbackName"}))
    assert after.config["EmailSettings"]["FeedbackName"] == "Example IT"  # the override, re-applied
    assert after.config["TeamSettings"]["MaxUsersPerTeam"] == 250
    with serving(container, database) as url:
        assert ping_version(url) == new
    if os.environ.get("MMPKG_TEST_DATASOURCE"):
        # A real database: the upgrade dumped it, and pg_restore read the dump back.
        assert re.search(rb"saved the database mmtier_\w+ in .*read back with pg_restore", after.package_log)
    harness.log.info("%s: upgraded %s to %s in %.1f s", image, old, new, time.monotonic() - started)

    kept = state(container)
    pkg.remove(name)
    assert pkg.version(name) is None
    assert not container.exists("/opt/mattermost/bin/mattermost")
    gone = state(container)
    assert gone.files == kept.files and gone.config == kept.config
