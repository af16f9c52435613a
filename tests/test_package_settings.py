"""The installed package's settings come from one table: every row reaches every place that
lists them, and no template types a name's default itself."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from mmpkg import docs
from mmpkg.build.package_settings import BY_NAME, SETTINGS, Check, PackageSetting, Scope
from mmpkg.build.templates import _roff, data_dir, render
from tests.test_templates import fixed_spec

ROOT = data_dir()
# Every template the package is rendered from.
TEMPLATES = sorted(p for d in ("templates", "debian", "rpm") for p in (ROOT / d).rglob("*.j2"))

IDS = [s.name for s in SETTINGS]


def _places(table: tuple[PackageSetting, ...] = SETTINGS) -> dict[str, str]:
    """Each rendered place that lists the settings, rendered from `table`."""
    spec = fixed_spec()
    view = {"spec": spec, "package_settings": table}
    admin = render("templates/mattermost-pkg.j2", fmt="deb", context="admin", **view)
    usage = re.search(r"^    cat <<USAGE\n(.*?)^USAGE$", admin, re.DOTALL | re.MULTILINE)
    assert usage is not None
    return {
        "library": admin,
        "package.conf": render("templates/package.conf.j2", **view),
        "man": render("templates/mattermost-pkg.8.j2", **view),
        "usage": usage[1],
    }


def _load_line(setting: PackageSetting) -> str:
    default = shlex.quote(str(setting.default))
    return f"{setting.variable}=$(mm_knob {setting.name} {default} {setting.check} {setting.scope})"


def _man_section(man: str, title: str) -> str:
    section = re.search(rf"^\.SH {title}\n(.*?)^\.SH ", man, re.DOTALL | re.MULTILINE)
    assert section is not None, title
    return section[1]


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_every_setting_is_loaded_and_checked(setting: PackageSetting) -> None:
    library = _places()["library"]
    assert f"    {_load_line(setting)}\n" in library
    # package.conf: a persistent name is read, a one-off one is ignored with a warning.
    known, one_off = re.findall(r"^            (MMPKG_[A-Z_ |]+)\)", library, re.MULTILINE)
    assert setting.name in (known if setting.persistent else one_off).split(" | ")


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_every_setting_is_documented(setting: PackageSetting) -> None:
    places = _places()
    conf = _conf_entries(places["package.conf"])
    if setting.persistent:
        assert conf[setting.name][1] == str(setting.default)
    else:
        assert setting.name not in places["package.conf"], "a one-off switch is ignored there"
    section = _man_section(places["man"], "SETTINGS" if setting.persistent else "ENVIRONMENT")
    assert f".B {_roff(setting.spelled)}\n{_roff(setting.text[0].upper() + setting.text[1:])}.\n" in section
    assert f"  {setting.spelled}\n" in places["usage"] and _flat(setting.text) in _flat(places["usage"])
    readme = docs.package_settings()
    assert f"| {docs._cell(docs._code(setting.spelled))} |" in readme and setting.text in readme
    if setting.persistent:
        for text in (section, places["usage"], readme, conf[setting.name][0]):
            assert _says_default(text, setting.name, setting.default)


def _conf_entries(conf: str) -> dict[str, tuple[str, str]]:
    """package.conf's entries by name: the name with the comment above it, and the value."""
    entries = re.findall(r"^#\n((?:# .*\n)+)#(MMPKG_[A-Z_]+)=(.*)$", conf, re.MULTILINE)
    return {name: (f"{name} {text}", value) for text, name, value in entries}


def _flat(text: str) -> str:
    """`text` with line breaks, comment marks and indentation as single spaces."""
    return " ".join(text.replace("\n#", "\n").split())


def _says_default(text: str, name: str, default: int | str) -> bool:
    """Whether `text` gives `default` as the default of `name`, within the name's entry."""
    said = default if default != "" else "none"
    entry = rf"\b{name}\b(?:(?!MMPKG_).){{0,400}}?\bdefault {said}\b"
    return re.search(entry, _flat(text)) is not None


def test_every_default_comes_from_the_table() -> None:
    """Other defaults in the table show up in every place; the real ones are gone from it."""
    table = tuple(
        dataclasses.replace(s, default=s.default + 7000) if s.persistent and isinstance(s.default, int) else s
        for s in SETTINGS
    )
    places = _places(table)
    for setting in table:
        assert f"    {_load_line(setting)}\n" in places["library"]
        if not setting.persistent or not isinstance(setting.default, int):
            continue
        conf = _conf_entries(places["package.conf"])
        assert conf[setting.name][1] == str(setting.default)
        texts = {"package.conf": conf[setting.name][0], "man": places["man"], "usage": places["usage"]}
        for name, text in texts.items():
            assert _says_default(text, setting.name, setting.default), (name, setting.name)
            assert not _says_default(text, setting.name, setting.default - 7000), (name, setting.name)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_types_a_default(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    assert not re.search(r"mm_knob +MMPKG_", text), "settings are loaded in a loop over the table"
    for setting in SETTINGS:
        if not isinstance(setting.default, int):
            continue  # an empty default is no value a template could type
        name, default = re.escape(setting.name), setting.default
        assert not re.search(rf"\b{name}\W{{1,3}}{default}\b", text), setting.name
        assert not re.search(rf"\b{name}\b.{{0,60}}\bdefault:?\s+{default}\b", text, re.DOTALL), setting.name


def test_every_setting_the_templates_name_is_in_the_table() -> None:
    named = {m for p in TEMPLATES for m in re.findall(r"\bMMPKG_[A-Z_]+\b", p.read_text(encoding="utf-8"))}
    assert named <= set(BY_NAME), named - set(BY_NAME)
    sources = "".join(p.read_text(encoding="utf-8") for p in TEMPLATES)
    for setting in SETTINGS:
        assert re.search(rf"\${setting.variable}\b", sources), f"no script reads {setting.name}"


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_rows_are_plain_and_consistent(setting: PackageSetting) -> None:
    # The help text lands in a here-document, a comment, a man page and a Markdown cell.
    assert not re.search(r"[$`\\\n]", setting.text)
    assert setting.help[0].islower() and not setting.help.endswith(".")
    assert re.fullmatch(r"MMPKG_[A-Z_]+", setting.name)
    # A one-off switch is off unless the one command turns it on.
    if setting.scope is Scope.ONCE:
        assert (setting.check, setting.default) == (Check.SWITCH, 0)
    if setting.check is Check.URL:
        assert setting.default == "" and setting.zero
        return
    assert isinstance(setting.default, int)
    if setting.check is Check.SWITCH:
        assert setting.default in (0, 1)
    elif setting.check is Check.COUNT:
        assert 1 <= setting.default <= 999999
    else:
        assert 0 <= setting.default <= 999999


def test_the_readme_table_has_every_row() -> None:
    table = docs.package_settings()
    assert len(table.splitlines()) == 2 + len(SETTINGS)
