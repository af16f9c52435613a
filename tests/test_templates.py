"""Golden files for everything the templates render, from one fixed model.

A change to a template shows here as a diff to review. After reviewing, regenerate with
`pytest tests/test_templates.py --update-goldens`.

The lifecycle library is most of every maintainer script, so it has golden files of its own.
It renders a little differently for each view in LIBRARIES; those renderings are almost the
same, so one of them, BASE, is stored whole (golden/lifecycle/deb.sh) and each other one as a
unified diff from it (golden/lifecycle/rpm.diff holds lifecycle/rpm.sh), which the test applies
hunk by hunk at the lines it states (`patch -o rpm.sh lifecycle/deb.sh lifecycle/rpm.diff`
in golden/ gives the same). A change to the library common to every view then shows once, in
deb.sh, and a diff changes only with what is particular to its view.

Each rendered file's golden holds only its own part, with a marker line naming the library
rendering it carries, such as `<<< lifecycle/deb.sh >>>`, or `<<< lifecycle/rpm.sh, every %
doubled >>>` in the rpm spec, whose escaping doubles every % of a scriptlet. The rendered file must equal its
part with the library renderings spliced in at the markers, byte for byte; a change to the
library then shows in the library's golden files instead of in every script.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import jinja2
import pytest

from mmpkg.backends.deb import render_control, render_scripts
from mmpkg.backends.rpm import release_files, render_spec
from mmpkg.build.options import BuildOptions
from mmpkg.build.spec import PackageSpec, build_spec
from mmpkg.build.templates import render
from mmpkg.mattermost.release import Arch, Edition, Release
from mmpkg.mattermost.versions import MattermostVersion

GOLDEN = Path(__file__).parent / "golden"

# The library's golden files, each with the view it is rendered with besides the spec. The
# library branches on fmt, and on context for the deb maintainer scripts alone (they start the
# server with deb-systemd-invoke, mattermost-pkg with systemctl); no script changes it otherwise.
LIBRARIES: dict[str, dict[str, str]] = {
    "lifecycle/deb.sh": {"fmt": "deb", "context": "maintscript"},
    "lifecycle/deb-admin.sh": {"fmt": "deb", "context": "admin"},
    "lifecycle/rpm.sh": {"fmt": "rpm", "context": "maintscript"},
}

# The rendering stored whole; every other one is stored as its difference from this one.
BASE = "lifecycle/deb.sh"
assert BASE in LIBRARIES

# Lines of context around each change in a library's diff: enough for a reader to see where it
# is, and for a hunk to be checked against the lines it lands on.
_CONTEXT = 3

# A hunk's header in a library's diff: the first line and length of its lines before and after.
_HUNK = re.compile(r"@@ -(?P<old>\d+)(?:,(?P<old_len>\d+))? \+(?P<new>\d+)(?:,(?P<new_len>\d+))? @@")

# A part's line standing for a library golden, on a line of its own.
_MARKER = re.compile(r"^<<< (?P<name>\S+?)(?P<doubled>, every % doubled)? >>>\n", re.MULTILINE)


def fixed_spec(version: str = "10.5.2", edition: Edition = Edition.ENTERPRISE) -> PackageSpec:
    release = Release(
        version=MattermostVersion.parse(version),
        edition=edition,
        arch=Arch.AMD64,
        file_count=24,
        unpacked_bytes=62931,
        tarball_bytes=21345,
        sha256="0" * 64,
        source_date_epoch=1_700_000_000,
        rewritten=("client/root.html", "client/manifest.json", "client/main.0123456789abcdef0123.css"),
    )
    options = BuildOptions(
        maintainer="Chat Team <chat-team@example.com>",
        settings=(("ServiceSettings.SiteURL", "https://chat.example.com"),),
    )
    # A fixed mmpkg version too, so that releasing mmpkg does not change the golden files.
    return dataclasses.replace(build_spec(release, options), mmpkg_version="1.2.3")


def fixed_files(spec: PackageSpec) -> list[tuple[str, str]]:
    """The rpm's %files lines for a small staged release holding the spec's rewritten files."""
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp, spec.layout.prefix.lstrip("/"))
        for rel in ("bin/mattermost", "client/images/logo.png", "client/main.0123.js", *spec.rewritten):
            (prefix / rel).parent.mkdir(parents=True, exist_ok=True)
            (prefix / rel).write_text("")
        (prefix / "config").symlink_to(spec.layout.etc)
        return release_files(spec, Path(tmp))


@functools.cache
def rendered() -> dict[str, str]:
    spec = fixed_spec()
    out = {
        "control": render_control(spec, installed_size=219),
        "mattermost.spec": render_spec(spec, fixed_files(spec)),
    }
    out.update(render_scripts(spec))
    out["mattermost.service"] = render("templates/mattermost.service.j2", spec=spec, fmt="deb")
    out["mattermost-pkg"] = render("templates/mattermost-pkg.j2", spec=spec, fmt="deb", context="admin")
    out["control-team"] = render_control(fixed_spec(edition=Edition.TEAM), installed_size=219)
    return out


@functools.cache
def libraries() -> dict[str, str]:
    """The library rendered on its own, as the templates include it (LIBRARIES)."""
    spec = fixed_spec()
    return {name: render("templates/lifecycle.sh.j2", spec=spec, **view) for name, view in LIBRARIES.items()}


def _marker(name: str, doubled: bool) -> str:
    return f"<<< {name}{', every % doubled' if doubled else ''} >>>\n"


def _doubled(text: str) -> str:
    """A scriptlet's text as the rpm spec carries it (rpm would expand a single %)."""
    return text.replace("%", "%%")


def splice(part: str, libs: Mapping[str, str]) -> str:
    """`part` with each marker replaced by the library it names."""

    def expand(match: re.Match[str]) -> str:
        text = libs[match["name"]]
        return _doubled(text) if match["doubled"] else text

    return _MARKER.sub(expand, part)


def factor(text: str, libs: Mapping[str, str]) -> str:
    """`text` with each library in it replaced by its marker: splice's inverse."""
    for name, lib in libs.items():
        text = text.replace(lib, _marker(name, doubled=False))
        text = text.replace(_doubled(lib), _marker(name, doubled=True))
    return text


def markers(part: str) -> set[str]:
    """The library goldens `part` names."""
    return {match["name"] for match in _MARKER.finditer(part)}


def diff(golden: str, actual: str, name: str) -> str:
    lines = difflib.unified_diff(
        golden.splitlines(), actual.splitlines(), f"golden/{name}", f"rendered {name}", lineterm=""
    )
    return "\n".join(lines) or "(they differ only in line breaks)"


def library_golden(name: str) -> str:
    """The golden file that holds library rendering `name`: BASE itself, any other one's diff."""
    return name if name == BASE else str(PurePosixPath(name).with_suffix(".diff"))


def _lines(text: str) -> list[str]:
    """`text`'s lines, each with its line break; only \\n breaks a line (not splitlines' \\r
    and the rest), so that joining them gives back every byte."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def library_diff(base: str, text: str, name: str) -> str:
    """The unified diff that turns `base` (BASE's rendering) into `text`, rendering `name`.
    Its headers name the two renderings and nothing else (no date), so it changes only with them."""
    # A hunk line is one line of the library and a line break: a library must end with one.
    assert base.endswith("\n") and text.endswith("\n"), name
    base_lines, lines = _lines(base), _lines(text)
    hunks = list(difflib.unified_diff(base_lines, lines, n=_CONTEXT))[2:]
    return f"--- {BASE}\n+++ {name}\n" + "".join(hunks)


class StaleDiff(Exception):
    """A library's diff that does not apply exactly where and as it says."""


def apply_library_diff(base: str, patch: str, name: str) -> str:
    """`base` with `patch`, library_diff's output for rendering `name`, applied. Strict, unlike
    patch(1): every hunk must start at the line it states, in order, and every line it keeps or
    removes must be that line of `base`; anything else raises StaleDiff saying where."""
    if not patch.endswith("\n"):
        raise StaleDiff("it does not end with a line break")
    lines = patch[:-1].split("\n")
    if lines[:2] != [f"--- {BASE}", f"+++ {name}"]:
        raise StaleDiff(f"its first two lines are not '--- {BASE}' and '+++ {name}'")
    old = _lines(base)
    out: list[str] = []
    at = 0  # the next line of `base` to copy, from 0
    i = 2
    while i < len(lines):
        header = lines[i]
        match = _HUNK.fullmatch(header)
        if match is None:
            raise StaleDiff(f"its line {i + 1} should start a hunk ('@@ -L,N +L,N @@'), it is {header!r}")
        old_len = int(match["old_len"] or 1)
        new_len = int(match["new_len"] or 1)
        # A hunk of N lines from line L starts at line L; one of no lines comes after line L.
        start = int(match["old"]) - (1 if old_len else 0)
        if start < at:
            raise StaleDiff(f"{header} (its line {i + 1}) starts before the end of the hunk above it")
        if start + old_len > len(old):
            raise StaleDiff(f"{header} (its line {i + 1}) runs past the end of {BASE}, {len(old)} lines")
        out += old[at:start]
        if int(match["new"]) - (1 if new_len else 0) != len(out):
            raise StaleDiff(f"{header} (its line {i + 1}) does not follow line {len(out)} of {name}")
        at = start
        i += 1
        seen_old = seen_new = 0
        while seen_old < old_len or seen_new < new_len:
            if i >= len(lines):
                raise StaleDiff(f"it ends inside the hunk {header}")
            line = lines[i]
            kind, content = line[:1], line[1:] + "\n"
            if kind not in (" ", "-", "+"):
                raise StaleDiff(
                    f"its line {i + 1} keeps, removes or adds no line (' ', '-' or '+'): {line!r}"
                )
            if kind in (" ", "-"):
                if seen_old == old_len:
                    raise StaleDiff(f"its line {i + 1} is one more line of {BASE} than {header} has")
                if old[at] != content:
                    raise StaleDiff(
                        f"its line {i + 1} expects line {at + 1} of {BASE} to be {content[:-1]!r}, "
                        f"it is {old[at][:-1]!r}"
                    )
                at += 1
                seen_old += 1
            if kind in (" ", "+"):
                if seen_new == new_len:
                    raise StaleDiff(f"its line {i + 1} is one more line of {name} than {header} has")
                out.append(content)
                seen_new += 1
            i += 1
    return "".join(out + old[at:])


def golden_library(name: str) -> str:
    """Library rendering `name` as its golden files hold it: BASE's, with `name`'s diff applied."""
    base = read_golden(BASE)
    if name == BASE:
        return base
    try:
        return apply_library_diff(base, read_golden(library_golden(name)), name)
    except StaleDiff as error:
        problem = str(error)
    pytest.fail(
        f"golden/{library_golden(name)} does not apply to golden/{BASE}: {problem}; run with --update-goldens",
        pytrace=False,
    )


def stored_library(name: str) -> str | None:
    """golden_library's text, or None where the golden files are missing or do not apply."""
    if not all((GOLDEN / file).exists() for file in {BASE, library_golden(name)}):
        return None
    try:
        return golden_library(name)
    except pytest.fail.Exception:
        return None


def read_golden(name: str) -> str:
    path = GOLDEN / name
    if not path.exists():
        pytest.fail(f"no golden file {path}; run with --update-goldens", pytrace=False)
    return path.read_text()


def write_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_library_golden(name: str, update_goldens: bool) -> None:
    libs = libraries()
    text = libs[name]
    # A marker stands for whole lines, so the library must end with a line break (that it
    # starts a line, test_golden's round trip checks).
    assert text.endswith("\n"), name
    if update_goldens:
        if name == BASE:
            write_golden(name, text)
            return
        patch = library_diff(libs[BASE], text, name)
        # The diff must give back exactly this rendering (BASE's golden file may not be
        # rewritten yet: another test, perhaps another worker).
        try:
            round_trip: str | None = apply_library_diff(libs[BASE], patch, name)
        except StaleDiff:
            round_trip = None
        if round_trip != text:
            pytest.fail(f"{name}'s diff from {BASE}, applied to it, does not give {name} back", pytrace=False)
        write_golden(library_golden(name), patch)
        return
    golden = golden_library(name)
    if text == golden:
        return
    if name == BASE:
        pytest.fail(f"{name} differs from its golden file:\n{diff(golden, text, name)}", pytrace=False)
    # Say what differs: what the views share, whose own test shows the diff, or this view's own
    # difference, shown as its diff applied to BASE as rendered now against this rendering.
    sections = []
    if read_golden(BASE) != libs[BASE]:
        sections.append(
            f"{BASE}, which its diff changes, differs from its golden file: see test_library_golden[{BASE}]"
        )
    try:
        own = apply_library_diff(libs[BASE], read_golden(library_golden(name)), name)
    except StaleDiff:
        sections.append(f"golden/{library_golden(name)} no longer applies to {BASE} as rendered now")
    else:
        if own != text:
            sections.append(diff(own, text, name))
    if not sections:
        sections.append(diff(golden, text, name))
    pytest.fail(f"{name} differs from its golden files:\n" + "\n".join(sections), pytrace=False)


def test_library_goldens_are_distinct() -> None:
    """Two views rendering the same library need one entry in LIBRARIES, not a golden file
    each (one of them would be an empty diff)."""
    seen: dict[str, str] = {}
    for name, text in libraries().items():
        if text in seen:
            pytest.fail(f"{name} renders as {seen[text]} does: keep one of them in LIBRARIES", pytrace=False)
        seen[text] = name


@pytest.mark.parametrize("name", sorted(rendered()))
def test_golden(name: str, update_goldens: bool) -> None:
    text = rendered()[name]
    libs = libraries()
    if update_goldens:
        part = factor(text, libs)
        # splice must give back exactly this text. A library left in the part (its first line
        # gives it away) was rendered with a view LIBRARIES lacks, and needs a golden of its own.
        if splice(part, libs) != text:
            pytest.fail(f"{name} cannot be split into its part and the library", pytrace=False)
        if any(lib.splitlines()[0] in part for lib in libs.values()):
            pytest.fail(f"{name} carries a library that no view in LIBRARIES renders", pytrace=False)
        write_golden(name, part)
        # The library goldens may not be rewritten yet (another test, perhaps another worker).
        return
    part = read_golden(name)
    unknown = sorted(markers(part) - LIBRARIES.keys())
    if unknown:
        pytest.fail(f"golden/{name} names libraries that LIBRARIES lacks: {unknown}", pytrace=False)
    golden_libs = {lib: golden_library(lib) for lib in markers(part)}
    if text == splice(part, golden_libs):
        return
    # Say what differs: this file's own part, or a library whose own test shows the diff.
    actual = factor(text, libs)
    sections = []
    if actual != part:
        sections.append(diff(part, actual, name))
    stale = sorted(lib for lib in markers(actual) if stored_library(lib) != libs[lib])
    if stale:
        sections.append(f"the library it carries differs from {', '.join(stale)}: see test_library_golden")
    if not sections:
        sections.append(diff(splice(part, golden_libs), text, name))
    pytest.fail(f"{name} differs from its golden files:\n" + "\n".join(sections), pytrace=False)


def test_every_golden_file_is_used(update_goldens: bool) -> None:
    """A golden file nothing renders any more would only mislead its reader."""
    expected = {*map(library_golden, LIBRARIES), *rendered()}
    stray = sorted(
        str(path.relative_to(GOLDEN))
        for path in GOLDEN.rglob("*")
        if path.is_file() and str(path.relative_to(GOLDEN)) not in expected
    )
    if update_goldens:
        for name in stray:
            (GOLDEN / name).unlink()
        return
    if stray:
        pytest.fail(f"golden files nothing renders (--update-goldens removes them): {stray}", pytrace=False)


def test_rendering_is_strict() -> None:
    """A template that names something the model lacks fails instead of rendering blank."""
    with pytest.raises(jinja2.UndefinedError):
        render("templates/mattermost.service.j2", spec=None)


def test_the_lifecycle_library_is_in_every_script() -> None:
    spec = fixed_spec()
    scripts = {**render_scripts(spec), "spec": render_spec(spec, fixed_files(spec))}
    for name, text in scripts.items():
        assert "mm_configure()" in text, name
    # rpm would expand %macros in scriptlets: every % of the shell code is escaped.
    assert "date -u +%%Y%%m%%dT%%H%%M%%SZ" in scripts["spec"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("maintainer", "Chat Team <ops@example.com>\n%post\nrm -rf /"),
        ("summary", "one\ntwo"),
        ("description", "text\n%files\n/etc/shadow"),
        ("description", "text\n  # rpm drops this line"),
    ],
    ids=["maintainer-newline", "summary-newline", "description-section", "description-comment"],
)
def test_spec_refuses_what_rpm_cannot_carry_literally(field: str, value: str) -> None:
    """A line break in a tag's value would start spec syntax; a %description line that rpm
    reads as a section or a comment cannot be escaped. Either stops the build."""
    with pytest.raises(ValueError):
        spec = dataclasses.replace(fixed_spec(), **{field: value})  # type: ignore[arg-type]
        render_spec(spec, fixed_files(spec))
