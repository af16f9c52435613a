"""The command line's grammar. `mmpkg build`'s options come from the one table, mmpkg/build/options.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from mmpkg import __version__
from mmpkg.build.options import BY_NAME, OPTIONS, Kind, Option
from mmpkg.cli.commands import COMMANDS, REPO, TOP_DEST
from mmpkg.errors import MmpkgError, UsageError
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo.clients import ClientFormat
from mmpkg.repo.packages import check_channel
from mmpkg.repo.publish import KEEP_GENERATIONS
from mmpkg.repo.remote.stores import JOBS
from mmpkg.repo.retention import KEEP
from mmpkg.repo.rings import parse_percentage, parse_span
from mmpkg.upstream import API_URL, RELEASES_URL

T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """Abbreviations off (a prefix is a typo, or ambiguous once a flag is added), and a mistake is
    a UsageError, which the CLI prints as its one line, rather than argparse's usage and exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _argument_type(check: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse `type=` from a check of the library's, so that a bad value is refused while
    the arguments are parsed, as the usage error it is (exit code 2, the flag named), in the
    library's own words and before anything is read or written."""

    def convert(text: str) -> T:
        try:
            return check(text)
        except MmpkgError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__  # what argparse names in its fallback message
    return convert


def tree_or_url(text: str) -> Path | str:
    """A repository: its URL (http:// or https://), as given, else the path of its tree."""
    return text if text.lower().startswith(("http://", "https://")) else Path(text)


# The argument types whose value may be a file or a directory: the completion offers paths.
PATH_TYPES: tuple[object, ...] = (Path, tree_or_url)


def _keep(text: str) -> int:
    try:
        keep = int(text)
    except ValueError:
        keep = 0
    if keep < 1:
        raise UsageError(
            f"expected a whole number of at least 1 (a channel keeps its newest version), not {text!r}"
        )
    return keep


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise UsageError(f"{number}: give 1 or more")
    return number


def _channel_name(text: str) -> str:
    check_channel(text)
    return text


# A release, for `fetch VERSION`; a lower bound (`--since`), which may also be a line, X.Y.
RELEASE = _argument_type(MattermostVersion.parse)
MINIMUM = _argument_type(MattermostVersion.parse_minimum)
KEEP_COUNT = _argument_type(_keep)
CHANNEL_NAME = _argument_type(_channel_name)
POSITIVE = _argument_type(_positive)
DURATION = _argument_type(parse_span)
PERCENTAGE = _argument_type(parse_percentage)


def _verbosity(parser: argparse.ArgumentParser, *, default: object) -> None:
    """-q and -v, before the command or after it (the later one wins)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=default, help="errors only"
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        default=default,
        help="also each tool run and its output",
    )


def add_option(parser: argparse.ArgumentParser, option: Option) -> None:
    text = f"{option.help} (default: {option.default})"
    if option.kind is Kind.SWITCH:
        # const True, default None: "not given" lets the file's value stand.
        parser.add_argument(option.flag, dest=option.name, action="store_const", const=True, help=text)
        return
    action = "append" if option.kind is Kind.REPEAT else "store"
    parser.add_argument(option.flag, dest=option.name, metavar=option.metavar, action=action, help=text)


def parser() -> Parser:
    return parsers()[0]


def parsers(width: int | None = None) -> tuple[Parser, dict[str, Parser]]:
    """The top parser and one per command; `width` fixes the help's width (docs/building.md's)."""
    formatter = partial(argparse.HelpFormatter, width=width) if width else argparse.HelpFormatter
    top = Parser(
        prog="mmpkg",
        description="Turn Mattermost server release tarballs into upgrade-safe .deb and .rpm packages.",
        formatter_class=formatter,
    )
    top.add_argument("-V", "--version", action="version", version=f"mmpkg {__version__}")
    _verbosity(top, default=0)
    sub = top.add_subparsers(dest=TOP_DEST, required=True, metavar="COMMAND", parser_class=Parser)
    commands = {c.name: sub.add_parser(c.name, help=c.help, formatter_class=formatter) for c in COMMANDS}
    for command in commands.values():
        _verbosity(command, default=argparse.SUPPRESS)

    inspect = commands["inspect"]
    inspect.add_argument("tarball", type=Path, metavar="TARBALL")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    add_option(inspect, BY_NAME["revision"])

    build = commands["build"]
    build.add_argument(
        "tarball",
        type=Path,
        metavar="TARBALL|VERSION",
        help="a tarball, or a version to fetch and verify first",
    )
    build.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML file with the options below as keys (flags win)"
    )
    build.add_argument(
        "--json", action="store_true", help="print what was built as JSON (format, name, version, ...)"
    )
    for option in OPTIONS:
        add_option(build, option)
    upstream_arguments(commands)
    commands |= repo_commands(commands.pop(REPO.name), formatter)
    return top, commands


def upstream_arguments(commands: dict[str, Parser]) -> None:
    """`releases`, `fetch`, and the fetch flags of `build VERSION`."""
    releases = commands["releases"]
    releases.add_argument(
        "--since", type=MINIMUM, metavar="VERSION", help="only this version and later (X.Y: X.Y.0)"
    )
    releases.add_argument("--include-rc", action="store_true", help="also release candidates")
    releases.add_argument("--json", action="store_true", help="print JSON")
    _api_url(releases)
    fetch = commands["fetch"]
    fetch.add_argument("version", type=RELEASE, metavar="VERSION", help="X.Y.Z or X.Y.Z-rcN")
    fetch.add_argument("--json", action="store_true", help="print what was fetched as JSON")
    for parser in (fetch, commands["build"]):
        _fetch_flags(parser, dest=parser is fetch)
    sync = commands["sync"]
    sync.add_argument(
        "repo",
        type=tree_or_url,
        metavar="REPO",
        help="the repository tree; with --plan, also its URL (http:// or https://), whose indices "
        "alone are read",
    )
    sync.add_argument(
        "--since", type=MINIMUM, metavar="VERSION", required=True, help="this version and later (X.Y: X.Y.0)"
    )
    sync.add_argument(
        "--editions", default="enterprise", metavar="enterprise,team", help="(default: enterprise)"
    )
    sync.add_argument("--arches", default="amd64", metavar="amd64,arm64", help="(default: amd64)")
    sync.add_argument(
        "--channel-rules",
        type=Path,
        metavar="FILE",
        help="TOML: which releases each channel takes (default: finals to stable, ESR lines also "
        "to esr, release candidates to rc with --include-rc)",
    )
    sync.add_argument("--include-rc", action="store_true", help="also release candidates")
    _keep_flag(sync, "as for repo add, in each channel a release goes to")
    add_option(sync, BY_NAME["maintainer"])
    _sign_key(sync)
    sync.add_argument(
        "--notify",
        metavar="URL",
        help="Mattermost incoming webhook: one message a run that changed something",
    )
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")
    publish_arguments(sync, flag=True)
    sync.add_argument(
        "--plan",
        "--dry-run",
        action="store_true",
        help="only print what the repository lacks and what retention would withdraw once it is "
        "published (with --json: each item's channels, the release before it and its prunes), "
        "and change nothing",
    )
    _api_url(sync)
    _fetch_flags(sync, dest=False, single=False)


def _api_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url",
        metavar="URL",
        default=API_URL,
        help=f"GitHub API; $GITHUB_TOKEN is sent when set (default: {API_URL})",
    )


def _fetch_flags(parser: argparse.ArgumentParser, *, dest: bool, single: bool = True) -> None:
    if single:
        parser.add_argument("--edition", choices=[e.value for e in Edition], default=Edition.ENTERPRISE.value)
        parser.add_argument("--arch", choices=[a.value for a in Arch], default=Arch.AMD64.value)
    if dest:
        parser.add_argument(
            "--dest", type=Path, default=Path("."), metavar="DIR", help="where to put it (default: .)"
        )
    parser.add_argument(
        "--base-url", metavar="URL", default=RELEASES_URL, help=f"release downloads (default: {RELEASES_URL})"
    )
    parser.add_argument(
        "--keyring",
        type=Path,
        metavar="FILE",
        help="trust the keys in FILE (default: upstream's key, checked against mmpkg's fingerprint table)",
    )
    if single:
        parser.add_argument("--sha256", metavar="HEX", help="also require this checksum")
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="download cache (default: $MMPKG_CACHE, else $XDG_CACHE_HOME/mmpkg or ~/.cache/mmpkg)",
    )


def repo_commands(repo: argparse.ArgumentParser, formatter: Any) -> dict[str, Parser]:
    """`mmpkg repo COMMAND`: one parser per command, named "repo COMMAND"."""
    sub = repo.add_subparsers(dest=REPO.dest, required=True, metavar="COMMAND", parser_class=Parser)
    commands = {
        f"repo {c.name}": sub.add_parser(c.name, help=c.help, formatter_class=formatter)
        for c in REPO.subcommands
    }
    for command in commands.values():
        _verbosity(command, default=argparse.SUPPRESS)
    for name in ("add", "list", "remove", "publish", "export-key", "keys", "add-key", "retire-key", "config"):
        commands[f"repo {name}"].add_argument("repo", type=Path, metavar="REPO", help="the tree")
    promote = commands["repo promote"]
    promote.add_argument("repo", type=Path, metavar="REPO", help="the tree")
    promote.add_argument(
        "version", metavar="VERSION", help="X.Y.Z (its newest revision in --from), or one revision X.Y.Z-N"
    )
    promote.add_argument(
        "--from", dest="source", type=CHANNEL_NAME, required=True, metavar="NAME", help="the ring it is in"
    )
    promote.add_argument(
        "--to", dest="target", type=CHANNEL_NAME, required=True, metavar="NAME", help="the ring it goes to"
    )
    promote.add_argument(
        "--after",
        type=DURATION,
        metavar="DURATION",
        help="refuse unless it has been in --from this long (7d, 36h, 1d12h): no promotion before its soak",
    )
    _keep_flag(promote, "as for repo add, in --to")
    promote.add_argument(
        "--phased",
        type=PERCENTAGE,
        metavar="PERCENT",
        help="also set --to's phased percentage (as repo phase does): apt servers are offered the new "
        "version PERCENT at a time",
    )
    promote.add_argument(
        "--dry-run",
        action="store_true",
        help="only print what would be promoted, and change nothing (no signing key needed)",
    )
    _sign_key(promote)
    phase = commands["repo phase"]
    phase.add_argument("repo", type=Path, metavar="REPO", help="the tree")
    phase.add_argument(
        "percentage",
        type=PERCENTAGE,
        metavar="PERCENT",
        help="0 to 100: the share of apt servers (by machine-id) offered the channel's newest versions; "
        "100 ends the phasing",
    )
    _channel(phase, default="stable")
    _sign_key(phase)
    check = commands["repo check"]
    check.add_argument(
        "repo",
        metavar="REPO",
        help="the tree; or where it was published (as for repo publish DEST), read as clients read it",
    )
    check.add_argument(
        "--deep",
        action="store_true",
        help="at a destination, also read every package through and compare its SHA-256 (default: "
        "its size, and the SHA-256 recorded when it was sent)",
    )
    _endpoint(check)
    publish = commands["repo publish"]
    publish_arguments(publish)
    channel = partial(_channel, default="stable")
    add = commands["repo add"]
    add.add_argument("packages", type=Path, nargs="+", metavar="PACKAGE", help=".deb or .rpm files")
    channel(add)
    _keep_flag(add, "newest versions kept per package and architecture, besides upstream's required stops")
    add.add_argument(
        "--dry-run",
        action="store_true",
        help="only print what would be added and what retention would withdraw, and change nothing "
        "(no signing key needed)",
    )
    _sign_key(add)
    remove = commands["repo remove"]
    remove.add_argument("name", metavar="PACKAGE_NAME")
    remove.add_argument("version", metavar="VERSION", help="as listed, for example 10.11.1-1")
    channel(remove)
    _sign_key(remove)
    _channel(commands["repo list"], default=None)
    config = commands["repo config"]
    _channel(config, default=None)
    config.add_argument(
        "--keep",
        type=KEEP_COUNT,
        metavar="N",
        help="store N as the channel's --keep (with --channel): later adds and syncs without --keep "
        "keep N, and the next add prunes to it",
    )
    add_key = commands["repo add-key"]
    add_key.add_argument(
        "key", metavar="KEY", help="a key in $GNUPGHOME, or a file with one armoured public key"
    )
    _sign_key(add_key)
    retire = commands["repo retire-key"]
    retire.add_argument("key", metavar="KEY", help="fingerprint, key id or user id of a current key")
    _sign_key(retire)
    client = commands["repo client-config"]
    client.add_argument(
        "url", metavar="URL", help="where the tree is served, for example https://pkgs.example.com/mattermost"
    )
    channel(client)
    client.add_argument(
        "--format",
        choices=[f.value for f in ClientFormat],
        default=ClientFormat.APT.value,
        help="(default: apt)",
    )
    client.add_argument(
        "--unattended",
        action="store_true",
        help="also the set-up for unattended-upgrades or dnf-automatic to apply updates by themselves",
    )
    client.add_argument(
        "--commands",
        action="store_true",
        help="print instead the one shell command that sets a server up with nothing but its shell and "
        "apt or dnf: write the served keys and the files, then install the keyring package and mattermost",
    )
    for name in (
        "add",
        "list",
        "remove",
        "check",
        "publish",
        "promote",
        "client-config",
        "keys",
        "add-key",
        "retire-key",
        "config",
    ):
        commands[f"repo {name}"].add_argument("--json", action="store_true", help="print JSON")
    return commands


def publish_arguments(parser: argparse.ArgumentParser, *, flag: bool = False) -> None:
    """`repo publish`'s DEST and its flags; `sync --publish DEST` takes the same."""
    dest_help = (
        "s3://BUCKET/PREFIX (any S3 API: endpoint, region and credentials as every AWS tool reads "
        "them), a directory, HOST:PATH or rsync://HOST/MODULE/PATH"
    )
    if flag:
        parser.add_argument(
            "--publish", metavar="DEST", help=f"after a sync that changed the tree, publish it to {dest_help}"
        )
    else:
        parser.add_argument("dest", metavar="DEST", help=dest_help)
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="only print what would be sent and deleted, and change nothing",
        )
    parser.add_argument(
        "--keep-generations",
        type=POSITIVE,
        default=KEEP_GENERATIONS,
        metavar="N",
        help="publishes an object the tree no longer holds stays at DEST, for clients of earlier "
        f"indices (default: {KEEP_GENERATIONS})",
    )
    parser.add_argument(
        "--jobs",
        type=POSITIVE,
        default=JOBS,
        metavar="N",
        help=f"objects sent at once to S3 (default: {JOBS})",
    )
    _endpoint(parser)


def _endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="the S3 API's URL, for stores other than AWS (default: $AWS_ENDPOINT_URL_S3, "
        "$AWS_ENDPOINT_URL, the profile's)",
    )


def _channel(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    text = f"(default: {default})" if default else "(default: every channel)"
    parser.add_argument(
        "--channel",
        type=CHANNEL_NAME,
        default=default,
        metavar="NAME",
        help=f"apt suite and dnf repository {text}",
    )


def _keep_flag(parser: argparse.ArgumentParser, text: str) -> None:
    """--keep of the commands that prune: given, it is also stored for the channel."""
    parser.add_argument(
        "--keep",
        type=KEEP_COUNT,
        metavar="N",
        help=f"{text}; stored for the channel, for later commands without --keep (default: the "
        f"channel's stored --keep, else {KEEP})",
    )


def _sign_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sign-key",
        metavar="KEY",
        help="gpg key (fingerprint or e-mail) in $GNUPGHOME to sign with (default: $MMPKG_SIGN_KEY, "
        "else the key the repository signed with last)",
    )
