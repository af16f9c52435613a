"""The hostile service user: the server runs third-party plugins, so its user may be anyone's.

For each root action (install, upgrade, remove, purge, adoption, apply-overrides, backup,
migrate, resume), the service user first plants what an attacker would in every place it can
write: links to root's files and directories, FIFOs, a directory of its own where root expects
one; and while the action runs, a loop of the service user's keeps swapping those names. Then:

- no sentinel (root-only files and a directory outside the service user's trees) changed owner,
  mode, content or existence;
- no secret of root's reached a place the service user can read, nor the arguments or
  environment of anything run as the service user (runuser is wrapped and records its calls).

The same for an installation made by an older package, whose /etc/mattermost the service user
could write (`legacy_layout`): its plants there are moved aside, never followed.
Both formats; the maintainer scripts and mattermost-pkg under dash and under bash.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import harness
from tests.support.packages import PackageFactory
from tests.support.pgserver import PgServer
from tests.support.repo_client import RepoClient
from tests.support.scenario import BACKUPS, CONFIG, CONFIG_DIR, ENV_FILE, ETC, LOGS, OVERRIDES, Site
from tests.test_chain import _published
from tests.test_lifecycle import (
    ENVIRONMENT,
    HANDMADE_UNIT,
    NEW,
    OLD,
    PREFIX,
    Manager,
    install_by_hand,
    manager,
    move_config_to_database,
    snapshots,
    used_site,
)
from tests.test_repo import _serve, gnupghome
from tests.test_rollback import Upgraded, upgraded

__all__ = ["gnupghome", "upgraded"]  # the rollback tier's fixtures

pytestmark = pytest.mark.install

USER = "mattermost"
STATE = "/var/lib/mattermost"
ADMIN = "/usr/sbin/mattermost-pkg"
PACKAGE_CONF = f"{ETC}/package.conf"
# Root's, nobody else's: what every planted link points at.
VAULT = "/root/vault"
SECRET = f"root-only-{uuid.uuid4().hex}"
SECRET_JSON = f"{VAULT}/secret.json"
SECRET_ENV = f"{VAULT}/secret.env"
SECRET_DIR = f"{VAULT}/private"
SENTINELS = ("/etc/passwd", "/etc/shadow", VAULT, SECRET_JSON, SECRET_ENV, SECRET_DIR, f"{SECRET_DIR}/keep")
# Where runuser's wrapper records how it was called (root's).
RUNUSER_LOG = "/root/runuser-calls"
SHELLS = ("dash", "bash")


@dataclass(frozen=True)
class Meta:
    kind: str
    uid: int
    gid: int
    mode: int
    digest: str


def sentinel_state(root: harness.Root) -> dict[str, Meta | None]:
    out: dict[str, Meta | None] = {}
    for path in SENTINELS:
        host = root.path(path, follow_symlinks=False)
        if not host.exists() and not host.is_symlink():
            out[path] = None
            continue
        st = host.lstat()
        if host.is_symlink():
            kind, digest = "link", str(host.readlink())
        elif host.is_dir():
            kind, digest = "dir", ",".join(sorted(p.name for p in host.iterdir()))
        else:
            kind, digest = "file", hashlib.sha256(host.read_bytes()).hexdigest()
        out[path] = Meta(kind, st.st_uid, st.st_gid, st.st_mode, digest)
    return out


def make_vault(root: harness.Root) -> None:
    root.sh(f"""
        install -d -o root -g root -m 0700 {VAULT} {SECRET_DIR}
        printf '{{"SqlSettings": {{"DataSource": "{SECRET}"}}, "TeamSettings": {{"SiteName": "{SECRET}"}}}}\\n' >{SECRET_JSON}
        printf 'MM_TEAMSETTINGS_SITENAME={SECRET}\\nMMPKG_DB_BACKUP=0\\n' >{SECRET_ENV}
        printf '{{"TeamSettings": {{"SiteName": "{SECRET}"}}}}\\n' >{SECRET_DIR}/99-secret.json
        printf 'keep\\n' >{SECRET_DIR}/keep
        chmod 0600 {SECRET_JSON} {SECRET_ENV} {SECRET_DIR}/99-secret.json {SECRET_DIR}/keep
    """)


def use_shell(root: harness.Root, shell: str) -> None:
    """/bin/sh of the root: the maintainer scripts, scriptlets and mattermost-pkg run with it."""
    root.run("ln", "-sf", shell, "/bin/sh")


def record_runuser(root: harness.Root) -> None:
    """Every runuser call's arguments and environment go to a root-only log."""
    root.wrap(
        "runuser",
        lambda real: (
            f"""#!/bin/bash
{{ printf 'ARGS'; printf ' %q' "$@"; printf '\\n'; env; }} >>{RUNUSER_LOG}
exec {real} "$@"
"""
        ),
    )


def as_service(root: harness.Root, script: str) -> None:
    root.run("runuser", "-u", USER, "--", "sh", "-c", script)


def service_writable_dirs(root: harness.Root) -> list[str]:
    """Every directory of the root the service user can write, but the world-writable ones."""
    out = root.run(
        "runuser", "-u", USER, "--", "find", "/", "-xdev",
        "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", "/dev", "-o", "-path", "/run", ")",
        "-prune", "-o", "-type", "d", "-writable", "!", "-perm", "-0002", "-print",
        check=False,
    ).stdout  # fmt: skip
    return sorted(line for line in out.splitlines() if line)


def plant(root: harness.Root, dirs: list[str]) -> None:
    """In every directory the service user can write: links to root's files and directory under
    names root might act on, a FIFO, and in its own trees, its configuration files swapped."""
    names = " ".join(
        f"'{n}'" for n in (
            "package-upgrade.log", ".config.json.AAAAAA", ".mmpkg-restore.AAAAAA", "config.json.dpkg-old",
            "mattermost.env", "package.conf", "99-x.json", "saml-idp.crt",
        )
    )  # fmt: skip
    as_service(
        root,
        f"""
        for d in {" ".join(f"'{d}'" for d in dirs)}; do
            cd "$d" || continue
            for n in {names}; do
                [ -e "$n" ] || [ -L "$n" ] || ln -s {SECRET_JSON} "$n" 2>/dev/null || true
            done
            ln -sfn {SECRET_DIR} hostile-dir 2>/dev/null || true
            ln -sfn /etc/shadow hostile-shadow 2>/dev/null || true
            mkfifo hostile-fifo 2>/dev/null || true
        done
        """,
    )
    # The migration log, a FIFO: a root that opens it for writing would hang.
    as_service(
        root, f"[ ! -d {LOGS} ] || {{ rm -f {LOGS}/package-upgrade.log; mkfifo {LOGS}/package-upgrade.log; }}"
    )


@contextmanager
def racing(root: harness.Root, dirs: list[str]) -> Iterator[None]:
    """While the action runs, the service user swaps what it can: every entry of its
    directories is replaced by a link to root's secrets and put back, over and over."""
    script = f"""
        i=0
        while [ $i -lt 200000 ]; do
            for d in {" ".join(f"'{d}'" for d in dirs)}; do
                for f in "$d"/* "$d"/.[!.]*; do
                    [ -e "$f" ] || [ -L "$f" ] || continue
                    case "$f" in *.hostile) continue ;; esac
                    mv -f "$f" "$f.hostile" 2>/dev/null && ln -sfn {SECRET_JSON} "$f" 2>/dev/null
                    rm -f "$f" 2>/dev/null; mv -f "$f.hostile" "$f" 2>/dev/null
                done
            done
            i=$((i + 1))
            sleep 0.02
        done
    """
    # A session of its own, so that the whole loop goes when the action is done (runuser keeps
    # the shell as its child); bounded in time whatever happens to the test.
    proc = subprocess.Popen(
        # At the lowest priority: it takes the time the action leaves, not the action's.
        [
            "timeout",
            "600",
            "nice",
            "-n",
            "19",
            "chroot",
            str(root.dir),
            "runuser",
            "-u",
            USER,
            "--",
            "sh",
            "-c",
            script,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=harness.root_env(),
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def readable_by_service(root: harness.Root) -> str:
    """Everything the service user can read in its trees and in the places it shares."""
    script = f"""
        for d in {ETC} {STATE} {LOGS} {PREFIX} /tmp /var/tmp; do
            [ -d "$d" ] || continue
            find "$d" -xdev -type f -readable ! -name 'hostile-*' -exec cat {{}} + 2>/dev/null
        done
        true
    """
    return root.run("runuser", "-u", USER, "--", "sh", "-c", script, check=False).stdout


def assert_unharmed(root: harness.Root, before: dict[str, Meta | None]) -> None:
    assert sentinel_state(root) == before
    assert SECRET not in readable_by_service(root)
    calls = root.read_text(RUNUSER_LOG) if root.exists(RUNUSER_LOG) else ""
    assert SECRET not in calls


@contextmanager
def under_attack(root: harness.Root) -> Iterator[None]:
    """The action in the body runs after the service user planted in every directory it can
    write, and while it races there; then nothing of root's may have changed or leaked."""
    dirs = service_writable_dirs(root)
    plant(root, dirs)
    record_runuser(root)
    before = sentinel_state(root)
    with racing(root, dirs):
        yield
    assert_unharmed(root, before)


def legacy_layout(root: harness.Root) -> None:
    """What an older package left: config.json in /etc/mattermost, which the service user
    could write; the release's config link pointing there."""
    root.sh(f"""
        [ -d {CONFIG_DIR} ] || exit 0
        mv {CONFIG} {ETC}/config.json.moving
        rm -f {ETC}/config.json
        mv {ETC}/config.json.moving {ETC}/config.json
        rmdir {CONFIG_DIR}
        chown root:{USER} {ETC} && chmod 0770 {ETC}
        ln -sfn {ETC} {PREFIX}/config
    """)


def plant_in_legacy_etc(root: harness.Root) -> None:
    """The service user's moves in an older package's /etc/mattermost: root's files and the
    overrides directory become links to root's secrets."""
    as_service(
        root,
        f"""
        cd {ETC}
        mv mattermost.env mattermost.env.theirs && ln -s {SECRET_ENV} mattermost.env
        mv package.conf package.conf.theirs && ln -s {SECRET_ENV} package.conf
        mv overrides.d overrides.d.theirs && ln -s {SECRET_DIR} overrides.d
        ln -s {SECRET_JSON} package.conf.dpkg-old
        """,
    )


@pytest.fixture(params=[(f, s) for f in ("deb", "rpm") for s in SHELLS], ids=lambda p: f"{p[0]}-{p[1]}")
def hostile(request: pytest.FixtureRequest, root: harness.Root, packages: PackageFactory) -> Manager:
    fmt, shell = request.param
    pm = manager(fmt, root, packages)
    use_shell(root, shell)
    make_vault(root)
    return pm


def test_upgrade(hostile: Manager) -> None:
    root = hostile.root
    used_site(hostile, OLD)
    dirs = service_writable_dirs(root)
    assert CONFIG_DIR in dirs and STATE in dirs and LOGS in dirs
    assert ETC not in dirs and PREFIX not in dirs
    plant(root, dirs)
    record_runuser(root)
    before = sentinel_state(root)
    with racing(root, dirs):
        hostile.install(hostile.build(NEW))
    assert_unharmed(root, before)


def test_upgrade_from_the_legacy_layout(hostile: Manager) -> None:
    root = hostile.root
    used_site(hostile, OLD)
    legacy_layout(root)
    plant_in_legacy_etc(root)
    dirs = service_writable_dirs(root)
    assert ETC in dirs
    plant(root, dirs)
    record_runuser(root)
    before = sentinel_state(root)
    with racing(root, dirs):
        result = hostile.install(hostile.build(NEW))
    assert_unharmed(root, before)
    # Root's directory is root's alone again; what was planted there went aside, unread.
    assert (root.stat(ETC).owner, root.stat(ETC).mode) == ("root", 0o755)
    for name in ("mattermost.env", "package.conf", "overrides.d", "package.conf.dpkg-old"):
        assert not root.path(f"{ETC}/{name}", follow_symlinks=False).is_symlink(), (name, result.output)
    assert ETC not in service_writable_dirs(root)


@pytest.mark.parametrize(
    "command", ["apply-overrides", "backup", "heal", "migrate", "report", "resume", "status"]
)
def test_admin_command(hostile: Manager, command: str) -> None:
    root = hostile.root
    used_site(hostile, OLD)
    with under_attack(root):
        root.run(ADMIN, command, check=False)


def test_restore(hostile: Manager) -> None:
    """A backup put back while the service user plants and races in its trees, the file store
    among them: root only streams its own archive to tar run as that user."""
    root = hostile.root
    used_site(hostile, OLD)
    root.run(ADMIN, "backup", "--no-database")
    (name,) = [p.name for p in root.path(BACKUPS).iterdir() if "_manual_" in p.name]
    with under_attack(root):
        root.run(ADMIN, "restore", "--yes", name, check=False)


@pytest.mark.parametrize("purge_data", [False, True])
def test_remove_and_purge(hostile: Manager, purge_data: bool) -> None:
    root = hostile.root
    used_site(hostile, OLD)
    dirs = service_writable_dirs(root)
    plant(root, dirs)
    # Links to root's directory in place of what purge deletes.
    as_service(root, f"ln -s {SECRET_DIR} {LOGS}/old-logs; ln -s {SECRET_DIR} {STATE}/data/old-store")
    record_runuser(root)
    before = sentinel_state(root)
    with racing(root, dirs):
        hostile.remove().ok()
        if hostile.fmt == "deb":
            env = {"MMPKG_PURGE_DATA": "1"} if purge_data else {}
            root.run("dpkg", "--purge", "mattermost", env=env)
    assert_unharmed(root, before)


def test_adoption_then_upgrade(hostile: Manager) -> None:
    root = hostile.root
    install_by_hand(root, hostile.packages, OLD)
    # The hand-made tree is the service user's: it plants links where the release's files go,
    # in the release's directories and in the configuration about to move.
    as_service(
        root,
        f"""
        cd {PREFIX}
        rm -f client/root.html && ln -s /etc/shadow client/root.html
        ln -s {SECRET_DIR} bin/hostile-dir
        ln -s {SECRET_JSON} config/saml-idp.crt
        mkfifo config/hostile-fifo
        rm -rf i18n && ln -s {SECRET_DIR} i18n
        """,
    )
    plant(root, service_writable_dirs(root))
    record_runuser(root)
    before = sentinel_state(root)
    hostile.install(hostile.build(OLD)).ok()
    assert_unharmed(root, before)
    # The release's directories are root's now; the server's own stay its own.
    for d in ("", "/bin", "/client", "/i18n"):
        info = root.stat(f"{PREFIX}{d}", follow_symlinks=False)
        assert (info.kind, info.owner) == ("dir", "root"), d
    assert root.stat(f"{PREFIX}/data").owner == USER
    assert PREFIX not in service_writable_dirs(root)
    dirs = service_writable_dirs(root)
    plant(root, dirs)
    with racing(root, dirs):
        hostile.install(hostile.build(NEW))
    assert_unharmed(root, before)


@pytest.mark.parametrize("planted", ["link", "preload"])
def test_adoption_carries_only_the_servers_own_environment(
    hostile: Manager, postgres: PgServer, planted: str
) -> None:
    """The hand-made unit's environment file is the service user's: root reads it only as that
    user (a link there to root's secrets carries nothing, and refuses), and takes from it only
    MM_* settings, since the package's root ExecStartPre shares the unit's environment."""
    root = hostile.root
    db = postgres.new_database()
    site = install_by_hand(root, hostile.packages, OLD, db=db)
    move_config_to_database(site, db, HANDMADE_UNIT, proxy=False)
    if planted == "link":
        as_service(root, f"rm {ENVIRONMENT} && ln -s {SECRET_ENV} {ENVIRONMENT}")
    else:
        as_service(root, f"printf 'LD_PRELOAD={STATE}/evil.so\\nPATH={STATE}\\n' >>{ENVIRONMENT}")
    plant(root, service_writable_dirs(root))
    record_runuser(root)
    before = sentinel_state(root)
    result = hostile.install(hostile.build(NEW))
    assert_unharmed(root, before)
    if planted == "link":
        assert f"{ENVIRONMENT} cannot be read as {USER}" in result.refused()
        assert not root.exists(ENV_FILE) and hostile.version() is None
    else:
        result.ok()
        env = root.read_text(ENV_FILE)
        assert "MM_CONFIG=" in env and "LD_PRELOAD" not in env and f"PATH={STATE}" not in env
        assert "not carried over from the hand-made server's environment: LD_PRELOAD, PATH" in result.output


def test_the_server_config_is_read_as_the_service_user(hostile: Manager) -> None:
    """config.json a link to root's secret JSON: root reads it only as the service user, who
    cannot, so the upgrade refuses and nothing of the secret lands anywhere."""
    root = hostile.root
    used_site(hostile, OLD)
    as_service(root, f"ln -sfn {SECRET_JSON} {CONFIG}")
    record_runuser(root)
    before = sentinel_state(root)
    result = hostile.install(hostile.build(NEW))
    assert result.returncode != 0
    assert f"{CONFIG} is a symlink" in result.output
    assert_unharmed(root, before)


def test_rollback(upgraded: Upgraded) -> None:
    """mattermost-pkg rollback with real PostgreSQL and apt or dnf from a served repository,
    while the service user races in its directories."""
    root = upgraded.pm.root
    make_vault(root)
    with under_attack(root):
        root.run(ADMIN, "rollback", "--yes", check=False)


def test_rollback_refuses_a_snapshot_that_holds_a_link(upgraded: Upgraded) -> None:
    """An older package copied /etc/mattermost as the service user had left it: a link there
    would have root restore from wherever it points."""
    root = upgraded.pm.root
    make_vault(root)
    snapshot = f"{BACKUPS}/{snapshots(root)[-1]}"
    root.run("rm", "-rf", f"{snapshot}/etc-mattermost/overrides.d")
    root.run("ln", "-s", SECRET_DIR, f"{snapshot}/etc-mattermost/overrides.d")
    before = sentinel_state(root)
    proc = root.run(ADMIN, "rollback", "--yes", check=False)
    assert proc.returncode == 1
    assert (
        f"{snapshot}/etc-mattermost/overrides.d, which is neither a directory nor a plain file" in proc.stderr
    )
    assert upgraded.pm.installed() == f"{NEW}-1"
    assert sentinel_state(root) == before
    assert not root.exists(f"{OVERRIDES}/99-secret.json")


def test_upgrade_chain(packages: PackageFactory, gnupghome: Path, tmp_path: Path, root: harness.Root) -> None:
    """mattermost-pkg upgrade through an ESR stop, from a served repository, with apt."""
    chain = ("5.37.10", "6.3.10", "7.1.8")
    pm, site = RepoClient(root, "deb"), Site(root)
    make_vault(root)
    repo = _published(tmp_path, gnupghome, packages, chain, "deb")
    with _serve(repo.path) as url:
        pm.install_from(repo, url, chain[0])
        site.create_database()
        site.add_files()
        with under_attack(root):
            root.run(ADMIN, "upgrade", check=False)


def test_install_over_a_removed_install(hostile: Manager) -> None:
    """Remove, then install again: the state left behind is the service user's to have tampered with."""
    root = hostile.root
    used_site(hostile, OLD)
    hostile.remove().ok()
    with under_attack(root):
        hostile.install(hostile.build(NEW))


def test_a_process_of_the_service_user_s_in_the_dump_directory(hostile: Manager, postgres: PgServer) -> None:
    """pg_dump writes the upgrade's dump as the service user, into a directory root hands it as
    a descriptor; any process of that user's can reach the same directory through
    /proc/PID/fd while pg_dump runs. What it leaves there (links to root's files, a directory
    of its own) makes root refuse the dump, following nothing, before anything changes."""
    root = hostile.root
    db = postgres.new_database()
    hostile.install(hostile.build(OLD)).ok()
    site = Site(root)
    site.set_env(MM_SQLSETTINGS_DATASOURCE=db.dsn())
    with site.serve():
        pass
    kept = snapshots(root)
    # pg_dump as the service user, then that user's plants in the directory it was handed.
    # (Debian's pg_dump is a link to pg_wrapper, which goes by its name: the real one is called.)
    root.wrap(
        "pg_dump",
        lambda _: (
            f"""#!/bin/sh
for a; do d=${{a#--file=}}; done
$(ls /usr/lib/postgresql/*/bin/pg_dump | tail -n 1) "$@" || exit
ln -s {SECRET_JSON} "$d/toc.dat.link" && mkdir "$d/mine" && ln -s {SECRET_DIR} "$d/mine/link"
"""
        ),
    )
    with under_attack(root):
        result = hostile.install(hostile.build(NEW))
    error = result.refused()
    assert "which pg_dump does not write (another process of mattermost's was in its directory)" in error
    assert hostile.version() == OLD and snapshots(root) == kept
    assert int(db.query("SELECT coalesce(max(version), 0) FROM db_migrations")[0]) > 0
    root.unwrap("pg_dump")
    hostile.install(hostile.build(NEW)).ok()
    assert hostile.version() == NEW
