"""Replicas of Mattermost's own `mattermost` and `mattermost-omnibus` debs
(deb.packages.mattermost.com), for tests of the move from them to this project's package and
back.

Built the way upstream's Makefile builds it (mattermost/mattermost-omnibus, `Makefile`, target
`mattermost_$(version)-$(revision).deb`, at commit `COMMIT`): the release tarball unpacked into
`/opt/mattermost`, `config/config.json` renamed to `config/config.defaults.json`, links
`/usr/bin/{mattermost,platform,mmctl}`, the unit `mattermost/files/mattermost.service` in
`/lib/systemd/system`, and `mattermost/DEBIAN/` with `%%version%%` and `%%arch%%` filled in by
the same `sed`. The maintainer scripts and the unit in `tests/support/official/` are upstream's files
byte for byte (`BLOBS` holds their git blob ids, which a test checks). Two differences, neither
seen by a script: the payload is a sample release (mmpkg/sample) rather than a real one, and
`dpkg-deb --root-owner-group` makes its files root's where upstream's docker build leaves them
to the builder's uid (its postinst `chown -R`s the tree either way).

mattermost-omnibus is built by the Makefile's target `mattermost-omnibus_$(version)-$(revision)_%.deb`
the same way: `mattermost-omnibus/DEBIAN/` (upstream's files byte for byte, in
`tests/support/official/omnibus/`), the drop-in `omnibus-overrides.conf` in
/etc/systemd/system/mattermost.service.d (a plain file: upstream's DEBIAN/ has no conffiles),
`mmomni` and its ansible playbooks in /opt/mattermost/mmomni, and a link in /usr/local/bin.
Differences: the dependencies are `debconf` alone where upstream's `files/*_dependencies` add
nginx, PostgreSQL 13, certbot and ansible (the services omnibus sets up, which the move leaves
alone); `mmomni` is a stand-in that says so and fails (upstream's is a Go program, run by the
postinst only without MMO_SKIP_INITIAL_CONF, and by the preinst of an omnibus upgrade, which
tolerates its failure); of the playbooks, only the two templates the server's set-up reads.
What `mmomni reconfigure` then writes is in `omnibus_reconfigure`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import jinja2

from tests.support import harness

UPSTREAM = "mattermost/mattermost-omnibus"
COMMIT = "7d8779a0744158f90a87e6d2fec37ff1752aa8bc"
HERE = Path(__file__).parent / "official"
# Each file of tests/official, by its upstream path and git blob id at COMMIT.
BLOBS = {
    "DEBIAN/control": ("mattermost/DEBIAN/control", "fc5177a3c45d3d221ef1d4de46c51a574325625f"),
    "DEBIAN/preinst": ("mattermost/DEBIAN/preinst", "72aebec37ce3eae6fbfc23b933697ea9f2137b12"),
    "DEBIAN/postinst": ("mattermost/DEBIAN/postinst", "78f015541fa367d500235dc161da8e8a860a506c"),
    "DEBIAN/prerm": ("mattermost/DEBIAN/prerm", "51acd78fbef0dc0e43e510092661872a1ff08a6e"),
    "DEBIAN/postrm": ("mattermost/DEBIAN/postrm", "8c349b109dc862d3aa4197b621ef090d6625896f"),
    "mattermost.service": ("mattermost/files/mattermost.service", "0c1d096c11b93f5d0e818e906200105f2821bcde"),
    "omnibus/DEBIAN/config": ("mattermost-omnibus/DEBIAN/config", "3105740495bbb56e8cc174a059ba5f896e294053"),
    "omnibus/DEBIAN/control": (
        "mattermost-omnibus/DEBIAN/control",
        "759343e160850dfcbcded041ce28000582696a06",
    ),
    "omnibus/DEBIAN/postinst": (
        "mattermost-omnibus/DEBIAN/postinst",
        "ab9787de3eb28307e4cd5d18898e0b10ce39f8ff",
    ),
    "omnibus/DEBIAN/postrm": ("mattermost-omnibus/DEBIAN/postrm", "9a76f89bbe2e2089b98942a4936ca14d31277d80"),
    "omnibus/DEBIAN/preinst": (
        "mattermost-omnibus/DEBIAN/preinst",
        "49e8a4224f116dbb09965e7c88deb9cd8f11d071",
    ),
    "omnibus/DEBIAN/prerm": ("mattermost-omnibus/DEBIAN/prerm", "b335d1a7699f4c71890f76fa5cc83a145a8c88f2"),
    "omnibus/DEBIAN/templates": (
        "mattermost-omnibus/DEBIAN/templates",
        "8c54911170c6b5107056d7a7a7cfc3851ab5a26b",
    ),
    "omnibus/omnibus-overrides.conf": (
        "mattermost/files/omnibus-overrides.conf",
        "404fa29c3f173cbe1b4176375d6aff394c61e8c6",
    ),
    "omnibus/mattermost.env": (
        "mmomni/ansible/playbooks/mattermost.env",
        "ad3accbd7633e7b0fc65d1264ab97f5d5c8b2318",
    ),
    "omnibus/mattermost.service": (
        "mmomni/ansible/playbooks/mattermost.service",
        "eaa7db25818b9979df6ca1890a9eb50acc71bb9b",
    ),
}
INSTALL_PATH = "/opt/mattermost"
# Upstream's package revision: every release of theirs is X.Y.Z-0.
REVISION = 0


def git_blob_id(data: bytes) -> str:
    """The id git gives `data` as a file (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def build_official_deb(tarball: Path, version: str, out: Path, *, arch: str = "amd64") -> Path:
    """`mattermost_VERSION-0_ARCH.deb` (the name upstream's repository serves it under) in `out`."""
    name = f"mattermost_{version}-{REVISION}"
    build_path = out / "build" / name
    shutil.rmtree(build_path, ignore_errors=True)
    opt = build_path / INSTALL_PATH.lstrip("/")
    opt.mkdir(parents=True)
    harness.run_host(["tar", "xf", str(tarball), "--strip-components=1", "-C", str(opt)])
    (opt / "config/config.json").rename(opt / "config/config.defaults.json")
    usr_bin = build_path / "usr/bin"
    usr_bin.mkdir(parents=True)
    for binary in ("mattermost", "platform", "mmctl"):
        (usr_bin / binary).symlink_to(f"{INSTALL_PATH}/bin/{binary}")
    units = build_path / "lib/systemd/system"
    units.mkdir(parents=True)
    shutil.copy2(HERE / "mattermost.service", units / "mattermost.service")
    shutil.copytree(HERE / "DEBIAN", build_path / "DEBIAN")
    control = build_path / "DEBIAN/control"
    text = control.read_text().replace("%%version%%", f"{version}-{REVISION}").replace("%%arch%%", arch)
    control.write_text(text)
    deb = out / f"{name}_{arch}.deb"
    harness.run_host(["dpkg-deb", "--root-owner-group", "--build", str(build_path), str(deb)])
    return deb


OMNIBUS_ENV = "/etc/mattermost/mmomni.mattermost.env"
OMNIBUS_SETTINGS = "/etc/mattermost/mmomni.yml"
OMNIBUS_DATA = "/var/opt/mattermost/data"  # mmomni/model/config.go DATADIRECTORY
OMNIBUS_LOGS = "/var/log/mattermost"  # reconfigure.yml's logsettings_filelocation
OMNIBUS_DEPENDENCIES = "debconf"
MMOMNI_STAND_IN = """#!/bin/sh
echo "mmomni: a stand-in of the test replica; upstream's mmomni $* is not run here" >&2
exit 1
"""


def build_omnibus_deb(version: str, out: Path, *, arch: str = "amd64") -> Path:
    """`mattermost-omnibus_VERSION-0_ARCH.deb`, depending on the replica of `mattermost` VERSION-0."""
    name = f"mattermost-omnibus_{version}-{REVISION}"
    build_path = out / "build" / name
    shutil.rmtree(build_path, ignore_errors=True)
    mmomni = build_path / INSTALL_PATH.lstrip("/") / "mmomni"
    (mmomni / "bin").mkdir(parents=True)
    (mmomni / "bin/mmomni").write_text(MMOMNI_STAND_IN)
    (mmomni / "bin/mmomni").chmod(0o755)
    playbooks = mmomni / "ansible/playbooks"
    playbooks.mkdir(parents=True)
    for template in ("mattermost.env", "mattermost.service"):
        shutil.copy2(HERE / "omnibus" / template, playbooks / template)
    local_bin = build_path / "usr/local/bin"
    local_bin.mkdir(parents=True)
    (local_bin / "mmomni").symlink_to(f"{INSTALL_PATH}/mmomni/bin/mmomni")
    drop_ins = build_path / "etc/systemd/system/mattermost.service.d"
    drop_ins.mkdir(parents=True)
    shutil.copy2(HERE / "omnibus/omnibus-overrides.conf", drop_ins / "omnibus-overrides.conf")
    shutil.copytree(HERE / "omnibus/DEBIAN", build_path / "DEBIAN")
    control = build_path / "DEBIAN/control"
    text = control.read_text().replace("%%dependencies%%", OMNIBUS_DEPENDENCIES)
    text = text.replace("%%version%%", f"{version}-{REVISION}").replace("%%arch%%", arch)
    control.write_text(text)
    deb = out / f"{name}_{arch}.deb"
    harness.run_host(["dpkg-deb", "--root-owner-group", "--build", str(build_path), str(deb)])
    return deb


def omnibus_reconfigure(
    root: harness.Root, dsn: str, *, fqdn: str = "chat.example.com", listen: str | None = None
) -> dict[str, str]:
    """What `mmomni init` and `mmomni reconfigure` write for the server (reconfigure.yml's
    "Mattermost" block; nginx and PostgreSQL left out), with the database `dsn` in place of the
    local PostgreSQL the template names (postgres://USER:PASSWORD@localhost:5432/mattermost...)
    and, with `listen`, that address in place of its fixed ":8065" (tests run side by side).
    Returns the server's environment as systemd reads that file."""
    user, _, rest = dsn.removeprefix("postgres://").partition(":")
    password, _, where = rest.partition("@")
    settings = {
        "db_user": user,
        "db_password": password,
        "fqdn": fqdn,
        "https": False,
        "data_directory": OMNIBUS_DATA,
        "enable_plugin_uploads": False,
        "enable_local_mode": False,
        "logsettings_filelocation": OMNIBUS_LOGS,
    }
    root.run("install", "-d", "-m", "0755", OMNIBUS_SETTINGS.rsplit("/", 1)[0])
    root.write_text(OMNIBUS_SETTINGS, "".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items()))
    root.path(OMNIBUS_SETTINGS).chmod(0o600)
    rendered = jinja2.Template((HERE / "omnibus/mattermost.env").read_text()).render(**settings)
    host_db = where.partition("?")[0]
    rendered = rendered.replace("localhost:5432/mattermost", host_db)
    if listen is not None:
        rendered = rendered.replace('LISTENADDRESS=":8065"', f'LISTENADDRESS="{listen}"')
    root.write_text(OMNIBUS_ENV, rendered)
    root.path(OMNIBUS_ENV).chmod(0o644)
    for path in (INSTALL_PATH, OMNIBUS_DATA, OMNIBUS_LOGS):
        root.run("mkdir", "-p", path)
        root.run("chown", "-R", "mattermost:mattermost", path)
    root.write_text(
        "/lib/systemd/system/mattermost.service", (HERE / "omnibus/mattermost.service").read_text()
    )
    root.run("systemctl", "enable", "mattermost.service")  # offline: WantedBy=postgresql.service
    env = {}
    for line in rendered.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value.strip('"')
    return env
