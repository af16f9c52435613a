"""A local apt repository for tests: a flat directory of .debs indexed by apt-ftparchive.

Unsigned on purpose: it is only ever named as `deb [trusted=yes] file:/... ./`, which trusts this
one source and nothing else. A chroot reaches it through a bind mount at the same path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.support import harness

TOOLS = ("apt-ftparchive", "env")


@dataclass(frozen=True)
class FlatRepo:
    path: Path

    @property
    def source(self) -> str:
        """The sources.list line for this repository."""
        return f"deb [trusted=yes] file://{self.path} ./"


def flat_repo(debs: Iterable[Path], path: Path) -> FlatRepo:
    """Copy `debs` into `path` (created) and write its Packages and Release indices."""
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    # apt reads file: sources as the unprivileged _apt user where it can.
    path.chmod(0o755)
    for deb in debs:
        shutil.copy2(deb, path / deb.name)
        (path / deb.name).chmod(0o644)
    # Run in the repository so that Filename: fields are relative to it, as a flat source needs.
    here = ["env", "-C", str(path), "apt-ftparchive"]
    packages = harness.run_host([*here, "packages", "."]).stdout
    (path / "Packages").write_text(packages)
    # Written after it is generated, so Release never lists itself (or an old Release).
    (path / "Release").unlink(missing_ok=True)
    release = harness.run_host([*here, "release", "."]).stdout
    (path / "Release").write_text(release)
    return FlatRepo(path)
