"""The one way tools run: a missing tool is named, a failure says the tool's own reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmpkg.errors import CommandError, ToolMissingError
from mmpkg.tools import run as tools
from mmpkg.tools.run import cause, run

# What rpmbuild 4.18 prints when %files names what the build root lacks: progress first, the
# errors, then a summary repeating them. The first error is the cause.
RPMBUILD = """\
Building target platforms: x86_64
Building for target x86_64
error: File not found: /w/rpm/root/opt/mattermost
error: Directory not found: /w/rpm/root/etc/mattermost


RPM build errors:
    File not found: /w/rpm/root/opt/mattermost
    Directory not found: /w/rpm/root/etc/mattermost
"""


def test_the_cause_is_the_first_error_not_the_last_line() -> None:
    assert (
        cause(RPMBUILD)
        == "error: File not found: /w/rpm/root/opt/mattermost (and 1 more errors; -v shows them)"
    )
    assert cause(
        "dpkg-deb: building package 'x'\ndpkg-deb: error: cannot write: No space left on device\n"
    ) == ("dpkg-deb: error: cannot write: No space left on device")
    assert cause("something\nwent wrong\n") == "went wrong"
    assert cause("") == "no output"


def test_a_failing_tool_says_why() -> None:
    with pytest.raises(CommandError, match=r"^sh failed with exit code 3: error: the real reason$") as info:
        run(["sh", "-c", "echo progress; echo 'error: the real reason' >&2; echo bye; exit 3"])
    assert "progress" in info.value.output and "bye" in info.value.output


def test_a_missing_tool_is_named() -> None:
    with pytest.raises(ToolMissingError, match="no-such-tool-xyz is not installed"):
        run(["no-such-tool-xyz"])


def _tool(directory: Path, name: str = "mmpkg-test-tool") -> Path:
    """A tool that says where it is and the PATH it runs with."""
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text('#!/bin/sh\necho "$0 $PATH"\n')
    tool.chmod(0o755)
    return tool


def test_a_tool_is_looked_for_in_path_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tool installed outside the system's directories (/opt, ~/.local/bin) is found through
    $PATH, and runs with that PATH, so that what it runs in turn is found there too."""
    _tool(tmp_path / "opt-bin")
    # A tool of the same name in the system's directories comes second.
    monkeypatch.setattr(tools, "SAFE_PATH", f"{tmp_path / 'system'}:/usr/bin:/bin")
    _tool(tmp_path / "system")
    monkeypatch.setenv("PATH", f"{tmp_path / 'opt-bin'}:/usr/bin")
    found, path = run(["mmpkg-test-tool"]).stdout.split()
    assert found == str(tmp_path / "opt-bin" / "mmpkg-test-tool")
    assert path == f"{tmp_path / 'opt-bin'}:/usr/bin:{tmp_path / 'system'}:/bin"
    assert tools.which("mmpkg-test-tool") == str(tmp_path / "opt-bin" / "mmpkg-test-tool")


def test_the_system_directories_are_a_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cron job's PATH may lack /usr/sbin: the system's directories are searched after it."""
    monkeypatch.setattr(tools, "SAFE_PATH", str(tmp_path / "sbin"))
    _tool(tmp_path / "sbin")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert run(["mmpkg-test-tool"]).stdout.split()[1] == f"/usr/bin:/bin:{tmp_path / 'sbin'}"


def test_a_relative_path_entry_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`PATH=:bin` would run whatever the current directory holds: never searched."""
    _tool(tmp_path / "bin")
    _tool(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", ":bin:.")
    with pytest.raises(ToolMissingError, match="mmpkg-test-tool is not installed"):
        run(["mmpkg-test-tool"])


def test_a_path_the_caller_gives_is_the_only_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit PATH in `env` (the test harness's) is where the tool is looked for, alone."""
    _tool(tmp_path / "opt-bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'opt-bin'}:/usr/bin:/bin")
    with pytest.raises(ToolMissingError):
        run(["mmpkg-test-tool"], env={"PATH": "/usr/bin:/bin"})
