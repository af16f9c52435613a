"""The rpmlib() features an rpm may require, and the first rpm release that provides each.

rpmbuild adds `rpmlib(Feature)` requirements for what the package uses (its payload
compression, file digests, a ~ in a version ...); an rpm older than the feature refuses the
package. A built rpm's requirements are checked against the oldest rpm among the targets, so
that a package some target cannot install is never written.

Each release was read from rpm's own history: the first `rpm-X-release` tag whose
lib/rpmds.c lists the feature among rpmlibProvides. (The version rpmlib() itself carries is
not rpm's: PayloadIsZstd says 5.4.18-1.)
"""

from __future__ import annotations

from collections.abc import Iterable

from mmpkg.errors import CommandError, UsageError
from mmpkg.packaging.formats import PackageFormat
from mmpkg.packaging.targets import Target, of_family

RPMLIB: dict[str, str] = {
    "VersionedDependencies": "4.4",  # 4.4 is the oldest release tag in rpm's history
    "CompressedFileNames": "4.4",
    "PayloadIsBzip2": "4.4",
    "PayloadFilesHavePrefix": "4.4",
    "ExplicitPackageProvide": "4.4",
    "HeaderLoadSortsTags": "4.4",
    "ScriptletInterpreterArgs": "4.4",
    "PartialHardlinkSets": "4.4",
    "ConcurrentAccess": "4.4",
    "BuiltinLuaScripts": "4.4",
    "PayloadIsLzma": "4.6.0",
    "FileDigests": "4.6.0",
    "FileCaps": "4.7.0",
    "PayloadIsXz": "4.7.0",
    "ScriptletExpansion": "4.9.0",
    "TildeInVersions": "4.10.0",
    "LargeFiles": "4.12.0",
    "RichDependencies": "4.13.0",
    "PayloadIsZstd": "4.14.0",
    "CaretInVersions": "4.14.3",  # backported to 4.14.3, then in 4.15.0
    "DynamicBuildRequires": "4.15.0",
}


def features(requires: Iterable[str]) -> list[str]:
    """The rpmlib() feature names among `rpm -qp --requires` lines (`rpmlib(FileDigests) <= 4.6.0-1`)."""
    found = []
    for line in requires:
        name = line.split()[0] if line.strip() else ""
        if name.startswith("rpmlib(") and name.endswith(")"):
            found.append(name[len("rpmlib(") : -1])
    return found


def check(package: str, requires: Iterable[str], targets: Iterable[Target]) -> None:
    """Refuse a package that needs a feature an rpm target lacks, or one mmpkg does not know."""
    rpm_targets = of_family(targets, PackageFormat.RPM)
    for feature in features(requires):
        since = RPMLIB.get(feature)
        if since is None:
            raise CommandError(
                f"{package} requires rpmlib({feature}), which mmpkg does not know: it cannot tell "
                "which --target rpm reads it; build with the rpmbuild of an older release"
            )
        for target in rpm_targets:
            if not target.has(since):
                raise UsageError(
                    f"{package} requires rpmlib({feature}) (rpm {since} or later): {target.describe()} "
                    f"cannot install it; drop {target} from --target"
                )
