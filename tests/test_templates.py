"""Golden files for everything the templates render, from one fixed model.

A change to a template shows here as a diff to review. After reviewing, regenerate with
`pytest tests/test_templates.py --update-goldens`.
"""

from __future__ import annotations

import dataclasses
import tempfile
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


@pytest.mark.parametrize("name", sorted(rendered()))
def test_golden(name: str, update_goldens: bool) -> None:
    text = rendered()[name]
    path = GOLDEN / name
    if update_goldens:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with --update-goldens"
    assert text == path.read_text()


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
