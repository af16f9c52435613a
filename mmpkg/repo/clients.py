"""What a server needs to use a published repository: the apt and dnf client snippets.

Static text that needs only the repository's URL, so `mmpkg repo client-config` works on any
machine, not only where the tree lives. Each snippet is a file with the path it belongs at.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import StrEnum

from mmpkg.errors import RepoError
from mmpkg.repo import apt, keyring, keys
from mmpkg.repo.packages import check_channel

# apt's Signed-By and dnf's gpgkey= name the keyring package's files; the first set-up puts the
# tree's copy of the keys at that same path, so installing the keyring package takes the file
# over and every later key change reaches the server as an ordinary upgrade.
APT_KEYRING = keyring.DEB_KEYRING
RPM_KEY = keyring.RPM_KEY


class ClientFormat(StrEnum):
    APT = "apt"
    DNF = "dnf"


@dataclass(frozen=True)
class Snippet:
    path: str  # where it goes on the server
    text: str


def client_config(url: str, channel: str, fmt: ClientFormat, *, unattended: bool = False) -> list[Snippet]:
    """The files a server needs for `channel` at `url`; with `unattended`, also the ones that make
    it take the channel's updates by itself."""
    check_channel(channel)
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://", "file:/")):
        raise RepoError(f"{url!r} is not a repository URL: give http(s)://HOST/PATH or file:///PATH")
    snippets = [_apt_sources(url, channel) if fmt is ClientFormat.APT else _dnf_repo(url, channel)]
    if unattended:
        snippets.append(_unattended_apt(channel) if fmt is ClientFormat.APT else _dnf_automatic())
    return snippets


def _apt_sources(url: str, channel: str) -> Snippet:
    text = (
        f"# Mattermost from {url} ({channel}); the key is the mattermost-archive-keyring package's.\n"
        f"Types: deb\nURIs: {url}\nSuites: {channel}\nComponents: {apt.COMPONENT}\nSigned-By: {APT_KEYRING}\n"
    )
    return Snippet("/etc/apt/sources.list.d/mattermost.sources", text)


def _dnf_repo(url: str, channel: str) -> Snippet:
    # The keyring package's file only: dnf refuses a repository when one of its gpgkey= cannot
    # be read, so the first set-up fetches the served keys to that place (setup_commands).
    text = (
        f"[mattermost-{channel}]\nname=Mattermost ({channel})\nbaseurl={url}/rpm/{channel}/$basearch\n"
        f"enabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=file://{RPM_KEY}\n"
    )
    return Snippet(f"/etc/yum.repos.d/mattermost-{channel}.repo", text)


def _unattended_apt(channel: str) -> Snippet:
    text = (
        "// unattended-upgrades may install Mattermost from this repository by itself. The package's\n"
        "// upgrade guard still refuses an unsupported jump: the run fails, says why, changes nothing.\n"
        "Unattended-Upgrade::Origins-Pattern {\n"
        f'    "origin={apt.ORIGIN},suite={channel}";\n'
        "};\n"
    )
    return Snippet("/etc/apt/apt.conf.d/52mattermost-unattended-upgrades", text)


def _dnf_automatic() -> Snippet:
    text = (
        "# dnf-automatic applies the updates it finds; enable it with\n"
        "#   systemctl enable --now dnf-automatic.timer\n"
        "# The package's upgrade guard still refuses an unsupported jump: that run fails and says why.\n"
        "[commands]\nupgrade_type = default\ndownload_updates = yes\napply_updates = yes\n"
    )
    return Snippet("/etc/dnf/automatic.conf", text)


def setup_commands(url: str, channel: str, fmt: ClientFormat) -> list[str]:
    """The two commands that make a server a client: trust the served keys and write the
    source; then install the keyring package (which owns the key file from then on)."""
    [source] = client_config(url, channel, fmt)
    url = url.rstrip("/")
    write = f"printf %s {shlex.quote(source.text)} > {source.path}"
    if fmt is ClientFormat.APT:
        return [
            f"curl -fsSL {shlex.quote(f'{url}/{keys.KEYRING_GPG}')} -o {APT_KEYRING} && {write}",
            f"apt-get update && apt-get install -y {keyring.NAME} mattermost",
        ]
    return [
        f"curl -fsSL {shlex.quote(f'{url}/{keys.KEYRING_ASC}')} -o {RPM_KEY} && {write}",
        f"dnf install -y {keyring.NAME} mattermost",
    ]
