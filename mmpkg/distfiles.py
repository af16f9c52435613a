"""mmpkg's own release files: the wheel and sdist of a version, their SHA256SUMS, the CHANGELOG's
section as release notes, and the pins by which the CI templates install them.

    python -m mmpkg.distfiles OUT           # make dist: build into OUT, pin the templates
    python -m mmpkg.distfiles OUT --check   # the release job: build, and fail unless pinned

The build is reproducible (hatchling's fixed timestamps and file order, the build backend's
version pinned in pyproject.toml), so the sha256 written into the templates at release time is
the sha256 of the files the release job builds again from the tag, on another machine. The
templates are left out of the sdist, or their pins would change the hash they pin.

A template installs exactly the pinned files from any address (`MMPKG_RELEASES_URL`): pip
checks the wheel's `#sha256=` and the test job checks the sdist with sha256sum, so a mirror or
a compromised download fails the job instead of running in one that holds the signing key.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mmpkg.errors import MmpkgError

TOP = Path(__file__).resolve().parent.parent
TEMPLATES = (TOP / "ci/github/mattermost-packages.yml", TOP / "ci/gitlab/.gitlab-ci.yml")
CHANGELOG = TOP / "CHANGELOG.md"
BEGIN, END = "# begin mmpkg-release", "# end mmpkg-release"
PINNED = ("MMPKG_VERSION", "MMPKG_WHEEL_SHA256", "MMPKG_SDIST_SHA256")


class DistError(MmpkgError):
    """A release that cannot be made as asked; the message says what to do."""


@dataclass(frozen=True)
class DistFiles:
    version: str
    wheel: Path
    sdist: Path

    def sha256(self) -> dict[Path, str]:
        return {path: _sha256(path) for path in (self.wheel, self.sdist)}

    def pins(self) -> dict[str, str]:
        digests = self.sha256()
        return dict(zip(PINNED, (self.version, digests[self.wheel], digests[self.sdist]), strict=True))


def _sha256(path: Path) -> str:
    # Not mmpkg.repo.packages.sha256: the release job runs this module with the standard library
    # and `build` alone, before mmpkg's dependencies are installed.
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(source: Path, out: Path) -> DistFiles:
    """The wheel and sdist of the checkout `source`, built into `out` (which must hold neither)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmpkg-dist-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", tmp, str(source)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise DistError(f"python -m build failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        (wheel,) = Path(tmp).glob("mmpkg-*-py3-none-any.whl")
        (sdist,) = Path(tmp).glob("mmpkg-*.tar.gz")
        version = wheel.name.split("-")[1]
        files = DistFiles(version, out / wheel.name, out / sdist.name)
        for made, dest in ((wheel, files.wheel), (sdist, files.sdist)):
            if dest.exists():
                raise DistError(f"{dest} exists: build into an empty directory")
            made.replace(dest)
    return files


def notes(changelog: str, version: str) -> str:
    """The CHANGELOG.md section of `version`, without its heading: the release's notes."""
    heading = rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}\n"
    found = re.search(heading + r"(.*?)(?=^## \[|\Z)", changelog, re.M | re.S)
    if found is None:
        raise DistError(
            f"CHANGELOG.md has no section '## [{version}] - YYYY-MM-DD': move the Unreleased "
            "entries under one, dated, before releasing"
        )
    return found.group(1).strip() + "\n"


def pin(text: str, pins: dict[str, str], name: str = "template") -> str:
    """`text` (a CI template) with its pinned block holding `pins`."""
    block = re.search(rf"^( *){re.escape(BEGIN)}\n.*?^ *{re.escape(END)}$", text, re.M | re.S)
    if block is None:
        raise DistError(f"{name} has no '{BEGIN}' ... '{END}' block")
    indent = block.group(1)
    lines = [f"{indent}{BEGIN}", *(f'{indent}{k}: "{v}"' for k, v in pins.items()), f"{indent}{END}"]
    return text[: block.start()] + "\n".join(lines) + text[block.end() :]


def pinned(text: str) -> dict[str, str]:
    """The pins a template's block holds now."""
    return dict(re.findall(rf'^ *({"|".join(PINNED)}): "([^"]*)"$', text, re.M))


def release(source: Path, out: Path, *, check: bool) -> DistFiles:
    """Build `source` into `out` with SHA256SUMS and RELEASE-NOTES.md; then pin the templates,
    or with `check` refuse unless they pin these very files."""
    files = build(source, out)
    said = re.search(r'^__version__ = "([^"]+)"', (source / "mmpkg/__init__.py").read_text(), re.M)
    if said is None or said.group(1) != files.version:
        raise DistError(f"built {files.version}, but {source}/mmpkg/__init__.py says otherwise")
    (out / "RELEASE-NOTES.md").write_text(notes((source / "CHANGELOG.md").read_text(), files.version))
    sums = "".join(f"{digest}  {path.name}\n" for path, digest in files.sha256().items())
    (out / "SHA256SUMS").write_text(sums)
    # Every template is read and checked before any is written: no half-pinned checkout.
    texts = {t: t.read_text() for t in (source / t.relative_to(TOP) for t in TEMPLATES)}
    if check:
        for template, text in texts.items():
            if pinned(text) != files.pins():
                raise DistError(
                    f"{template.relative_to(source)} pins {pinned(text)}, not the files built here "
                    f"{files.pins()}: run `make dist` at the release commit and commit the templates"
                )
        return files
    for template, text in [(t, pin(text, files.pins(), str(t))) for t, text in texts.items()]:
        template.write_text(text)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmpkg.distfiles", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="an empty directory for the files")
    parser.add_argument("--source", type=Path, default=TOP, help="the checkout to build (default: this one)")
    parser.add_argument(
        "--check", action="store_true", help="change no template; fail unless they pin these files"
    )
    args = parser.parse_args(argv)
    try:
        files = release(args.source, args.out, check=args.check)
    except DistError as exc:
        print(f"mmpkg.distfiles: {exc}", file=sys.stderr)
        return 1
    for path, digest in files.sha256().items():
        print(f"{digest}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
