"""mmpkg's own release (mmpkg/distfiles.py, .github/workflows/release.yml): a copy of this
checkout is released as docs/development.md says, then the release job's blocks build it again
from another copy, elsewhere and later, and must find exactly the files the templates pin."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmpkg import distfiles
from tests.support import harness

TOP = Path(__file__).resolve().parent.parent
WORKFLOW = TOP / ".github/workflows/release.yml"
VERSION = "9.9.9"


def _copy(dest: Path) -> Path:
    """This checkout's files as git would commit them (uncommitted changes included), committed
    in a repository of their own."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TOP, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        src = TOP / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    _git(dest, "init", "-q")
    _commit(dest, "the checkout")
    return dest


def _git(where: Path, *args: str) -> str:
    env = {**harness.host_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=where, env=env, capture_output=True, text=True, check=True
    ).stdout


def _commit(where: Path, message: str) -> None:
    _git(where, "add", "-A")
    _git(where, "commit", "-q", "-m", message)


def _prepare(source: Path) -> str:
    """What a maintainer does before `make dist`: the version, and its dated CHANGELOG section.
    Returns the section's text."""
    init = source / "mmpkg/__init__.py"
    init.write_text(
        re.sub(r'^__version__ = ".*"$', f'__version__ = "{VERSION}"', init.read_text(), flags=re.M)
    )
    changelog = source / "CHANGELOG.md"
    text = changelog.read_text()
    body = text.split("## [Unreleased]\n", 1)[1].split("\n## [", 1)[0]
    changelog.write_text(
        text.replace("## [Unreleased]\n", f"## [Unreleased]\n\n## [{VERSION}] - 2026-12-07\n", 1)
    )
    return body.strip() + "\n"


def _workflow_steps() -> list[tuple[str, str, dict[str, str]]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    return [
        (s.get("name", ""), s["run"], s.get("env", {})) for s in doc["jobs"]["release"]["steps"] if "run" in s
    ]


def _build_step(where: Path, tag: str) -> subprocess.CompletedProcess[str]:
    """The release job's build step, run in the tag's checkout `where`."""
    ((_, script, _),) = [s for s in _workflow_steps() if "distfiles" in s[1]]
    env = {**harness.host_env(), "TAG": tag, "PATH": f"{Path(sys.executable).parent}:{harness.SAFE_PATH}"}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=where, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_release_job_is_valid_for_github_and_shellcheck() -> None:
    harness.run_host([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                      "vendor.github-workflows", WORKFLOW])  # fmt: skip
    harness.require("shellcheck", root=False)
    for name, script, _ in _workflow_steps():
        out = harness.run_host(["shellcheck", "-s", "bash", "-"], input=script, check=False)
        assert out.returncode == 0, f"{name}:\n{out.stdout}"
    # The release publishes the files the templates pin, and their sums, with the notes.
    (_, publish, _) = _workflow_steps()[-1]
    for published in (
        "dist/mmpkg-*-py3-none-any.whl",
        "dist/mmpkg-*.tar.gz",
        "dist/SHA256SUMS",
        "RELEASE-NOTES.md",
    ):
        assert published in publish


@pytest.mark.tools
def test_a_tag_rebuilds_to_the_files_its_templates_pin(tmp_path: Path) -> None:
    # The maintainer's side: the version, the CHANGELOG, `make dist`, commit, tag.
    made = _copy(tmp_path / "maintainer")
    notes = _prepare(made)
    files = distfiles.release(made, made / "dist", check=False)
    assert files.version == VERSION
    digests = {p.name: d for p, d in files.sha256().items()}
    for template in distfiles.TEMPLATES:
        pins = distfiles.pinned((made / template.relative_to(TOP)).read_text())
        assert pins == {
            "MMPKG_VERSION": VERSION,
            "MMPKG_WHEEL_SHA256": digests[f"mmpkg-{VERSION}-py3-none-any.whl"],
            "MMPKG_SDIST_SHA256": digests[f"mmpkg-{VERSION}.tar.gz"],
        }
    assert (made / "dist/RELEASE-NOTES.md").read_text() == notes
    sums = (made / "dist/SHA256SUMS").read_text().splitlines()
    assert sorted(sums) == sorted(f"{d}  {n}" for n, d in digests.items())
    # The templates' pins would change the sdist's hash: they are not in it.
    listing = harness.run_host(["tar", "-tzf", files.sdist]).stdout.splitlines()
    assert not [n for n in listing if "/ci/" in n] and any(
        n.endswith("/tests/test_docker.py") for n in listing
    )
    shutil.rmtree(made / "dist")
    _commit(made, f"mmpkg {VERSION}")
    _git(made, "tag", f"v{VERSION}")

    # The release job's side: another checkout of the tag, another place, another time.
    tagged = tmp_path / "runner" / "checkout"
    tagged.parent.mkdir()
    _git(tagged.parent, "clone", "-q", "--branch", f"v{VERSION}", str(made), str(tagged))
    out = _build_step(tagged, f"v{VERSION}")
    assert out.returncode == 0, out.stderr
    rebuilt = {p.name: distfiles._sha256(p) for p in (tagged / "dist").glob("mmpkg-*")}
    assert rebuilt == digests

    # A tag that is not the version, and templates that pin other files, stop the release.
    shutil.rmtree(tagged / "dist")
    wrong = _build_step(tagged, "v9.9.8")
    assert wrong.returncode != 0 and "is not v9.9.9" in wrong.stderr
    template = tagged / distfiles.TEMPLATES[0].relative_to(TOP)
    text = template.read_text()
    template.write_text(text.replace(digests[f"mmpkg-{VERSION}.tar.gz"], "0" * 64))
    stale = _build_step(tagged, f"v{VERSION}")
    assert stale.returncode != 0
    (line,) = stale.stderr.strip().splitlines()
    assert line.startswith("mmpkg.distfiles: ci/github/mattermost-packages.yml pins") and "make dist" in line


def test_a_version_without_its_changelog_section_is_refused() -> None:
    with pytest.raises(distfiles.DistError, match=r"no section '## \[9.9.9\] - YYYY-MM-DD'"):
        distfiles.notes((TOP / "CHANGELOG.md").read_text(), VERSION)
    section = distfiles.notes(
        "# Changelog\n\n## [1.0.0] - 2026-01-02\n\n- one\n\n## [0.9.0] - 2025-01-01\n- old\n", "1.0.0"
    )
    assert section == "- one\n"


def test_pinning_changes_only_the_block() -> None:
    text = distfiles.TEMPLATES[1].read_text()
    pins = dict.fromkeys(distfiles.PINNED, "x")
    pinned = distfiles.pin(text, pins)
    assert distfiles.pinned(pinned) == pins
    assert pinned.replace("\n".join(f'  {k}: "x"' for k in distfiles.PINNED) + "\n", "") == re.sub(
        r'^  MMPKG_(VERSION|WHEEL_SHA256|SDIST_SHA256): "[^"]*"\n', "", text, flags=re.M
    )
    with pytest.raises(distfiles.DistError, match="has no '# begin mmpkg-release'"):
        distfiles.pin("variables: {}\n", pins)
