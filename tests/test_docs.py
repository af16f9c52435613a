"""The README's command line and exit codes are the code's: regenerated, they are unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmpkg import docs
from mmpkg.options import OPTIONS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_is_generated_from_the_option_table() -> None:
    text = README.read_text(encoding="utf-8")
    assert docs.update(text) == text, "the README is out of date: run `make readme`"


def test_every_option_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for option in OPTIONS:
        assert f"`{option.flag}" in text, option.name


def test_a_readme_without_the_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="begin command-line"):
        docs.update("# no markers\n")
