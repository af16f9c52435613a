"""The README's generated parts: the command line (from the option table, through the parsers that
use it), the exit codes (from the error classes), upstream's upgrade path, what a release
refuses at start and the CI templates' test images (from their tables); and the CI templates'
own default test images (from the same table).
`make readme` rewrites them in place; tests/test_docs.py and tests/test_ci_templates.py fail
when a file and the code disagree.

A generated part sits between `<!-- begin NAME -->` and `<!-- end NAME -->` lines in the README,
between `# begin NAME` and `# end NAME` comment lines (at the YAML's indentation) in a template.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmpkg.ci_images import TEST_IMAGES, default_test_images
from mmpkg.cli_args import parsers
from mmpkg.errors import EXIT_CODES
from mmpkg.formats import Compression
from mmpkg.options import OPTIONS, Kind
from mmpkg.start_refusals import TABLE as START_REFUSALS
from mmpkg.targets import DEFAULT, DISTRIBUTIONS, NEEDS, PAYLOADS, UNPACKER, Distribution
from mmpkg.upgrade_path import TABLE

# Narrow enough for a README read on GitHub or in a terminal.
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


def exit_codes() -> str:
    rows = ["| exit code | meaning |", "|---|---|"]
    rows += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES]
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


@dataclass(frozen=True)
class Markers:
    """How a kind of file marks its generated parts."""

    begin: str  # with {} for the part's name
    end: str
    blank_line: bool  # between the part and its end marker (Markdown: the table ends there)


README_MARKERS = Markers("<!-- begin {} -->", "<!-- end {} -->", blank_line=True)
YAML_MARKERS = Markers("# begin {}", "# end {}", blank_line=False)

PARTS: dict[str, Callable[[], str]] = {
    "command-line": command_line,
    "exit-codes": exit_codes,
    "upgrade-path": upgrade_path,
    "start-refusals": start_refusals,
    "targets": targets,
    "test-images": test_images,
}
# The CI templates' generated parts, by the template's file name.
TEMPLATE_PARTS: dict[str, dict[str, Callable[[], str]]] = {
    "mattermost-packages.yml": {"test-images": github_test_images},
    ".gitlab-ci.yml": {"test-images": gitlab_test_images},
}


def update(text: str, parts: dict[str, Callable[[], str]] = PARTS, markers: Markers = README_MARKERS) -> str:
    """`text` with every generated part as the code says it is now."""
    for name, make in parts.items():
        begin, end = markers.begin.format(name), markers.end.format(name)
        pattern = re.compile(
            rf"^([ \t]*){re.escape(begin)}\n(.*?)^[ \t]*{re.escape(end)}$", re.DOTALL | re.MULTILINE
        )
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"no '{begin}' ... '{end}' block")
        indent = match[1]
        made = "".join(indent + line if line.strip() else line for line in make().splitlines(True))
        text = text[: match.start(2)] + made + ("\n" if markers.blank_line else "") + text[match.end(2) :]
    return text


def update_template(path: Path, text: str) -> str:
    """A CI template's `text` with its generated parts as the code says they are now."""
    return update(text, TEMPLATE_PARTS[path.name], YAML_MARKERS)


def main(argv: list[str]) -> int:
    for name in argv:
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        made = update_template(path, text) if path.name in TEMPLATE_PARTS else update(text)
        path.write_text(made, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
