"""Golden files for everything the templates render, from one fixed model.

A change to a template shows here as a diff to review. After reviewing, regenerate with
`pytest tests/test_templates.py --update-goldens`.

The lifecycle library is most of every maintainer script, so it has golden files of its own,
one for each distinct rendering (LIBRARIES): golden/lifecycle/*.sh. Each rendered file's golden
holds only its own part, with a marker line where it carries a library, such as
`<<< lifecycle/deb.sh >>>`, or `<<< lifecycle/rpm.sh, every % doubled >>>` in the rpm spec,
whose escaping doubles every % of a scriptlet. The rendered file must equal its part with the
library goldens spliced in at the markers, byte for byte; a change to the library then shows
once for each rendering in review instead of once in every script.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import jinja2
import pytest

from mmpkg.backends.deb import render_control, render_scripts
from mmpkg.backends.rpm import release_files, render_spec
from mmpkg.options import BuildOptions
from mmpkg.release import Arch, Edition, Release
from mmpkg.resources import render
from mmpkg.spec import PackageSpec, build_spec
from mmpkg.versions import MattermostVersion

GOLDEN = Path(__file__).parent / "golden"

# The library's golden files, each with the view it is rendered with besides the spec. The
# library branches on fmt, and on context for the deb maintainer scripts alone (they start the
# server with deb-systemd-invoke, mattermost-pkg with systemctl); no script changes it otherwise.
LIBRARIES: dict[str, dict[str, str]] = {
    "lifecycle/deb.sh": {"fmt": "deb", "context": "maintscript"},
    "lifecycle/deb-admin.sh": {"fmt": "deb", "context": "admin"},
    "lifecycle/rpm.sh": {"fmt": "rpm", "context": "maintscript"},
}

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
    text = libraries()[name]
    # A marker stands for whole lines, so the library must end with a line break (that it
    # starts a line, test_golden's round trip checks).
    assert text.endswith("\n"), name
    if update_goldens:
        write_golden(name, text)
    golden = read_golden(name)
    if text != golden:
        pytest.fail(f"{name} differs from its golden file:\n{diff(golden, text, name)}", pytrace=False)


def test_library_goldens_are_distinct() -> None:
    """Two views rendering the same library would need only one golden file."""
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
    missing = sorted(lib for lib in markers(part) if not (GOLDEN / lib).exists())
    if missing:
        pytest.fail(f"golden/{name} names library goldens that do not exist: {missing}", pytrace=False)
    golden_libs = {lib: read_golden(lib) for lib in markers(part)}
    if text == splice(part, golden_libs):
        return
    # Say what differs: this file's own part, or a library whose own test shows the diff.
    actual = factor(text, libs)
    sections = []
    if actual != part:
        sections.append(diff(part, actual, name))
    stale = sorted(
        lib
        for lib in markers(actual)
        if not (GOLDEN / lib).exists() or (GOLDEN / lib).read_text() != libs[lib]
    )
    if stale:
        sections.append(f"the library it carries differs from {', '.join(stale)}: see test_library_golden")
    if not sections:
        sections.append(diff(splice(part, golden_libs), text, name))
    pytest.fail(f"{name} differs from its golden files:\n" + "\n".join(sections), pytrace=False)


def test_every_golden_file_is_used(update_goldens: bool) -> None:
    """A golden file nothing renders any more would only mislead its reader."""
    expected = {*LIBRARIES, *rendered()}
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
