"""`make demo`: the main job on sample releases, then (as root) a real install and upgrade.

1. mmpkg writes two sample releases and builds a .deb and an .rpm from each, into demo/dist.
2. As root, with the system tools present: a throw-away Debian root is booted with systemd, the
   first .deb is installed with apt, the database is configured and the server started; then
   the second .deb is installed over it like `apt upgrade` would, and the server answers as the
   new version with its configuration intact. Nothing outside the throw-away root changes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from scenario import Site, free_port

from mmpkg.cli import main as mmpkg

TOP = Path(__file__).resolve().parent.parent
DEMO = TOP / "demo"
VERSIONS = ("10.5.2", "10.11.1")
MAINTAINER = "mmpkg demo <mmpkg-demo@example.com>"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def build() -> list[Path]:
    shutil.rmtree(DEMO, ignore_errors=True)
    releases = DEMO / "releases"
    debs = []
    for version in VERSIONS:
        say(f"mmpkg sample-release {version} --dest {releases.relative_to(TOP)}")
        mmpkg(["sample-release", version, "--dest", str(releases)])
        tarball = releases / f"mattermost-{version}-linux-amd64.tar.gz"
        say(f"mmpkg inspect {tarball.name}")
        mmpkg(["inspect", str(tarball)])
        say(f"mmpkg build {tarball.name} --out demo/dist --maintainer '{MAINTAINER}'")
        if mmpkg(["build", str(tarball), "--out", str(DEMO / "dist"), "--maintainer", MAINTAINER]) != 0:
            raise SystemExit(1)
        debs.append(DEMO / "dist" / f"mattermost_{version}-1_amd64.deb")
    return debs


def show(output: str) -> None:
    """The package manager's lines that tell the story, without apt's progress noise."""
    keep = ("mattermost:", "Unpacking", "Setting up", "Preparing", "Selecting")
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


def install_and_upgrade(v1: Path, v2: Path) -> None:
    lower = harness.pristine_root()
    with harness.Root(lower, name="demo") as root, harness.Booted(root):
        site = Site(root)
        say(f"apt-get install ./{v1.name}   (in a throw-away Debian 12 root, booted with systemd)")
        show(root.apt_install(v1).stdout)
        port = free_port()
        say("configure: a database, and a port for this demo in /etc/mattermost/mattermost.env")
        site.create_database()
        site.set_env(MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{port}")
        root.run("systemctl", "start", "mattermost")
        url = f"http://127.0.0.1:{port}/api/v4/system/ping"
        print(f"systemctl start mattermost -> {url} answers version {wait_ping(url)}")
        salt = root.read_json("/etc/mattermost/config.json")["FileSettings"]["PublicLinkSalt"]
        print(f"the server generated FileSettings.PublicLinkSalt = {salt}")

        say(f"apt-get install ./{v2.name}   (an upgrade, with the server running)")
        show(root.apt_install(v2).stdout)
        after = root.read_json("/etc/mattermost/config.json")["FileSettings"]["PublicLinkSalt"]
        print(f"the server answers version {wait_ping(url)}; PublicLinkSalt kept: {after == salt}")
        print(f"database schema: {site.schema()}")
        say("mattermost-pkg status")
        print(root.run("mattermost-pkg", "status").stdout)
        if after != salt:
            raise SystemExit("the upgrade lost the server's generated salt")


def main() -> int:
    debs = build()
    say("built:")
    for path in sorted((DEMO / "dist").iterdir()):
        print(f"    {path.relative_to(TOP)}")
    tools = ("mmdebstrap", "systemd-nspawn", "nsenter")
    if os.geteuid() != 0 or any(shutil.which(t) is None for t in tools):
        say("not root (or no mmdebstrap/systemd-nspawn): skipping the install into a throw-away root")
        return 0
    install_and_upgrade(*debs)
    say("done: the throw-away root is gone; the packages stay in demo/dist")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
