"""Every command, once: its name, its one line of help, and the function that runs it.

The grammar (grammar.py) makes a parser for each row, `mmpkg --help` lists them in this order,
and dispatch.py runs the row the arguments name. A command with subcommands (`repo`) has no
function of its own: its rows are in `subcommands`, and the arguments name one of them in
`<name>_command`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from mmpkg.cli import repo, upstream
from mmpkg.cli.build import run_build, run_inspect

# A command prints what it did and returns; what goes wrong is raised (mmpkg.errors), and
# dispatch.py turns it into the message and the exit code.
Run = Callable[[argparse.Namespace], None]

# The attribute of the parsed arguments that names the command.
TOP_DEST = "command"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Run | None = None
    subcommands: tuple[Command, ...] = ()

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments that names the subcommand chosen."""
        return f"{self.name.replace('-', '_')}_command"


REPO = Command(
    "repo",
    "publish packages in a signed apt + dnf repository, and inspect it",
    subcommands=(
        Command("add", "add packages to a channel (creating the repository on first use)", repo.run_add),
        Command("list", "what each channel holds, newest first", repo.run_list),
        Command(
            "promote",
            "publish a release of one channel in another: the same files, no rebuild",
            repo.run_promote,
        ),
        Command(
            "phase",
            "offer a channel's newest versions to a share of apt servers (Phased-Update-Percentage)",
            repo.run_phase,
        ),
        Command("remove", "withdraw a version from a channel", repo.run_remove),
        Command(
            "check",
            "verify every index, file and signature, of the tree or where it is published",
            repo.run_check,
        ),
        Command(
            "publish",
            "carry the tree to an S3 bucket, a directory or a mirror, readers never seeing half a publish",
            repo.run_publish,
        ),
        Command("export-key", "print the public keys clients trust", repo.run_export_key),
        Command(
            "client-config",
            "print the apt or dnf set-up for a server using the repository",
            repo.run_client_config,
        ),
        Command("config", "each channel's retention (--keep), stored in the repository", repo.run_config),
        Command("keys", "the repository's public keys, the signing one marked", repo.run_keys),
        Command(
            "add-key", "publish the next key in the keyring package, before signing with it", repo.run_add_key
        ),
        Command(
            "retire-key", "drop a key once another signs; its rpms are signed again", repo.run_retire_key
        ),
    ),
)

COMMANDS: tuple[Command, ...] = (
    Command("inspect", "check a release tarball and say what it is", run_inspect),
    Command("build", "build .deb and .rpm packages from a release tarball", run_build),
    REPO,
    Command(
        "releases", "upstream's versions, newest first, from the GitHub releases API", upstream.run_releases
    ),
    Command("fetch", "download a release tarball and verify its signature (cached)", upstream.run_fetch),
    Command("sync", "fetch, verify, build and publish every release a repository lacks", upstream.run_sync),
)


def handler(args: argparse.Namespace) -> Run:
    """The function of the row the parsed arguments name, down to the subcommand."""
    rows, name = COMMANDS, getattr(args, TOP_DEST)
    while True:
        (command,) = (c for c in rows if c.name == name)
        if command.run is not None:
            return command.run
        rows, name = command.subcommands, getattr(args, command.dest)
