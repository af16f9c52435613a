"""The man page, mmpkg(1) in roff, and the bash completion, both made from the parsers.

Each is a function of the grammar (grammar.py), the command table (commands.py) and the exit
codes (mmpkg/errors.py) alone, with no date and no version in it, so that the files kept in the
checkout (docs/mmpkg.1, docs/mmpkg.bash, which the wheel installs as share/man/man1/mmpkg.1 and
share/bash-completion/completions/mmpkg) are rewritten by `make readme` like every other
generated part, and tests/test_manual.py fails on a stale one. A small generator rather than
argparse-manpage or shtab: the parsers are walked the same way either would walk them, the
output has no date to go stale, and nothing is added to what `make readme` needs.

    python -m mmpkg.cli.manual MAN_PAGE COMPLETION
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from mmpkg.cli.grammar import PATH_TYPES, parsers
from mmpkg.errors import EXIT_CODES

# The width of the synopsis lines, as a terminal shows the page.
WIDTH = 78


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]  # -q, --quiet
    metavar: str  # what follows it, "" for a switch
    help: str
    choices: tuple[str, ...]  # the values it takes, when argparse knows them
    path: bool  # its value is a file or directory


@dataclass(frozen=True)
class Page:
    """One command: `mmpkg repo add`, or the top, `mmpkg`."""

    name: str  # "" for the top, "repo add"
    help: str
    usage: str
    options: tuple[Option, ...]
    positionals: tuple[Option, ...]
    subcommands: tuple[str, ...]  # the words that may follow it, for `mmpkg` and `mmpkg repo`


def pages() -> list[Page]:
    """The top, then every command in the order of `mmpkg --help`, `repo` before its own."""
    top, _ = parsers(width=WIDTH)
    return _pages("", top, top.description or "")


def _pages(name: str, parser: argparse.ArgumentParser, help: str) -> list[Page]:
    """`parser`'s page and its commands', walking the parsers argparse holds (argparse-manpage and
    shtab read the same private fields: argparse has no public way to list them)."""
    options: list[Option] = []
    positionals: list[Option] = []
    below: list[Page] = []
    subcommands: tuple[str, ...] = ()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            subcommands = tuple(action.choices)
            for word, sub in action.choices.items():
                below += _pages(f"{name} {word}".strip(), sub, helps[word])
        elif action.help != argparse.SUPPRESS:
            (options if action.option_strings else positionals).append(_option(action))
    # argparse indents the usage's later lines under its "usage: ", which the page leaves out.
    first, *rest = parser.format_usage().removeprefix("usage: ").rstrip().splitlines()
    usage = "\n".join([first, *(line.removeprefix(" " * len("usage: ")) for line in rest)])
    page = Page(name, help, usage, tuple(options), tuple(positionals), subcommands)
    return [page, *below]


def _option(action: argparse.Action) -> Option:
    takes_value = action.nargs != 0
    metavar = ""
    if takes_value:
        if isinstance(action.metavar, str):
            metavar = action.metavar
        elif action.choices is not None:
            metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
        else:
            metavar = action.dest.upper()
    choices = tuple(str(c) for c in action.choices) if action.choices is not None and takes_value else ()
    if not choices and "|" in metavar and " " not in metavar:
        choices = tuple(metavar.split("|"))  # --compression zstd|xz|gzip, checked later
    return Option(
        names=tuple(action.option_strings) or (metavar,),
        metavar=metavar,
        help=(action.help or "").replace("%%", "%"),
        choices=choices,
        path=action.type in PATH_TYPES or metavar in ("FILE", "DIR"),
    )


# -- the man page -------------------------------------------------------------------------------


def _roff(text: str) -> str:
    """Text as roff prints it: a backslash escaped, and a line that would start with a control
    character (`.`, `'`) protected."""
    lines = text.replace("\\", "\\e").splitlines()
    return "\n".join(f"\\&{line}" if line.startswith((".", "'")) else line for line in lines)


def _code(text: str) -> str:
    """A command-line spelling: hyphens as minus signs, which is what the user types."""
    return _roff(text).replace("-", "\\-")


def man_page() -> str:
    top, *commands = pages()
    out = [
        '.TH MMPKG 1 "" "mmpkg" "User Commands"',
        ".SH NAME",
        "mmpkg \\- turn Mattermost server release tarballs into upgrade\\-safe .deb and .rpm packages, "
        "and publish them in a signed apt and dnf repository",
        ".SH SYNOPSIS",
        ".nf",
        _code(top.usage),
        ".fi",
        ".SH DESCRIPTION",
        _roff(top.help),
        "Each command is described below, with its options; every command also takes",
        "\\fB\\-q\\fR, \\fB\\-v\\fR and \\fB\\-h\\fR before or after its name.",
        "A flag must be spelled out in full.",
        ".SH OPTIONS",
        *_options(top.options),
        ".SH COMMANDS",
    ]
    for page in commands:
        out += [f'.SS "mmpkg {_code(page.name)}"', _roff(page.help), ".PP", ".nf", _code(page.usage), ".fi"]
        if page.subcommands:
            words = ", ".join(f"\\fB{_code(w)}\\fR" for w in page.subcommands)
            out += [".PP", f"Its commands: {words}."]
        # -h, -q and -v are the top's, described once under OPTIONS.
        common = {n for o in top.options for n in o.names}
        own = tuple(o for o in page.options if not common.issuperset(o.names))
        out += _options(page.positionals + own)
    out += [".SH EXIT STATUS", *_exit_codes()]
    out += [
        ".SH SEE ALSO",
        "The documents of mmpkg's source: docs/building.md (every option, what a build guarantees),",
        "docs/hosting-a-repository.md, docs/automating-releases.md and docs/administering.md.",
        ".BR dpkg\\-deb (1),",
        ".BR rpmbuild (8),",
        ".BR gpg (1)",
    ]
    return "\n".join(out) + "\n"


def _options(options: tuple[Option, ...]) -> list[str]:
    out = []
    for option in options:
        names = ", ".join(f"\\fB{_code(n)}\\fR" for n in option.names if n != option.metavar)
        value = f"\\fI{_code(option.metavar)}\\fR" if option.metavar else ""
        head = f"{names} {value}".strip() if names else value
        out += [".TP", head, _roff(option.help) or "\\&"]
    return out


def _exit_codes() -> list[str]:
    out = []
    for code, meaning in EXIT_CODES:
        out += [".TP", f"\\fB{code}\\fR", _roff(meaning.replace("`", ""))]
    return out


# -- the bash completion ------------------------------------------------------------------------

COMPLETION = """\
# bash completion for mmpkg(1), generated from its parser by `make readme` (mmpkg/cli/manual.py).
# shellcheck shell=bash

# The words each command takes ("mmpkg repo add"): its options, and its commands (mmpkg, mmpkg repo).
declare -gA _mmpkg_options=(
{options}
)
declare -gA _mmpkg_commands=(
{commands}
)
# What follows an option that takes a value: its choices, "file" or "dir" for a path, "" for text.
declare -gA _mmpkg_values=(
{values}
)
# Commands whose arguments are paths (TARBALL, PACKAGE, REPO, ...).
declare -gA _mmpkg_paths=(
{paths}
)

_mmpkg() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local command=mmpkg word i
    COMPREPLY=()
    # The command so far: the words that name one, less the values that options took.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        if [[ -v "_mmpkg_values[$command $word]" ]]; then
            ((i++))
        elif [[ $word != -* && " ${{_mmpkg_commands[$command]:-}} " == *" $word "* ]]; then
            command="$command $word"
        fi
    done
    if [[ -v "_mmpkg_values[$command $prev]" ]]; then
        case ${{_mmpkg_values[$command $prev]}} in
            file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
            dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
            "") ;;
            *) mapfile -t COMPREPLY < <(compgen -W "${{_mmpkg_values[$command $prev]}}" -- "$cur") ;;
        esac
        return 0
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${{_mmpkg_options[$command]:-}}" -- "$cur")
    elif [[ -n ${{_mmpkg_commands[$command]:-}} ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${{_mmpkg_commands[$command]}}" -- "$cur")
    elif [[ -v "_mmpkg_paths[$command]" ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
}}

complete -F _mmpkg mmpkg
"""


def bash_completion() -> str:
    options, commands, values, paths = [], [], [], []
    for page in pages():
        key = shlex.quote(_key(page.name))
        words = " ".join(n for o in page.options for n in o.names)
        options.append(f"    [{key}]={shlex.quote(words)}")
        if page.subcommands:
            commands.append(f"    [{key}]={shlex.quote(' '.join(page.subcommands))}")
        for option in page.options:
            if not option.metavar:
                continue
            kind = " ".join(option.choices) or (_path_kind(option) if option.path else "")
            for name in option.names:
                values.append(f"    [{shlex.quote(_key(page.name, name))}]={shlex.quote(kind)}")
        if any(p.path for p in page.positionals):
            paths.append(f"    [{key}]=1")
    return COMPLETION.format(
        options="\n".join(options),
        commands="\n".join(commands),
        values="\n".join(values),
        paths="\n".join(paths),
    )


def _key(*words: str) -> str:
    """A command's key in the script's tables: "mmpkg", "mmpkg repo add" (bash allows no empty key)."""
    return " ".join(["mmpkg", *(w for w in words if w)])


def _path_kind(option: Option) -> str:
    return "dir" if option.metavar == "DIR" else "file"


def main(argv: list[str]) -> int:
    """Write the man page to the first path, the bash completion to the second."""
    if len(argv) != 2:
        print("usage: python -m mmpkg.cli.manual MAN_PAGE COMPLETION", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(man_page(), encoding="utf-8")
    Path(argv[1]).write_text(bash_completion(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
