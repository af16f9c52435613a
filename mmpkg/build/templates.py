"""Where the templates and per-format files are, and the one jinja2 environment that renders them
(an rpm spec's values escaped by mmpkg/build/rpm_escaping.py)."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from mmpkg.build import package_settings
from mmpkg.build.rpm_escaping import rpm_block, rpm_literal, rpm_path
from mmpkg.mattermost import start_refusals, upgrade_path

# mmpkg/, one above this module: _data sits there in the wheel, and the checkout's top above it.
_PACKAGE = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder holding templates/, debian/ and rpm/: inside the wheel, or the checkout's top."""
    packaged = _PACKAGE / "_data"
    return packaged if packaged.is_dir() else _PACKAGE.parent


def _deb_description(text: str) -> str:
    """deb-control(5) extended description: every line indented, blank lines as ' .'."""
    return "\n".join(f" {line}" if line.strip() else " ." for line in text.strip().splitlines())


def _roff(text: str) -> str:
    """Plain text for a man page: a backslash or a minus sign is written as roff asks, and a line
    that would start with a control character is protected."""
    text = str(text).replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^(?=[.'])", lambda _: "\\&", text, flags=re.MULTILINE)


@cache
def environment() -> jinja2.Environment:
    # StrictUndefined: a typo in a template fails the build instead of rendering an empty field.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(data_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["sh"] = lambda v: shlex.quote(str(v))
    env.filters["deb_description"] = _deb_description
    env.filters["rpm_block"] = rpm_block
    env.filters["rpm_path"] = rpm_path
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    # Every template that carries the lifecycle library renders the guard from the one table.
    env.globals["upgrade_path"] = upgrade_path.TABLE
    env.globals["start_refusals"] = start_refusals.TABLE
    # The package's own MMPKG_* settings: their loading, package.conf, the man page and usage.
    env.globals["package_settings"] = package_settings.SETTINGS
    env.filters["roff"] = _roff
    return env


@cache
def _rpm_spec_environment() -> jinja2.Environment:
    # The escaping is not left to a filter each value has to remember.
    return environment().overlay(finalize=rpm_literal)


def render(name: str, **view: Any) -> str:
    """Render the template at `name` (relative to data_dir(), e.g. 'debian/control.j2').

    An rpm spec (*.spec.j2) renders every value literally (rpm_literal)."""
    env = _rpm_spec_environment() if name.endswith(".spec.j2") else environment()
    return env.get_template(name).render(**view)
