"""What a server needs to use a published repository: the apt and dnf client snippets, and the
one shell command that sets a server up with them.

The snippets are static text that needs only the repository's URL, so `mmpkg repo client-config`
works on any machine, not only where the tree lives. Each snippet is a file with the path it
belongs at. The set-up command also carries the repository's keys, read from the URL where the
command is made, so that the server runs it with its shell, coreutils and apt or dnf alone: a
minimal Debian has no curl, and no gpg either.
"""

from __future__ import annotations

import base64
import posixpath
import shlex
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mmpkg.errors import RepoError, UpstreamError
from mmpkg.repo import apt, keyring, keys
from mmpkg.repo.packages import check_channel
from mmpkg.upstream.http import Http, check, shown

# apt's Signed-By and dnf's gpgkey= name the keyring package's files; the set-up command puts the
# tree's copy of the keys at that same path, so installing the keyring package takes the file
# over and every later key change reaches the server as an ordinary upgrade. (A key written into
# the .sources itself, which apt reads from 2.3.10 on, would stay the one key apt trusts for the
# repository however the keyring package changes: the first rotation would cut the server off.)
APT_KEYRING = keyring.DEB_KEYRING
RPM_KEY = keyring.RPM_KEY
# A keyring of a few keys is a few KiB: a larger answer is not the repository's keys.
MAX_KEYS = 1 << 20
# Ends each file in the set-up command; no line of a file can be it (base64, an armoured key,
# and snippets whose only free text, the URL, has no whitespace).
END = "MMPKG_END"
# What a file is written to before it is renamed into place whole.
PARTIAL = ".mmpkg-new"


class ClientFormat(StrEnum):
    APT = "apt"
    DNF = "dnf"


# Per format, the one table of the set-up command's keys and install: the tree's key file it
# carries (byte for byte the keyring package's file: both are keys.combined()'s), where it writes
# it, whether that file is binary (it then travels in base64; else it is armoured text), and
# what installs the keyring package and the server once the files are in place.
@dataclass(frozen=True)
class Setup:
    served: str
    keyring: str
    binary: bool
    install: tuple[str, ...]


SETUP = {
    ClientFormat.APT: Setup(
        served=keys.KEYRING_GPG,
        keyring=APT_KEYRING,
        binary=True,
        # A source apt cannot fetch is only a warning to a plain `apt-get update`, and the
        # install's "Unable to locate package" then hides the cause.
        install=("apt-get update --error-on=any", f"apt-get install -y {keyring.NAME} mattermost"),
    ),
    ClientFormat.DNF: Setup(
        served=keys.KEYRING_ASC,
        keyring=RPM_KEY,
        binary=False,
        install=(f"dnf install -y {keyring.NAME} mattermost",),
    ),
}


@dataclass(frozen=True)
class Snippet:
    path: str  # where it goes on the server
    text: str


def client_config(url: str, channel: str, fmt: ClientFormat, *, unattended: bool = False) -> list[Snippet]:
    """The files a server needs for `channel` at `url`; with `unattended`, also the ones that make
    it take the channel's updates by itself."""
    check_channel(channel)
    url = url.rstrip("/")
    # No whitespace or control character: apt reads a space as the end of the URI, and a line
    # break would end a line of the files and of the set-up command.
    if not url.startswith(("http://", "https://", "file:/")) or not all(
        c.isprintable() and not c.isspace() for c in url
    ):
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
    # be read, so the set-up command writes the served keys to that place first (setup_command).
    # Not the served URL, which dnf could fetch itself: a key dnf has not seen would then be
    # trusted on the word of whoever answers for that URL, not of a keyring package signed by a
    # key the server already trusts.
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
        # What dnf's own automatic.conf says, which this file replaces: dnf-automatic's built-in
        # default is email and stdio, and without a mail server every run would end in an error.
        "\n[emitters]\nemit_via = stdio\n"
    )
    return Snippet("/etc/dnf/automatic.conf", text)


def setup_command(
    url: str, channel: str, fmt: ClientFormat, *, unattended: bool = False, install: bool = True
) -> str:
    """The one shell command, run as root, that makes a server a client of `channel` at `url`:
    the repository's keys as `url` serves them now, written where the keyring package keeps
    them, then client_config()'s files (with `unattended`, its files too), then the keyring
    package and mattermost installed (not with `install` false: the files alone).

    A subshell with `set -e`, so that it stops at the first failure whether it is pasted into a
    root shell (which it leaves open) or run with `sh`. Each file is written beside its place and
    renamed into it, and the source comes last: a failure leaves every file whole, new or as it
    was, and no source without its keys. It needs only the shell, coreutils and apt or dnf."""
    files = client_config(url, channel, fmt, unattended=unattended)
    url = url.rstrip("/")
    setup = SETUP[fmt]
    data, found = served_keys(url, fmt)
    key = ("base64 -d", base64.encodebytes(data).decode()) if setup.binary else ("cat", data.decode())
    # The source last: until it is in place the server does not use the repository.
    writes = [(setup.keyring, *key), *((s.path, "cat", s.text) for s in [*files[1:], files[0]])]
    paths = [shlex.quote(path) for path, _, _ in writes]
    lines = [
        f"# Sets this server up as a client of {url}, channel {channel}. Run it as root, whole:",
        "# it stops at its first failure, and leaves each file it writes complete, new or as it",
        f"# was. The keys it writes are those {url} serves now; `mmpkg repo keys` lists the",
        "# repository's:",
        *(f"#   {fpr}  {uid}" for fpr, uid in found),
        "(",
        "set -e",
        "umask 022",
        f"trap 'rm -f {' '.join(f'{p}{PARTIAL}' for p in paths)}' EXIT",
        f"mkdir -p {' '.join(sorted({posixpath.dirname(p) for p in paths}))}",
    ]
    for path, writer, text in writes:
        partial = f"{shlex.quote(path)}{PARTIAL}"
        lines += [f"{writer} >{partial} <<'{END}'", *text.splitlines(), END]
        lines.append(f"mv -f {partial} {shlex.quote(path)}")
    lines += [*(setup.install if install else ()), ")"]
    return "\n".join(lines) + "\n"


def served_keys(url: str, fmt: ClientFormat) -> tuple[bytes, list[tuple[str, str]]]:
    """The repository's keys for `fmt` as `url` serves them (read in place for a file: URL),
    and each key's fingerprint and first user id."""
    served = f"{url}/{SETUP[fmt].served}"
    what = "the repository's keys"
    if url.startswith("file:"):
        path = Path(unquote(urlsplit(served).path))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RepoError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    else:
        try:
            data = check(Http().get(served, what=what, limit=MAX_KEYS), what).content
        except UpstreamError as exc:
            raise RepoError(str(exc)) from exc
    # A wrong URL may well answer with a page: said here, not left to apt or dnf on the server.
    with tempfile.TemporaryDirectory(prefix="mmpkg-keys-") as tmp:
        (Path(tmp) / "keys").write_bytes(data)
        try:
            found = keys.describe(Path(tmp) / "keys")
        except RepoError:
            found = []
    if not found:
        raise RepoError(f"{shown(served)} holds no OpenPGP public key: is {shown(url)} the repository?")
    if not SETUP[fmt].binary and not data.isascii():
        raise RepoError(
            f"{shown(served)} holds binary keys, not armoured ones: is {shown(url)} the repository?"
        )
    return data, [(fpr, uid) for fpr, uid, _, _ in found]
