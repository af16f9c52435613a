"""What a client is given: its apt or dnf source, and the two commands that set it up.

Both formats trust the keyring package's file (keyring.py), so that a new key reaches clients
as an ordinary upgrade; the first trust comes from keys/ on the served tree.
"""

from __future__ import annotations

import shlex

from mmpkg.errors import RepoError
from mmpkg.repo import apt, keyring, keys

SOURCES = "/etc/apt/sources.list.d/mattermost.sources"
REPO_FILE = "/etc/yum.repos.d/mattermost.repo"


def config(url: str, channel: str, fmt: str) -> str:
    url = url.rstrip("/")
    if fmt == "deb":
        return (
            f"Types: deb\nURIs: {url}\nSuites: {channel}\nComponents: {apt.COMPONENT}\n"
            f"Signed-By: {keyring.DEB_KEYRING}\n"
        )
    if fmt == "rpm":
        # The keyring package's file only: dnf fails on a gpgkey it cannot read, so the first
        # install fetches the served key set to that place (commands) rather than naming it here.
        return (
            f"[mattermost-{channel}]\nname=Mattermost {channel}\nbaseurl={url}/rpm/{channel}/$basearch\n"
            f"enabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=file://{keyring.RPM_KEY}\n"
        )
    raise RepoError(f"unknown client format {fmt!r}: use deb or rpm")


def commands(url: str, channel: str, fmt: str) -> list[str]:
    url = url.rstrip("/")
    source = shlex.quote(config(url, channel, fmt))
    if fmt == "deb":
        return [
            f"curl -fsSL {shlex.quote(f'{url}/{keys.KEYRING_GPG}')} -o {keyring.DEB_KEYRING}"
            f" && printf %s {source} > {SOURCES}",
            f"apt-get update && apt-get install {keyring.NAME}",
        ]
    return [
        f"curl -fsSL {shlex.quote(f'{url}/{keys.KEYRING_ASC}')} -o {keyring.RPM_KEY}"
        f" && printf %s {source} > {REPO_FILE}",
        f"dnf install {keyring.NAME}",
    ]
