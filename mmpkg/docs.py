"""The documents' generated parts, made from the code's own tables and rewritten by `make readme`.

README.md and docs/*.md hold: the command line (from the option table, through the parsers that
use it), the exit codes (from the error classes), the target distributions, upstream's upgrade
path, what a release refuses at start, the installed package's settings, the CI templates' test
images, the default channel rules and their ESR lines, the trusted release-signing keys, the
checkout's modules (from their docstrings), the bench's last results (from bench/results), and
each long document's contents (from its own headings). The CI templates hold their own default
test images (from the same table). tests/test_docs.py and tests/test_ci_templates.py fail when a
file and the code disagree.

A generated part sits between `<!-- begin NAME -->` and `<!-- end NAME -->` lines in a document,
between `# begin NAME` and `# end NAME` comment lines (at the YAML's indentation) in a template.
Each part of PARTS is in exactly one document; `contents` may be in any.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mmpkg.build.options import OPTIONS, Kind
from mmpkg.build.package_settings import SETTINGS as PACKAGE_SETTINGS
from mmpkg.cli.grammar import parsers
from mmpkg.errors import EXIT_CODES
from mmpkg.mattermost.start_refusals import TABLE as START_REFUSALS
from mmpkg.mattermost.upgrade_path import ESR_LINES, TABLE
from mmpkg.packaging.ci_images import TEST_IMAGES, default_test_images
from mmpkg.packaging.formats import Compression
from mmpkg.packaging.targets import DEFAULT, DISTRIBUTIONS, NEEDS, PAYLOADS, UNPACKER, Distribution
from mmpkg.repo import retention
from mmpkg.sync.channels import DEFAULT_CHANNELS
from mmpkg.upstream.release_keys import KEY_URL, TRUSTED

# The checkout this module is in: the documents, bench/results and the modules listed are its.
CHECKOUT = Path(__file__).resolve().parent.parent

# Narrow enough for a document read on GitHub or in a terminal.
WIDTH = 96


def command_line() -> str:
    _, commands = parsers(width=WIDTH)
    usage = "".join(_usage(command.format_usage()) for command in commands.values())
    rows = [
        "| flag | TOML key (`--config`) | default | what |",
        "|---|---|---|---|",
    ]
    for option in OPTIONS:
        spelled = f"{option.flag} {option.metavar}" if option.metavar else option.flag
        flag = _code(spelled) + (" (repeatable)" if option.kind is Kind.REPEAT else "")
        key = "`[set]` table" if option.kind is Kind.REPEAT else _code(option.name)
        default = option.default if " " in option.default else _code(option.default)
        rows.append(f"| {_cell(flag)} | {key} | {_cell(default)} | {_cell(option.help)} |")
    return f"```\n{usage}```\n\n" + "\n".join(rows) + "\n"


def _usage(text: str) -> str:
    """argparse's usage without its 'usage: ', continuation lines moved left to match."""
    lines = text.removeprefix("usage: ").splitlines(keepends=True)
    indent = len("usage: ")
    return "".join([lines[0], *(line[indent:] for line in lines[1:])])


def _code(text: str) -> str:
    return f"`{text}`"


def _cell(text: str) -> str:
    """A Markdown table cell: a | would end the cell, and <...> outside code is taken for HTML."""
    text = text.replace("|", "\\|")
    return text if "`" in text else text.replace("<", "&lt;")


def package_settings() -> str:
    """The installed package's MMPKG_* settings, from the one table its scripts are rendered from."""
    rows = ["| setting | read from | effect |", "|---|---|---|"]
    for setting in PACKAGE_SETTINGS:
        where = "`package.conf` or the environment" if setting.persistent else "the environment only"
        rows.append(f"| {_cell(_code(setting.spelled))} | {where} | {_cell(setting.text)} |")
    return "\n".join(rows) + "\n"


def exit_codes() -> str:
    rows = ["| exit code | meaning |", "|---|---|"]
    rows += [f"| {code} | {_cell(meaning)} |" for code, meaning in EXIT_CODES]
    return "\n".join(rows) + "\n"


def upgrade_path() -> str:
    """Upstream's supported upgrade path, from the one table the guard is rendered from."""
    rows = ["| from | to | the guard says | upstream's source |", "|---|---|---|---|"]
    for stop in TABLE.required_stops:
        rows.append(f"| below {stop.stop} | {stop.before} or later | {stop.advice} | {stop.source} |")
    for jump in TABLE.forbidden_jumps:
        rows.append(
            f"| {jump.old_from} to below {jump.old_below} | {jump.new_from} to below {jump.new_below} "
            f"| {jump.advice} | {jump.source} |"
        )
    lines = ", ".join(f"{line.major}.{line.minor}" for line in TABLE.esr.lines)
    rows.append(
        f"| any version | past {TABLE.esr.may_pass + 1} or more ESR lines it has not reached ({lines}) "
        f"| upgrade to the first of them (ESR) first | {TABLE.esr.source} |"
    )
    rows.append(
        f"| a MySQL database | {TABLE.mysql_end} or later | migrate the database to PostgreSQL first "
        f"| {TABLE.mysql_end_source} |"
    )
    return "\n".join(rows) + "\n"


def start_refusals() -> str:
    """What a release refuses at start, from the one table the guard is rendered from."""
    rows = ["| from | the server will not start with | upstream's source |", "|---|---|---|"]
    for pg in START_REFUSALS.postgres:
        rows.append(f"| {pg.since} | PostgreSQL older than {pg.major} | {pg.source} |")
    for setting in START_REFUSALS.settings:
        refused = "true" if setting.value else "false"
        rows.append(f"| {setting.since} | `{setting.name}={refused}` | {setting.source} |")
    return "\n".join(rows) + "\n"


def targets() -> str:
    """The target distributions and what each payload compression needs, from their tables."""
    rows = [
        "| `--target` | distribution | tools | systemd | PostgreSQL | reads | support ends | versions from |",
        "|---|---|---|---|---|---|---|---|",
    ]
    defaults = {t.name for t in DEFAULT}
    for d in DISTRIBUTIONS:
        name = f"`{d.name}`" + (" (default)" if d.name in defaults else "")
        tools = ", ".join(f"{package} {version}" for package, version in d.tools)
        postgresql = d.postgresql + (f" ({d.postgresql_note})" if d.postgresql_note else "")
        source = d.source() + (f"; patch: {d.patch_source}" if d.patch_source else "")
        rows.append(
            f"| {name} | {d.label} | {tools} | {d.systemd} | {postgresql} | {_reads(d)} "
            f"| {d.supported_until} | {_cell(source)} |"
        )
    needs = ["| payload | needs | source |", "|---|---|---|"]
    for p in PAYLOADS:
        need = "any version" if p.since == "0" else f"{UNPACKER[p.format]} {p.since} or later"
        needs.append(f"| {p.compression} .{p.format} | {need} | {p.source} |")
    return "\n".join(rows) + "\n\n" + "\n".join(needs) + "\n"


def _reads(d: Distribution) -> str:
    """The compressions its unpacker reads, marking those it reads only by the vendor's patch."""
    read = [c for c in Compression if d.target.reads(c)]
    return ", ".join(
        f"{c} (vendor patch)" if not d.target.has(NEEDS[d.family, c].since) else str(c) for c in read
    )


def test_images() -> str:
    """The images the CI templates' test job installs the packages on unless told otherwise."""
    rows = ["| package | image | installed with | why |", "|---|---|---|---|"]
    for fmt, images in TEST_IMAGES.items():
        rows += [f"| .{fmt} | `{i.name}` | {i.package_manager} | {i.why} |" for i in images]
    return "\n".join(rows) + "\n"


def github_test_images() -> str:
    # A repository variable of the same name replaces the default, as `vars.` are for.
    return f"MMPKG_TEST_IMAGES: ${{{{ vars.MMPKG_TEST_IMAGES || '{default_test_images()}' }}}}\n"


def gitlab_test_images() -> str:
    # A CI/CD variable of the same name (project, schedule or pipeline) takes precedence over it.
    return f"MMPKG_TEST_IMAGES: {default_test_images()}\n"


def channel_rules() -> str:
    """The default channel rules, written as a `--channel-rules` file would say the same."""
    lines = ", ".join(f'"{line}"' for line, _ in ESR_LINES)
    rows = {channel: f'{channel} = "{kind}"' for channel, kind in DEFAULT_CHANNELS.items()}
    width = max(len(row) for row in rows.values())
    body = "".join(
        f"{rows[channel]:<{width}}  # {_KIND_MEANS[kind]}\n" for channel, kind in DEFAULT_CHANNELS.items()
    )
    return f"```toml\nesr-lines = [{lines}]\n[channels]\n{body}```\n"


# What each kind of release a channel can take is (mmpkg/sync/channels.py's KINDS), in the words of
# `--channel-rules`.
_KIND_MEANS: dict[str, str] = {
    "final": "every final release, ESR ones too: it follows the newest",
    "esr": "the final releases of the ESR lines",
    "rc": "release candidates, only with --include-rc",
}


def trusted_keys() -> str:
    """The release-signing keys a fetched key must be one of, from mmpkg/upstream/release_keys.py."""
    rows = ["| fingerprint | key | upstream signs with it since | read from |", "|---|---|---|---|"]
    for key in TRUSTED:
        sources = "<br>".join(key.sources)
        rows.append(f"| `{key.fingerprint}` | {_cell(key.uid)} | {key.since} | {sources} |")
    return f"A key fetched from `{KEY_URL}` is used only if it is one of these:\n\n" + "\n".join(rows) + "\n"


def retention_default() -> str:
    """How many versions `repo add` and `sync` keep unless told, from mmpkg/repo/retention.py."""
    return (
        "Unless `--keep N` says otherwise, now or earlier for the channel (an add's, a sync's or\n"
        "`mmpkg repo config`'s, stored in the repository), `mmpkg repo add` and `mmpkg sync` keep\n"
        f"the newest {retention.KEEP} versions of each package, format and architecture in a channel.\n"
    )


def bench_latest() -> str:
    """The bench's last run, as `make bench` wrote it."""
    return _bench_result("latest.md")


def bench_steps() -> str:
    """What each change of the build bought, as bench/steps.py wrote it."""
    return _bench_result("steps.md")


def bench_downtime() -> str:
    """An upgrade's downtime against the database's size, as bench/downtime.py wrote it."""
    return _bench_result("downtime.md")


def bench_publish() -> str:
    """`repo publish` of one release more, against a full upload, as bench/publish.py wrote it."""
    return _bench_result("publish.md")


def _bench_result(name: str) -> str:
    return (CHECKOUT / "bench" / "results" / name).read_text(encoding="utf-8").rstrip("\n") + "\n"


# The directories whose Python modules the layout lists; tests/test_*.py are the test tiers,
# described apart.
LAYOUT = ("mmpkg", "sample_release", "bench", "tests")


def modules() -> str:
    """The checkout's Python modules, one line each: its path and its docstring's first paragraph."""
    lines = []
    for top in LAYOUT:
        for path in sorted((CHECKOUT / top).rglob("*.py")):
            if path.name.startswith("test_"):
                continue
            name = path.relative_to(CHECKOUT).as_posix()
            what = _summary(path)
            lines.append(f"- `{name}`: {what}" if what else f"- `{name}`")
    return "\n".join(lines) + "\n"


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return " ".join(doc.split("\n\n")[0].split()) if doc else ""


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str, str]]:
    """Each Markdown heading of `text` outside code blocks: (level, title, anchor), anchors made
    unique as GitHub makes them (a repeated one gets -1, -2, ...)."""
    found: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}
    fence = ""
    for line in text.splitlines():
        opening = re.match(r"^\s*(```|~~~)", line)
        if opening:
            fence = "" if fence and opening[1] == fence else (fence or opening[1])
            continue
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if fence or match is None:
            continue
        title, slug = match[2], anchor(match[2])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.append((len(match[1]), title, f"{slug}-{count}" if count else slug))
    return found


def contents(text: str) -> str:
    """A document's contents: its second- and third-level headings, linked."""
    rows = []
    for level, title, slug in headings(text):
        if level in (2, 3):
            rows.append(f"{'  ' * (level - 2)}- [{title.replace('`', '')}](#{slug})")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Markers:
    """How a kind of file marks its generated parts."""

    begin: str  # with {} for the part's name
    end: str
    blank_line: bool  # between the part and its end marker (Markdown: the table ends there)


DOC_MARKERS = Markers("<!-- begin {} -->", "<!-- end {} -->", blank_line=True)
YAML_MARKERS = Markers("# begin {}", "# end {}", blank_line=False)

PARTS: dict[str, Callable[[], str]] = {
    "command-line": command_line,
    "exit-codes": exit_codes,
    "upgrade-path": upgrade_path,
    "start-refusals": start_refusals,
    "package-settings": package_settings,
    "targets": targets,
    "test-images": test_images,
    "channel-rules": channel_rules,
    "trusted-keys": trusted_keys,
    "retention-default": retention_default,
    "bench-latest": bench_latest,
    "bench-steps": bench_steps,
    "bench-downtime": bench_downtime,
    "bench-publish": bench_publish,
    "modules": modules,
}
# A document's own contents, made from its headings: any document may have one.
CONTENTS = "contents"
# The CI templates' generated parts, by the template's file name.
TEMPLATE_PARTS: dict[str, dict[str, Callable[[], str]]] = {
    "mattermost-packages.yml": {"test-images": github_test_images},
    ".gitlab-ci.yml": {"test-images": gitlab_test_images},
}


def update(
    text: str,
    parts: dict[str, Callable[[], str]] = PARTS,
    markers: Markers = DOC_MARKERS,
    *,
    required: Iterable[str] = (),
) -> str:
    """`text` with every generated part it has as the code says it is now; a part named in
    `required` that `text` lacks is an error."""
    for name, make in parts.items():
        text = _replace(text, name, make, markers, required=name in required)
    if markers is DOC_MARKERS:
        # Last: the other parts may hold headings of their own.
        text = _replace(text, CONTENTS, lambda: contents(text), markers, required=False)
    return text


def _replace(text: str, name: str, make: Callable[[], str], markers: Markers, *, required: bool) -> str:
    begin, end = markers.begin.format(name), markers.end.format(name)
    pattern = re.compile(
        rf"^([ \t]*){re.escape(begin)}\n(.*?)^[ \t]*{re.escape(end)}$", re.DOTALL | re.MULTILINE
    )
    match = pattern.search(text)
    if match is None:
        if required:
            raise ValueError(f"no '{begin}' ... '{end}' block")
        return text
    indent = match[1]
    made = "".join(indent + line if line.strip() else line for line in make().splitlines(True))
    return text[: match.start(2)] + made + ("\n" if markers.blank_line else "") + text[match.end(2) :]


def update_documents(texts: dict[Path, str]) -> dict[Path, str]:
    """Each document's text with its generated parts as the code says they are now. Every part
    of PARTS must be in exactly one of them: a part in none would be documented nowhere, one in
    two would be two copies of one fact."""
    for name in PARTS:
        begin = DOC_MARKERS.begin.format(name)
        holders = [
            str(path) for path, text in texts.items() if re.search(rf"^[ \t]*{re.escape(begin)}$", text, re.M)
        ]
        if len(holders) != 1:
            where = " and ".join(holders) if holders else "none of " + ", ".join(str(p) for p in texts)
            raise ValueError(f"'{begin}' must be in exactly one document: it is in {where}")
    return {path: update(text) for path, text in texts.items()}


def documents(checkout: Path = CHECKOUT) -> list[Path]:
    """The documents: the README and every Markdown file of docs/."""
    return [checkout / "README.md", *sorted((checkout / "docs").glob("*.md"))]


def update_template(path: Path, text: str) -> str:
    """A CI template's `text` with its generated parts as the code says they are now."""
    parts = TEMPLATE_PARTS[path.name]
    return update(text, parts, YAML_MARKERS, required=parts)


def main(argv: list[str]) -> int:
    """Rewrite the files named, or with none, every document and CI template."""
    paths = [Path(name) for name in argv] or [
        *documents(),
        CHECKOUT / "ci/github/mattermost-packages.yml",
        CHECKOUT / "ci/gitlab/.gitlab-ci.yml",
    ]
    templates = {p: p.read_text(encoding="utf-8") for p in paths if p.name in TEMPLATE_PARTS}
    texts = {p: p.read_text(encoding="utf-8") for p in paths if p.name not in TEMPLATE_PARTS}
    made = {**update_documents(texts), **{p: update_template(p, t) for p, t in templates.items()}}
    for path, text in made.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
