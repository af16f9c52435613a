"""`make demo`: the whole job on sample releases, then (as root) a real install, upgrade and rollback.

1. The checkout's sample_release writes two sample releases; mmpkg builds a .deb and an .rpm
   from each, into demo/dist.
2. The first release's packages are published into a signed apt + dnf repository, demo/repo,
   with a signing key made for the demo (demo/gnupg), and the tree is served on loopback.
3. As root, with the system tools present: a throw-away Debian root is booted with systemd and
   set up as a client of the repository with the one command `mmpkg repo client-config
   --commands` prints; apt installs the keyring package and the first release, whose server
   runs against a real PostgreSQL 15 started on loopback for the demo. The second release is
   published, `apt-get upgrade` takes the server to it (the database dumped first, the
   configuration kept), and `mattermost-pkg rollback` brings the first one back, database
   included. Nothing outside the throw-away root, the demo's PostgreSQL and demo/ changes.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: tests.support, sample_release

from mmpkg.cli import main as mmpkg
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release
from tests.support import harness
from tests.support.pgserver import PgDatabase, pg_server
from tests.support.scenario import Site, free_port

TOP = Path(__file__).resolve().parent.parent
DEMO = TOP / "demo"
VERSIONS = ("10.5.2", "10.11.1")
MAINTAINER = "mmpkg demo <mmpkg-demo@example.com>"
CONF = [arg for c in harness.CONF_OLD for arg in ("-o", f"Dpkg::Options::={c}")]
SIGN_KEY = "mmpkg-demo@example.com"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def build() -> list[list[Path]]:
    """Each version's .deb and .rpm."""
    shutil.rmtree(DEMO, ignore_errors=True)
    releases = DEMO / "releases"
    built = []
    for version in VERSIONS:
        say(f"python -m sample_release {version} --dest {releases.relative_to(TOP)}")
        tarball = write_sample_release(MattermostVersion.parse(version), dest=releases)
        say(f"mmpkg inspect {tarball.name}")
        mmpkg(["inspect", str(tarball)])
        say(f"mmpkg build {tarball.name} --out demo/dist --maintainer '{MAINTAINER}'")
        if mmpkg(["build", str(tarball), "--out", str(DEMO / "dist"), "--maintainer", MAINTAINER]) != 0:
            raise SystemExit(1)
        dist = DEMO / "dist"
        built.append(
            [dist / f"mattermost_{version}-1_amd64.deb", dist / f"mattermost-{version}-1.x86_64.rpm"]
        )
    return built


def signing_key() -> None:
    """A key for the demo's repository, in demo/gnupg (a real one would come from a CI secret)."""
    home = DEMO / "gnupg"
    home.mkdir(mode=0o700)
    os.environ["GNUPGHOME"] = str(home)
    params = "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
    params += f"Name-Real: mmpkg demo repository\nName-Email: {SIGN_KEY}\nExpire-Date: 1y\n%commit\n"
    say(f"gpg --gen-key: the repository's signing key, {SIGN_KEY}, in demo/gnupg")
    subprocess.run(["gpg", "--batch", "--quiet", "--gen-key"], input=params, text=True, check=True)


def publish(packages: list[Path]) -> None:
    names = " ".join(p.name for p in packages)
    say(f"mmpkg repo add demo/repo {names} --channel stable --sign-key {SIGN_KEY}")
    if mmpkg(["repo", "add", str(DEMO / "repo"), *map(str, packages), "--sign-key", SIGN_KEY]) != 0:
        raise SystemExit(1)


@contextmanager
def served(tree: Path) -> Iterator[str]:
    """The tree on http://127.0.0.1:PORT: any static web server will do."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tree)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client_setup(root: harness.Root, url: str) -> None:
    """What an administrator does once: run the one command `mmpkg repo client-config URL
    --commands` prints (write the served keys and the source; install the keyring package and
    mattermost)."""
    from mmpkg.repo import commands
    from mmpkg.repo.clients import ClientFormat

    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*")
    command = commands.setup_command(url, channel="stable", fmt=ClientFormat.APT, unattended=False)
    say(f"mmpkg repo client-config {url} --commands; on the server (a throw-away Debian 12 root, booted):")
    print("".join(f"    {line}\n" for line in command.splitlines() if line.startswith("#")), end="")
    output = root.sh(command).stdout
    print(
        "".join(
            f"        {line}\n"
            for line in root.read_text("/etc/apt/sources.list.d/mattermost.sources").splitlines()
        ),
        end="",
    )
    show(output)


def show(output: str) -> None:
    """The package manager's lines that tell the story, without apt's progress noise."""
    keep = ("mattermost:", "Unpacking", "Setting up", "Preparing", "Selecting", "Get:")
    for line in output.splitlines():
        if line.startswith(keep):
            print(f"    {line}")


def ping(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return str(json.loads(reply.read())["version"])


def wait_ping(url: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ping(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def install_and_upgrade(url: str, v2: list[Path]) -> None:
    lower = harness.pristine_root()
    with pg_server() as postgres, harness.Root(lower, name="demo") as root, harness.Booted(root):
        site = Site(root)
        client_setup(root, url)
        port = free_port()
        db = postgres.new_database("demo")
        site.set_env(MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{port}")
        say(
            f"mattermost-pkg configure --datasource postgres://...@127.0.0.1:{postgres.port}/{db.name} "
            f"--site-url http://127.0.0.1:{port}   (PostgreSQL 15; the listen port set in mattermost.env)"
        )
        show(
            root.run(
                "mattermost-pkg",
                "configure",
                "--datasource",
                db.dsn(),
                "--site-url",
                f"http://127.0.0.1:{port}",
            ).stdout
        )
        root.run("systemctl", "start", "mattermost")
        url = f"http://127.0.0.1:{port}/api/v4/system/ping"
        print(f"systemctl start mattermost -> {url} answers version {wait_ping(url)}")
        salt = root.read_json("/etc/mattermost/config.json")["FileSettings"]["PublicLinkSalt"]
        print(f"the server generated FileSettings.PublicLinkSalt = {salt}")
        print(f"database schema: {schema(db)}; posts: {db.query('SELECT message FROM posts')}")

        publish(v2)
        say("apt-get update && apt-get upgrade   (with the server running)")
        root.run("apt-get", "update", "--error-on=any")
        show(root.run("apt-get", "upgrade", "-y", *CONF).stdout)
        after = root.read_json("/etc/mattermost/config.json")["FileSettings"]["PublicLinkSalt"]
        print(f"the server answers version {wait_ping(url)}; PublicLinkSalt kept: {after == salt}")
        print(f"database schema: {schema(db)}; posts: {db.query('SELECT message FROM posts')}")
        if after != salt:
            raise SystemExit("the upgrade lost the server's generated salt")
        say("mattermost-pkg status")
        print(root.run("mattermost-pkg", "status").stdout)

        say(
            "mattermost-pkg rollback   (the database from the upgrade's dump, the configuration, the old package)"
        )
        show(root.run("mattermost-pkg", "rollback", "--yes").stdout)
        print(f"the server answers version {wait_ping(url)}; database schema: {schema(db)}")


def schema(db: PgDatabase) -> str:
    return db.query("SELECT coalesce(max(version), 0) FROM db_migrations")[0]


def main() -> int:
    v1, v2 = build()
    say("built:")
    for path in sorted((DEMO / "dist").iterdir()):
        print(f"    {path.relative_to(TOP)}")
    signing_key()
    publish(v1)
    say("mmpkg repo list demo/repo")
    mmpkg(["repo", "list", str(DEMO / "repo")])
    tools = ("mmdebstrap", "systemd-nspawn", "nsenter")
    if os.geteuid() != 0 or any(shutil.which(t) is None for t in tools):
        publish(v2)
        say("not root (or no mmdebstrap/systemd-nspawn): skipping the install into a throw-away root")
        return 0
    with served(DEMO / "repo") as url:
        install_and_upgrade(url, v2)
    say("mmpkg repo check demo/repo")
    if mmpkg(["repo", "check", str(DEMO / "repo")]) != 0:
        raise SystemExit(1)
    say("done: the throw-away root is gone; the packages stay in demo/dist, the repository in demo/repo")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
