"""The man page and the bash completion: up to date, and listing every command and option of the
parser, read from the parser here and not from the generator, so that neither can go stale."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

from mmpkg.cli import manual
from mmpkg.cli.grammar import parser
from tests.support import harness

CHECKOUT = Path(__file__).resolve().parent.parent
MAN_PAGE = CHECKOUT / "docs" / "mmpkg.1"
COMPLETION = CHECKOUT / "docs" / "mmpkg.bash"


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every parser, by its command ("" for the top, "repo add")."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, p: argparse.ArgumentParser) -> None:
        found[name] = p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for word, sub in action.choices.items():
                    walk(f"{name} {word}".strip(), sub)

    walk("", parser())
    return found


def options(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions for s in a.option_strings}


def subcommands(p: argparse.ArgumentParser) -> list[str]:
    return [w for a in p._actions if isinstance(a, argparse._SubParsersAction) for w in a.choices]


def test_the_files_are_up_to_date() -> None:
    assert MAN_PAGE.read_text(encoding="utf-8") == manual.man_page(), "docs/mmpkg.1: run `make readme`"
    assert COMPLETION.read_text(encoding="utf-8") == manual.bash_completion(), (
        "docs/mmpkg.bash: run `make readme`"
    )


def test_the_parser_has_what_the_tests_below_look_for() -> None:
    found = commands()
    assert {"", "build", "repo", "repo add", "repo config", "sync"} <= set(found)
    assert {"--keep", "--dry-run"} <= options(found["repo add"])


def _sections(text: str) -> dict[str, str]:
    """The man page's text under each `.SS "mmpkg COMMAND"`, by command; "" is what comes first."""
    parts = re.split(r'^\.SS "mmpkg (.*)"$', text, flags=re.MULTILINE)
    found = {"": parts[0]}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        found[name.replace("\\-", "-")] = body.split("\n.SH ")[0]
    return found


def test_the_man_page_describes_every_command_and_option() -> None:
    sections = _sections(MAN_PAGE.read_text(encoding="utf-8"))
    found = commands()
    assert set(sections) == set(found)
    common = options(found[""])
    for name, p in found.items():
        body = sections[name].replace("\\-", "-")
        for option in options(p) - (common if name else set()):
            assert f"\\fB{option}\\fR" in body, (name, option)
        for word in subcommands(p):
            assert f"{name} {word}".strip() in sections, (name, word)
        for action in p._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert f"\\fI{action.metavar}\\fR" in body, (name, action.metavar)
    # -q, -v and -h of every command are the top's, described once.
    assert all(
        common >= {"-q", "--quiet", "-v", "--verbose", "-h", "--help"} & options(p) for p in found.values()
    )


def test_the_man_page_is_valid_roff() -> None:
    harness.require("groff", root=False)
    proc = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN_PAGE)], capture_output=True, text=True, check=True
    )
    assert proc.stderr == ""


def _bash(script: str) -> str:
    return subprocess.run(
        ["bash", "-c", f"source {COMPLETION}\n{script}"], capture_output=True, text=True, check=True
    ).stdout


def test_the_completion_knows_every_command_and_option() -> None:
    found = commands()
    listed = _bash(
        'for k in "${!_mmpkg_options[@]}"; do printf "%s=%s\\n" "$k" "${_mmpkg_options[$k]}"; done'
    )
    table = dict(line.split("=", 1) for line in listed.splitlines())
    assert {k.removeprefix("mmpkg").strip(): set(v.split()) for k, v in table.items()} == {
        name: options(p) for name, p in found.items()
    }
    words = _bash(
        'for k in "${!_mmpkg_commands[@]}"; do printf "%s=%s\\n" "$k" "${_mmpkg_commands[$k]}"; done'
    )
    assert {
        k.removeprefix("mmpkg").strip(): v.split() for k, v in (w.split("=", 1) for w in words.splitlines())
    } == {name: subcommands(p) for name, p in found.items() if subcommands(p)}


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["mmpkg", ""], ["inspect", "build", "repo", "releases", "fetch", "sync"]),
        (["mmpkg", "repo", "ad"], ["add", "add-key"]),
        (["mmpkg", "-q", "repo", "add", "--channel", "repo", "--k"], ["--keep"]),  # a value is no command
        (["mmpkg", "build", "x.tar.gz", "--compression", ""], ["zstd", "xz", "gzip"]),
        (["mmpkg", "fetch", "10.5.2", "--edition", "t"], ["team"]),
        (["mmpkg", "repo", "client-config", "URL", "--format", ""], ["apt", "dnf"]),
        (["mmpkg", "sync", "REPO", "--dry"], ["--dry-run"]),
        (["mmpkg", "repo", "config", "REPO", "--channel", ""], []),  # a name: nothing to offer
    ],
)
def test_the_completion_completes(words: list[str], expected: list[str]) -> None:
    quoted = " ".join(f"'{w}'" for w in words)
    out = _bash(
        f'COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _mmpkg; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    assert [w for w in out.splitlines() if w] == expected


def test_the_completion_completes_paths(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist.toml").write_text("")
    script = (
        'COMP_WORDS=(mmpkg build x --{flag} {cur}); COMP_CWORD=4; _mmpkg; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    assert _bash(script.format(flag="out", cur=tmp_path / "di")).split() == [str(tmp_path / "dist")]
    assert sorted(_bash(script.format(flag="config", cur=tmp_path / "di")).split()) == [
        str(tmp_path / "dist"),
        str(tmp_path / "dist.toml"),
    ]
