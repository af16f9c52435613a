"""Sample releases and the packages mmpkg builds from them, made once per test session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmpkg.build import build
from mmpkg.options import BuildOptions, Compression, PackageFormat
from mmpkg.release import Arch, Edition
from mmpkg.sample import write_sample_release
from mmpkg.versions import MattermostVersion

# Who the test packages say made them (mmpkg has no default maintainer).
MAINTAINER = "mmpkg tests <mmpkg-tests@example.com>"


@dataclass(frozen=True)
class Built:
    deb: Path
    rpm: Path


@dataclass
class PackageFactory:
    """Builds each (version, edition, arch, options) combination once and remembers it."""

    base: Path
    _cache: dict[tuple[object, ...], Built] = field(default_factory=dict)
    _debs: dict[str, Path] = field(default_factory=dict)

    def tarball(self, version: str, edition: Edition = Edition.ENTERPRISE, arch: Arch = Arch.AMD64) -> Path:
        dest = self.base / "releases"
        dest.mkdir(parents=True, exist_ok=True)
        return write_sample_release(MattermostVersion.parse(version), edition=edition, arch=arch, dest=dest)

    def build(
        self,
        version: str,
        *,
        edition: Edition = Edition.ENTERPRISE,
        arch: Arch = Arch.AMD64,
        revision: int = 1,
        settings: tuple[tuple[str, object], ...] = (),
        compression: Compression = Compression.ZSTD,
    ) -> Built:
        key = (version, edition, arch, revision, settings, compression)
        if key not in self._cache:
            out = self.base / "out" / str(len(self._cache))
            built = build(
                self.tarball(version, edition, arch),
                BuildOptions(
                    maintainer=MAINTAINER,
                    out=out,
                    revision=revision,
                    settings=settings,
                    compression=compression,
                ),
            )
            by_format = {p.id.format: p.path for p in built}
            self._cache[key] = Built(deb=by_format[PackageFormat.DEB], rpm=by_format[PackageFormat.RPM])
        return self._cache[key]

    def deb(self, version: str) -> Path:
        """Only the default .deb of `version`, for tests that need many versions and no rpm."""
        both = self._cache.get((version, Edition.ENTERPRISE, Arch.AMD64, 1, (), Compression.ZSTD))
        if both is not None:
            return both.deb
        if version not in self._debs:
            out = self.base / "out" / f"deb-{len(self._debs)}"
            options = BuildOptions(maintainer=MAINTAINER, out=out, formats=(PackageFormat.DEB,))
            (built,) = build(self.tarball(version), options)
            self._debs[version] = built.path
        return self._debs[version]
