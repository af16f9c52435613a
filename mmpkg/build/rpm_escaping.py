"""What an rpm spec template may hold: values rpm reads literally, text blocks, %files paths."""

from __future__ import annotations

import re


class RpmBlock(str):
    """Several lines checked to reach the package as they are (see rpm_block)."""


# rpm expands every line of a spec first and only then looks at it: a line that then starts
# with %word may be read as a new section, and one whose first non-blank is # is a comment,
# dropped from %description and %changelog. No escape exists for either.
_RPM_SECTION_LIKE = re.compile(r"^%[A-Za-z_]", re.MULTILINE)
_RPM_COMMENT_LIKE = re.compile(r"^\s*#", re.MULTILINE)


def rpm_block(text: str, kind: str = "text") -> RpmBlock:
    """Multi-line `text` for a spec section: a script's body, or a %description's text."""
    text = str(text)
    if _RPM_SECTION_LIKE.search(text):
        raise ValueError(f"rpm would read a line starting with % as a spec section: {text!r}")
    if kind == "text" and _RPM_COMMENT_LIKE.search(text):
        raise ValueError(f"rpm would drop a line starting with # as a comment: {text!r}")
    return RpmBlock(text)


# What a %files line can name literally: rpm splits it at blanks, treats quotes and
# backslashes specially and takes *?[{ for a glob (% is rpm_literal's).
_RPM_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9._+,:=@~%/-]")


def rpm_path(path: str) -> str:
    """A path for %files: any other character becomes ?, a glob that matches it (release
    names are upstream's, which have none; _relative refuses control characters)."""
    return _RPM_PATH_UNSAFE.sub("?", path)


def rpm_literal(value: object) -> str:
    """Every value a spec template renders: % doubled, so rpm expands no macro and runs no
    %(command) in it, at build time or ever; only rpm_block text may span lines, because a
    newline in a tag's value would start a line of spec syntax."""
    text = str(value)
    if "\n" in text and not isinstance(value, RpmBlock):
        raise ValueError(f"a value on one line of an rpm spec has a line break: {text!r}")
    return text.replace("%", "%%")
