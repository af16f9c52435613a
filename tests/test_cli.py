"""The command line: --help everywhere, paths on stdout, one clear line and a non-zero exit on error."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mmpkg
import mmpkg.cli.dispatch
import mmpkg.tools.run
from mmpkg.cli import main
from mmpkg.errors import CLOSED_OUTPUT, cannot_make
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release

MAINTAINER = "mmpkg tests <mmpkg-tests@example.com>"


@pytest.mark.parametrize(
    "argv",
    [[], ["inspect"], ["build"], ["repo"], ["repo", "add"], ["repo", "client-config"]],
)
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: mmpkg" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["inspect", "/nonexistent/mattermost-10.5.2-linux-amd64.tar.gz"], 3, "no such file"),
        (
            ["build", "/nonexistent.tar.gz", "--revision", "0"],
            2,
            "--revision: expected a positive whole number",
        ),
        (["build", "/nonexistent.tar.gz", "--formats", "deb,apk"], 2, "--formats: formats are deb, rpm"),
        (["build", "/nonexistent.tar.gz", "--set", "SiteURL=x"], 2, "--set SiteURL: not a setting name"),
        (
            ["build", "/nonexistent.tar.gz", "--config", "/nonexistent.toml"],
            2,
            "cannot read /nonexistent.toml",
        ),
    ],
)
def test_errors_are_one_line(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*argv]) == code
    err = capsys.readouterr().err
    assert err.startswith("mmpkg: error: ") and err.count("\n") == 1, err
    assert message in err


def test_missing_tool_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no dpkg-deb or rpmbuild on PATH the build names the package to install, leaves nothing."""
    tarball = str(write_sample_release(MattermostVersion.parse("10.5.2"), dest=tmp_path))
    monkeypatch.setattr(mmpkg.tools.run, "SAFE_PATH", str(tmp_path / "empty-path"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    out = tmp_path / "out"
    assert main(["build", tarball, "--out", str(out), "--maintainer", MAINTAINER]) == 4
    err = capsys.readouterr().err
    assert "is not installed: install the" in err and err.count("\n") == 1
    assert not out.exists()
    # Before the tarball is read: a large one is not unpacked for nothing.
    assert main(["build", "/nonexistent.tar.gz", "--out", str(out), "--maintainer", MAINTAINER]) == 4


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "x.tar.gz", "--o", "dist"],
        ["build", "x.tar.gz", "--form", "deb"],
        ["fetch", "10.5.2", "--ed", "team"],
        ["--verb", "inspect", "x.tar.gz"],
    ],
)
def test_abbreviations_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A prefix of a flag is a typo, or a flag that a later version makes ambiguous."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmpkg: error: unrecognized arguments") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build"], "the following arguments are required: TARBALL"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["build", "x.tar.gz", "--revision"], "--revision: expected one argument"),
        (["fetch", "10.5.2", "--edition", "pro"], "invalid choice: 'pro'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("mmpkg: error: ") and captured.err.count("\n") == 1, captured.err
    assert message in captured.err and "--help" in captured.err


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([flag])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"mmpkg {mmpkg.__version__}\n"


@pytest.mark.parametrize("flags", [["-q"], ["-v"], ["--quiet"], ["--verbose"]])
def test_verbosity_before_and_after_the_command(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tarball = str(write_sample_release(MattermostVersion.parse("10.5.2"), dest=tmp_path))
    assert main([*flags, "inspect", tarball]) == 0
    assert main(["inspect", tarball, *flags]) == 0
    assert main(["inspect", *flags, tarball]) == 0


def test_no_maintainer_is_refused_before_the_tarball_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DEBFULLNAME", "DEBEMAIL", "NAME", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["build", "/nonexistent.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("mmpkg: error: no maintainer for the packages: give --maintainer")
        and err.count("\n") == 1
    )
    monkeypatch.setenv("DEBEMAIL", "Chat Team <chat-team@example.com>")
    assert main(["build", "/nonexistent.tar.gz"]) == 3
    assert "no such file" in capsys.readouterr().err


def test_a_toml_date_in_set_is_one_line_before_the_tarball_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "build.toml"
    config.write_text("[set]\n'ExperimentalSettings.Since' = 2024-01-31\n")
    assert main(["build", "/nonexistent.tar.gz", "--config", str(config), "--maintainer", MAINTAINER]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"mmpkg: error: {config}: [set] ExperimentalSettings.Since: a TOML date")
        and err.count("\n") == 1
    )


@contextlib.contextmanager
def closed_stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Standard output a pipe whose reader has gone, as `mmpkg ... | head` leaves it: set in the
    test's body, where capsys no longer puts its own back."""
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as stdout, monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", stdout)
        yield


@pytest.mark.parametrize(
    "argv",
    [
        ["repo", "client-config", "http://127.0.0.1:9/mm/"],
        ["repo", "client-config", "http://127.0.0.1:9/mm/", "--json"],
        ["inspect", "{tarball}"],
        ["inspect", "{tarball}", "--json"],
    ],
)
def test_a_closed_stdout_ends_the_command_quietly(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mmpkg ... | head`: the status of a program ended by SIGPIPE, and nothing on stderr."""
    tarball = write_sample_release(MattermostVersion.parse("10.5.2"), dest=tmp_path)
    with closed_stdout(monkeypatch):
        assert main([a.format(tarball=tarball) for a in argv]) == CLOSED_OUTPUT == 141
    assert capsys.readouterr().err == ""


def test_a_closed_stdout_ends_the_process_quietly() -> None:
    """The whole process: no traceback at Python's own flush at exit either."""
    with subprocess.Popen(
        [sys.executable, "-m", "mmpkg", "repo", "client-config", "http://127.0.0.1:9/mm/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        assert proc.wait() == 141
        assert proc.stderr.read() == b""


def test_a_broken_pipe_that_is_not_stdout_is_a_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a closed stdout ends quietly: any other broken pipe keeps its traceback."""

    def broken(args: object) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(mmpkg.cli.dispatch, "handler", lambda args: broken)
    with pytest.raises(BrokenPipeError):
        main(["repo", "client-config", "http://127.0.0.1:9/mm/"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["build", "{tarball}", "--formats", "deb", "--out", "/proc/nope/dist"],
            "--out /proc/nope/dist: cannot create a directory in /proc: No such file or directory; "
            "choose another directory",
        ),
        (
            ["sync", "/proc/nope", "--since", "10.5.0", "--sign-key", "k", "--api-url", "http://127.0.0.1:9"],
            "repository /proc/nope: cannot create /proc/nope: No such file or directory; choose another",
        ),
        (
            ["sync", "{tmp}/repo", "--since", "10.5.0", "--channel-rules", "{tmp}", "--plan"],
            "--channel-rules {tmp}: cannot read it: Is a directory",
        ),
        (["build", "{tarball}", "--config", "{tmp}"], "cannot read {tmp}: Is a directory"),
    ],
)
def test_a_path_that_cannot_be_used_is_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory that cannot be made, or a file that cannot be read: the argument's fault, a
    usage error (2), before anything is read or written."""
    tarball = write_sample_release(MattermostVersion.parse("10.5.2"), dest=tmp_path)
    before = sorted(tmp_path.iterdir())
    values = {"tarball": tarball, "tmp": tmp_path}
    assert main([*(a.format(**values) for a in argv), "--maintainer", MAINTAINER]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmpkg: error: ") and err.count("\n") == 1, err
    assert message.format(**values) in err
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["fetch", "10.5"],
            "argument VERSION: '10.5' is not a Mattermost version: expected X.Y.Z or X.Y.Z-rcN",
        ),
        (["fetch", "10.5.2-beta1"], "argument VERSION: '10.5.2-beta1' is not a Mattermost version"),
        (["build", "10.5"], "10.5: no such tarball, nor a version to fetch (X.Y.Z or X.Y.Z-rcN)"),
        (
            ["releases", "--since", "10"],
            "argument --since: '10' is not a Mattermost version: expected X.Y, X.Y.Z",
        ),
        (["sync", "repo", "--since", "ten"], "argument --since: 'ten' is not a Mattermost version"),
    ],
)
def test_a_bad_version_is_a_usage_error_in_every_command(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A version on the command line that is not one is a bad argument: exit code 2 everywhere,
    before anything is fetched, read or written."""
    assert main([*argv, "--maintainer", MAINTAINER] if argv[0] in ("build", "sync") else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmpkg: error: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["repo", "add", "r", "x.deb", "--keep", "0"],
            "argument --keep: expected a whole number of at least 1",
        ),
        (
            ["repo", "add", "r", "x.deb", "--keep", "two"],
            "argument --keep: expected a whole number of at least 1",
        ),
        (
            ["sync", "r", "--since", "10.5.0", "--keep", "-1"],
            "argument --keep: expected a whole number of at",
        ),
        (["repo", "add", "r", "x.deb", "--channel", "Beta"], "argument --channel: bad channel name 'Beta'"),
        (["repo", "list", "r", "--channel", "Beta"], "argument --channel: bad channel name 'Beta'"),
        (["repo", "remove", "r", "mattermost", "1-1", "--channel", "rc!"], "argument --channel: bad channel"),
        (["repo", "client-config", "http://h/", "--channel", "Beta"], "argument --channel: bad channel name"),
    ],
)
def test_bad_flag_values_are_usage_errors(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--keep and --channel are checked as the arguments are parsed: exit code 2, the flag named
    and where its help is, and nothing made (no repository, no signing key asked for)."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmpkg: error: {message}") and err.count("\n") == 1, err
    assert f"(see 'mmpkg {' '.join(argv[:2]) if argv[0] == 'repo' else argv[0]} --help')" in err
    assert list(tmp_path.iterdir()) == []


def test_quiet_build_prints_nothing_unless_json_asks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-q: errors only. The paths built are the build's report; --json is a result asked for."""
    tarball = str(write_sample_release(MattermostVersion.parse("10.5.2"), dest=tmp_path))
    argv = ["build", tarball, "--formats", "deb", "--out", str(tmp_path / "dist"), "--maintainer", MAINTAINER]
    assert main(["-q", *argv]) == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "dist/mattermost_10.5.2-1_amd64.deb").is_file()
    assert main([*argv, "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "mattermost"


def test_a_directory_that_cannot_be_made_for_want_of_room_is_the_disks_doing() -> None:
    """A full disk stays exit code 6, with the flag to change; any other reason is a usage error."""
    full = cannot_make(OSError(errno.ENOSPC, "No space left on device"), "--out", Path("/x/dist"))
    assert (full.exit_code, str(full)) == (
        6,
        "no space left on /x/dist: free some space there, or choose another --out",
    )
    repo = cannot_make(OSError(errno.EDQUOT, "Disk quota exceeded"), "repository", Path("/x/repo"))
    assert (repo.exit_code, str(repo)) == (6, "no space left on /x/repo: free some space there")
    other = cannot_make(
        NotADirectoryError(errno.ENOTDIR, "Not a directory", "/x/f/d"), "--dest", Path("/x/f/d")
    )
    assert (other.exit_code, str(other)) == (
        2,
        "--dest /x/f/d: cannot create /x/f/d: Not a directory; choose another directory",
    )
