"""Where the templates and per-format files are, and the one jinja2 environment that renders them."""

from __future__ import annotations

import gzip
import io
import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

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


class _RpmBlock(str):
    """Several lines checked to reach the package as they are (see _rpm_block)."""


# rpm expands every line of a spec first and only then looks at it: a line that then starts
# with %word may be read as a new section, and one whose first non-blank is # is a comment,
# dropped from %description and %changelog. No escape exists for either.
_RPM_SECTION_LIKE = re.compile(r"^%[A-Za-z_]", re.MULTILINE)
_RPM_COMMENT_LIKE = re.compile(r"^\s*#", re.MULTILINE)


def _rpm_block(text: str, kind: str = "text") -> _RpmBlock:
    """Multi-line `text` for a spec section: a script's body, or a %description's text."""
    text = str(text)
    if _RPM_SECTION_LIKE.search(text):
        raise ValueError(f"rpm would read a line starting with % as a spec section: {text!r}")
    if kind == "text" and _RPM_COMMENT_LIKE.search(text):
        raise ValueError(f"rpm would drop a line starting with # as a comment: {text!r}")
    return _RpmBlock(text)


# What a %files line can name literally: rpm splits it at blanks, treats quotes and
# backslashes specially and takes *?[{ for a glob (% is _rpm_literal's).
_RPM_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9._+,:=@~%/-]")


def _rpm_path(path: str) -> str:
    """A path for %files: any other character becomes ?, a glob that matches it (release
    names are upstream's, which have none; _relative refuses control characters)."""
    return _RPM_PATH_UNSAFE.sub("?", path)


def _rpm_literal(value: object) -> str:
    """Every value a spec template renders: % doubled, so rpm expands no macro and runs no
    %(command) in it, at build time or ever; only _rpm_block text may span lines, because a
    newline in a tag's value would start a line of spec syntax."""
    text = str(value)
    if "\n" in text and not isinstance(value, _RpmBlock):
        raise ValueError(f"a value on one line of an rpm spec has a line break: {text!r}")
    return text.replace("%", "%%")


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
    env.filters["rpm_block"] = _rpm_block
    env.filters["rpm_path"] = _rpm_path
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    # Every template that carries the lifecycle library renders the guard from the one table.
    env.globals["upgrade_path"] = upgrade_path.TABLE
    env.globals["start_refusals"] = start_refusals.TABLE
    return env


@cache
def _rpm_spec_environment() -> jinja2.Environment:
    # The escaping is not left to a filter each value has to remember.
    return environment().overlay(finalize=_rpm_literal)


def render(name: str, **view: Any) -> str:
    """Render the template at `name` (relative to data_dir(), e.g. 'debian/control.j2').

    An rpm spec (*.spec.j2) renders every value literally (_rpm_literal)."""
    env = _rpm_spec_environment() if name.endswith(".spec.j2") else environment()
    return env.get_template(name).render(**view)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and no timestamp, so the same input always gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()
