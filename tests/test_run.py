"""The one way tools run: a missing tool is named, a failure says the tool's own reason."""

from __future__ import annotations

import pytest

from mmpkg.errors import CommandError, ToolMissingError
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
