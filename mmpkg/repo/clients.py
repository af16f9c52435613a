"""What a server needs to use a published repository: the apt and dnf client snippets.

Static text that needs only the repository's URL, so `mmpkg repo client-config` works on any
machine, not only where the tree lives. Each snippet is a file with the path it belongs at.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mmpkg.errors import RepoError

# Where the keyring package puts the repository's keys (apt's Signed-By, dnf's gpgkey=), and
# where the bootstrap copy fetched from the tree goes: the same path, so installing the keyring
# package takes the file over and later key changes reach the client by `apt upgrade`.
APT_KEYRING = "/usr/share/keyrings/mattermost-archive-keyring.gpg"
RPM_KEY = "/etc/pki/rpm-gpg/RPM-GPG-KEY-mattermost"
# The same keys as served from the tree, for the first download.
TREE_KEYRING_GPG = "keys/archive-keyring.gpg"
TREE_KEYRING_ASC = "keys/archive-keyring.asc"
# The Release file's Origin and Label, which unattended-upgrades matches on.
ORIGIN = "mmpkg"


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
    from mmpkg.repo.repository import check_channel

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
        f"Types: deb\nURIs: {url}\nSuites: {channel}\nComponents: main\nSigned-By: {APT_KEYRING}\n"
    )
    return Snippet("/etc/apt/sources.list.d/mattermost.sources", text)


def _dnf_repo(url: str, channel: str) -> Snippet:
    # The first key is the keyring package's file, the second the tree's copy for the first
    # install: dnf tries them in order and imports what it needs.
    text = (
        f"[mattermost-{channel}]\nname=Mattermost ({channel})\nbaseurl={url}/rpm/{channel}/$basearch\n"
        f"enabled=1\ngpgcheck=1\nrepo_gpgcheck=1\n"
        f"gpgkey=file://{RPM_KEY}\n       {url}/{TREE_KEYRING_ASC}\n"
    )
    return Snippet(f"/etc/yum.repos.d/mattermost-{channel}.repo", text)


def _unattended_apt(channel: str) -> Snippet:
    text = (
        "// unattended-upgrades may install Mattermost from this repository by itself. The package's\n"
        "// upgrade guard still refuses an unsupported jump: the run fails, says why, changes nothing.\n"
        "Unattended-Upgrade::Origins-Pattern {\n"
        f'    "origin={ORIGIN},suite={channel}";\n'
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
