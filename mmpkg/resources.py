"""Where the templates and per-format files are, and the one jinja2 environment that renders them."""

from __future__ import annotations

import gzip
import io
import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

_PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    """The folder holding templates/, debian/ and rpm/: inside the wheel, or the checkout's top."""
    packaged = _PACKAGE / "_data"
    return packaged if packaged.is_dir() else _PACKAGE.parent


def _deb_description(text: str) -> str:
    """deb-control(5) extended description: every line indented, blank lines as ' .'."""
    return "\n".join(f" {line}" if line.strip() else " ." for line in text.strip().splitlines())


def _rpm_escape(text: str) -> str:
    """rpm expands %macros everywhere in a spec, shell scriptlets included; keep them literal."""
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
    env.filters["rpm_escape"] = _rpm_escape
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    return env


def render(name: str, **view: Any) -> str:
    """Render the template at `name` (relative to data_dir(), e.g. 'debian/control.j2')."""
    return environment().get_template(name).render(**view)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and no timestamp, so the same input always gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()
