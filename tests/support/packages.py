"""Sample releases and the packages mmpkg builds from them, made once per test session."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from mmpkg.build.options import BuildOptions
from mmpkg.build.pipeline import build
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import Compression, PackageFormat
from mmpkg.packaging.targets import DEFAULT, Target, parse_targets
from sample_release import write_sample_release

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
    # The `--target` of builds that name none: a test on a Debian 11 root installs packages
    # built for Debian 11 (see conftest's _packages_for_the_root).
    default_targets: tuple[str, ...] = ()
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
        compression: Compression | None = None,
        targets: tuple[str, ...] = (),
    ) -> Built:
        """`compression` None: the best the targets read; `targets` as `--target` names them
        (debian-11, rpm-4.14), none: the defaults."""
        options = BuildOptions(
            maintainer=MAINTAINER,
            revision=revision,
            settings=settings,
            compression=compression,
            target=_target(targets or self.default_targets),
        )
        # By what is built: zstd asked for and zstd chosen for the targets are one package.
        key = (version, edition, arch, revision, settings, options.payloads(), options.target)
        if key not in self._cache:
            out = self.base / "out" / str(len(self._cache))
            built = build(self.tarball(version, edition, arch), replace(options, out=out))
            by_format = {p.id.format: p.path for p in built}
            self._cache[key] = Built(deb=by_format[PackageFormat.DEB], rpm=by_format[PackageFormat.RPM])
        return self._cache[key]

    def deb(self, version: str, targets: tuple[str, ...] = ()) -> Path:
        """Only the .deb of `version` (for `targets`, else the defaults), for tests that need many
        versions and no rpm."""
        target = _target(targets or self.default_targets)
        options = BuildOptions(maintainer=MAINTAINER, formats=(PackageFormat.DEB,), target=target)
        both = self._cache.get(
            (
                version,
                Edition.ENTERPRISE,
                Arch.AMD64,
                1,
                (),
                BuildOptions(maintainer=MAINTAINER, target=target).payloads(),
                target,
            )
        )
        if both is not None:
            return both.deb
        key = f"{version} {','.join(map(str, target))}"
        if key not in self._debs:
            out = self.base / "out" / f"deb-{len(self._debs)}"
            (built,) = build(self.tarball(version), replace(options, out=out))
            self._debs[key] = built.path
        return self._debs[key]


def _target(names: tuple[str, ...]) -> tuple[Target, ...]:
    return parse_targets(names) if names else DEFAULT
