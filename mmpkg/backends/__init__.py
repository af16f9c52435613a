"""One small backend per package format, behind one interface, in an explicit registry."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mmpkg.backends.deb import DebBackend
from mmpkg.backends.naming import PackageId
from mmpkg.backends.rpm import RpmBackend
from mmpkg.build.spec import PackageSpec
from mmpkg.mattermost.release import Arch
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import PackageFormat


class Backend(Protocol):
    format: PackageFormat
    tool: str  # the native program that writes the package

    def identify(self, name: str, version: MattermostVersion, revision: int, arch: Arch) -> PackageId:
        """What the package is called in this format: its version, architecture and file name."""
        ...

    def stage(self, spec: PackageSpec, common: Path, work: Path) -> Path:
        """Make this format's tree in `work` from hard links to `common`, plus its own files."""
        ...

    def package(self, spec: PackageSpec, root: Path, work: Path) -> Path:
        """Run the format's tool on the staged tree; only reads the shared files."""
        ...


BACKENDS: dict[PackageFormat, Backend] = {
    PackageFormat.DEB: DebBackend(),
    PackageFormat.RPM: RpmBackend(),
}
