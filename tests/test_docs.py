"""The documents are the code's where they say what the code says, and their links lead somewhere.

Every generated part of README.md and docs/*.md (mmpkg/docs.py), regenerated, is unchanged: a
part that is stale fails here, in whichever document it is. Every relative link of those
documents names a file of the checkout and, with a `#fragment`, a heading of it, spelt as
GitHub spells a heading's anchor.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmpkg import docs
from mmpkg.build.options import OPTIONS

CHECKOUT = Path(__file__).resolve().parent.parent
DOCUMENTS = docs.documents(CHECKOUT)

# [text](target) and ![alt](target), the target without spaces, an optional "title" after it.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _id(path: Path) -> str:
    return path.relative_to(CHECKOUT).as_posix()


def test_the_documents_are_the_readme_and_docs() -> None:
    names = [_id(p) for p in DOCUMENTS]
    assert names[0] == "README.md"
    assert {"docs/administering.md", "docs/design.md", "docs/development.md"} <= set(names)


@pytest.mark.parametrize("path", DOCUMENTS, ids=_id)
def test_every_generated_part_is_up_to_date(path: Path) -> None:
    texts = {p: p.read_text(encoding="utf-8") for p in DOCUMENTS}
    made = docs.update_documents(texts)
    assert made[path] == texts[path], f"{_id(path)} is out of date: run `make readme`"


def test_a_stale_part_is_found_in_any_document() -> None:
    path = CHECKOUT / "docs" / "performance.md"
    text = path.read_text(encoding="utf-8")
    stale = text.replace("| 10 packages |", "| 10 packages (stale) |", 1)
    assert stale != text
    assert docs.update(stale) == text


def test_every_option_is_documented() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in DOCUMENTS)
    for option in OPTIONS:
        assert f"`{option.flag}" in text, option.name


def test_a_part_in_no_document_is_an_error() -> None:
    with pytest.raises(ValueError, match="begin command-line"):
        docs.update_documents({Path("README.md"): "# no markers\n"})


def test_a_part_in_two_documents_is_an_error() -> None:
    texts = {p: p.read_text(encoding="utf-8") for p in DOCUMENTS}
    holder = next(p for p, t in texts.items() if "<!-- begin exit-codes -->" in t)
    other = next(p for p in texts if p != holder)
    texts[other] += "\n<!-- begin exit-codes -->\n<!-- end exit-codes -->\n"
    with pytest.raises(ValueError, match=r"exit-codes.* in .* and "):
        docs.update_documents(texts)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Upgrades, backups and rolling back", "upgrades-backups-and-rolling-back"),
        ("Keeping a repository current: `mmpkg sync`", "keeping-a-repository-current-mmpkg-sync"),
        ("Generations: Debian 11, 12 and 13", "generations-debian-11-12-and-13"),
        ("The CI templates' test", "the-ci-templates-test"),
        ("Upgrading from packages before 0.8", "upgrading-from-packages-before-08"),
        ("MMPKG_TEST_* and snake_case", "mmpkg_test_-and-snake_case"),
    ],
)
def test_anchors_are_spelt_as_github_spells_them(heading: str, anchor: str) -> None:
    assert docs.anchor(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor_and_code_is_no_heading() -> None:
    text = "# A\n## Notes\n```\n# not a heading\n```\n## Notes\n"
    assert [a for _, _, a in docs.headings(text)] == ["a", "notes", "notes-1"]


def broken_links(path: Path, text: str) -> list[str]:
    """Each relative link of `text` (the document at `path`) that names a missing file, or a
    heading its target does not have."""
    problems = []
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        opening = re.match(r"^\s*(```|~~~)", line)
        if opening:
            fence = "" if fence and opening[1] == fence else (fence or opening[1])
            continue
        if fence:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file, _, fragment = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            where = f"{path.name}:{number}: {target}"
            if not linked.exists():
                problems.append(f"{where}: no such file")
            elif fragment and fragment not in _anchors(
                text if linked == path else linked.read_text(encoding="utf-8")
            ):
                problems.append(f"{where}: no such heading in {linked.name}")
    return problems


def _anchors(text: str) -> set[str]:
    return {anchor for _, _, anchor in docs.headings(text)}


@pytest.mark.parametrize("path", DOCUMENTS, ids=_id)
def test_every_relative_link_leads_to_a_file_and_heading(path: Path) -> None:
    assert broken_links(path, path.read_text(encoding="utf-8")) == []


def test_the_link_check_finds_missing_files_and_headings() -> None:
    readme = CHECKOUT / "README.md"
    text = (
        "# Title\n## Here\n"
        "[ok](#here) [ok](docs/design.md#installed-layout) [ok](https://example.com/#x)\n"
        "`[not a link](nowhere.md)`\n"
        "[gone](docs/nowhere.md) [no heading](#there) [no heading](docs/design.md#nowhere)\n"
        "![gone](bench/results/nowhere.png)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    assert broken_links(readme, text) == [
        "README.md:5: docs/nowhere.md: no such file",
        "README.md:5: #there: no such heading in README.md",
        "README.md:5: docs/design.md#nowhere: no such heading in design.md",
        "README.md:6: bench/results/nowhere.png: no such file",
    ]
