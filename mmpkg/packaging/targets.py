"""The distributions a package must install on, and what each one's tools can read.

DISTRIBUTIONS is the one table of target distributions: the version of each tool the package
meets there, with where it was read. PAYLOADS is the one table of what each payload compression
needs from dpkg or rpm. From the two follow the default targets, the compression a build picks,
its refusal of one a target cannot read, and the README's compatibility table (mmpkg/docs.py).

Rocky Linux, AlmaLinux and Oracle Linux rebuild RHEL package for package: they are the RHEL
row of the same major version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from packaging.version import Version

from mmpkg.errors import UsageError
from mmpkg.packaging.formats import Compression, PackageFormat

# The program that unpacks a format's payload, and so decides what the package may use.
UNPACKER = {PackageFormat.DEB: "dpkg", PackageFormat.RPM: "rpm"}


@dataclass(frozen=True, kw_only=True)
class Vendor:
    key: str  # the first part of a target's name: debian-12
    label: str
    # Where a package's version in a release is read: {release}, {suite}, {package} filled in.
    source: str
    support: str  # where the vendor says until when a release is supported


DEBIAN = Vendor(
    key="debian",
    label="Debian",
    source="https://packages.debian.org/{suite}/{package}",
    support="https://wiki.debian.org/LTS",
)
UBUNTU = Vendor(
    key="ubuntu",
    label="Ubuntu",
    source="https://launchpad.net/ubuntu/{suite}/+source/{package}",
    support="https://ubuntu.com/about/release-cycle",
)
RHEL = Vendor(
    key="rhel",
    label="RHEL",
    source="https://docs.redhat.com/en/documentation/red_hat_enterprise_linux/{release}/html/package_manifest/",
    support="https://access.redhat.com/support/policy/updates/errata",
)


@dataclass(frozen=True, kw_only=True)
class Distribution:
    vendor: Vendor
    release: str
    suite: str  # Debian's and Ubuntu's codename; "" for RHEL
    family: PackageFormat
    # (package, version as the release ships it, without the packaging revision). Debian
    # also ships rpm and dnf, which read rpm packages as RHEL's do.
    tools: tuple[tuple[str, str], ...]
    systemd: str
    postgresql: str  # the release's own PostgreSQL major version
    postgresql_note: str = ""
    supported_until: date  # the end of the vendor's support, LTS included
    # Compressions the family's unpacker reads although its upstream version would not: the
    # vendor patched it (with where the patch is recorded).
    patched: tuple[Compression, ...] = ()
    patch_source: str = ""

    @property
    def name(self) -> str:
        return f"{self.vendor.key}-{self.release}"

    @property
    def label(self) -> str:
        return f"{self.vendor.label} {self.release}" + (f" ({self.suite})" if self.suite else "")

    def version(self, package: str) -> str:
        return dict(self.tools)[package]

    def source(self, package: str = "<package>") -> str:
        return self.vendor.source.format(release=self.release, suite=self.suite, package=package)

    @property
    def target(self) -> Target:
        unpacker = UNPACKER[self.family]
        return Target(
            name=self.name, family=self.family, version=self.version(unpacker), patched=self.patched
        )


def _debian(release: str, suite: str, *, until: date, **versions: str) -> Distribution:
    systemd, postgresql = versions.pop("systemd"), versions.pop("postgresql")
    return Distribution(
        vendor=DEBIAN,
        release=release,
        suite=suite,
        family=PackageFormat.DEB,
        tools=tuple(versions.items()),
        systemd=systemd,
        postgresql=postgresql,
        supported_until=until,
    )


# Debian's rows were read from the archive's Packages indices (each suite's main component:
# the version of its latest point release); Ubuntu's and RHEL's from the sources named.
DISTRIBUTIONS: tuple[Distribution, ...] = (
    _debian(
        "11", "bullseye", until=date(2026, 8, 31),
        dpkg="1.20.13", apt="2.2.4", rpm="4.16.1.2", dnf="4.5.2", systemd="247.3", postgresql="13",
    ),
    _debian(
        "12", "bookworm", until=date(2028, 6, 30),
        dpkg="1.21.23", apt="2.6.1", rpm="4.18.0", dnf="4.14.0", systemd="252.39", postgresql="15",
    ),
    _debian(
        "13", "trixie", until=date(2030, 6, 30),
        dpkg="1.22.22", apt="3.0.4", rpm="4.20.1", dnf="4.23.0", systemd="257.13", postgresql="17",
    ),
    Distribution(
        vendor=UBUNTU,
        release="22.04",
        suite="jammy",
        family=PackageFormat.DEB,
        tools=(("dpkg", "1.21.1ubuntu2"), ("apt", "2.4")),
        systemd="249",
        postgresql="14",
        supported_until=date(2027, 4, 30),
        # Ubuntu's dpkg has read zstd since 1.19.0.5ubuntu2 (18.04), before upstream's 1.21.18.
        patched=(Compression.ZSTD,),
        patch_source="https://launchpad.net/ubuntu/+source/dpkg/1.19.0.5ubuntu2",
    ),
    Distribution(
        vendor=UBUNTU,
        release="24.04",
        suite="noble",
        family=PackageFormat.DEB,
        tools=(("dpkg", "1.22.6ubuntu6"), ("apt", "2.8")),
        systemd="255",
        postgresql="16",
        supported_until=date(2029, 4, 30),
    ),
    Distribution(
        vendor=RHEL,
        release="8",
        suite="",
        family=PackageFormat.RPM,
        # Its rpm reads zstd from 4.14.2-26 (RHEL 8.2) on: "Re-enable support for zstd".
        tools=(("rpm", "4.14.3"), ("dnf", "4.7")),
        systemd="239",
        postgresql="10",
        postgresql_note="module streams up to 16",
        supported_until=date(2029, 5, 31),
    ),
    Distribution(
        vendor=RHEL,
        release="9",
        suite="",
        family=PackageFormat.RPM,
        tools=(("rpm", "4.16.1.3"), ("dnf", "4.14.0")),
        systemd="252",
        postgresql="13",
        postgresql_note="module streams up to 16",
        supported_until=date(2032, 5, 31),
    ),
    Distribution(
        vendor=RHEL,
        release="10",
        suite="",
        family=PackageFormat.RPM,
        tools=(("rpm", "4.19.1.1"), ("dnf", "4.20")),
        systemd="257",
        postgresql="16",
        supported_until=date(2035, 5, 31),
    ),
)  # fmt: skip
BY_NAME = {d.name: d for d in DISTRIBUTIONS}


@dataclass(frozen=True, kw_only=True)
class Payload:
    """What a compression of a format's payload needs: the unpacker's upstream version."""

    format: PackageFormat
    compression: Compression
    since: str
    source: str


PAYLOADS: tuple[Payload, ...] = (
    Payload(
        format=PackageFormat.DEB,
        compression=Compression.ZSTD,
        since="1.21.18",
        source="dpkg 1.21.18 changelog: zstd support in dpkg-deb (Debian #892664)",
    ),
    Payload(
        format=PackageFormat.DEB,
        compression=Compression.XZ,
        since="1.15.6",
        source="dpkg 1.15.6 changelog: xz support in dpkg-deb",
    ),
    Payload(
        format=PackageFormat.DEB,
        compression=Compression.GZIP,
        since="0",
        source="deb(5): the format's original compression",
    ),
    Payload(
        format=PackageFormat.RPM,
        compression=Compression.ZSTD,
        since="4.14.0",
        source="rpm's git: rpm-4.14.0-release is the first to provide rpmlib(PayloadIsZstd)",
    ),
    Payload(
        format=PackageFormat.RPM,
        compression=Compression.XZ,
        since="4.7.0",
        source="rpm's git: rpm-4.7.0-release is the first to provide rpmlib(PayloadIsXz)",
    ),
    Payload(
        format=PackageFormat.RPM,
        compression=Compression.GZIP,
        since="0",
        source="rpm's original payload compression: no rpmlib() requirement",
    ),
)
NEEDS = {(p.format, p.compression): p for p in PAYLOADS}


def upstream_version(text: str) -> Version:
    """The upstream part of a distribution's version (1.21.1ubuntu2: 1.21.1), to compare."""
    match = re.match(r"\d+(\.\d+)*", text)
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return Version(match.group())


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a package must be readable by: a distribution's unpacker, or a minimum version of it."""

    name: str
    family: PackageFormat
    version: str  # of UNPACKER[family]
    patched: tuple[Compression, ...] = field(default=())

    def __str__(self) -> str:
        return self.name

    @property
    def unpacker(self) -> str:
        return UNPACKER[self.family]

    def describe(self) -> str:
        return f"{self.name} ({self.unpacker} {self.version})"

    def has(self, since: str) -> bool:
        """Whether its unpacker is upstream's `since` or later."""
        return upstream_version(self.version) >= upstream_version(since)

    def reads(self, compression: Compression) -> bool:
        return compression in self.patched or self.has(NEEDS[self.family, compression].since)


# Targets named by the unpacker's least version instead of a distribution: dpkg-1.20, rpm-4.14.
_MINIMUM = re.compile(r"(?P<tool>dpkg|rpm)-(?P<version>\d+(\.\d+)*)")
FAMILY_OF = {tool: family for family, tool in UNPACKER.items()}

# The default of each family: for each vendor, its oldest release still supported on this date.
# A fixed date, not the clock: the same mmpkg builds the same packages; a new mmpkg moves it.
DEFAULT_AS_OF = date(2026, 12, 7)


def _defaults() -> tuple[Target, ...]:
    chosen: dict[str, Distribution] = {}
    for d in DISTRIBUTIONS:
        if d.supported_until >= DEFAULT_AS_OF and d.vendor.key not in chosen:
            chosen[d.vendor.key] = d
    return tuple(d.target for d in chosen.values())


DEFAULT = _defaults()


def parse_targets(value: object) -> tuple[Target, ...]:
    """`--target` or the file's `target`: names, comma-separated or a list."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("expected a list such as debian-12,rhel-9")
    targets: list[Target] = []
    for item in (str(i).strip() for i in items):
        target = _target(item)
        if target not in targets:
            targets.append(target)
    return tuple(targets)


def _target(name: str) -> Target:
    if name in BY_NAME:
        return BY_NAME[name].target
    match = _MINIMUM.fullmatch(name)
    if match:
        family = FAMILY_OF[match["tool"]]
        return Target(name=name, family=family, version=match["version"])
    raise ValueError(f"unknown target {name!r}: known are {', '.join(BY_NAME)}, dpkg-VERSION and rpm-VERSION")


def of_family(targets: Iterable[Target], family: PackageFormat) -> tuple[Target, ...]:
    """The targets of one format; where none was given, that format's defaults."""
    given = tuple(t for t in targets if t.family is family)
    return given or tuple(t for t in DEFAULT if t.family is family)


def best(targets: Iterable[Target], family: PackageFormat) -> Compression:
    """The first compression (in Compression's order) that every target of the family reads;
    gzip is read by all."""
    chosen = of_family(targets, family)
    return next(c for c in Compression if all(t.reads(c) for t in chosen))


def compressions(
    targets: Iterable[Target], formats: Iterable[PackageFormat], given: Compression | None
) -> tuple[tuple[PackageFormat, Compression], ...]:
    """Each format's payload compression: `given` if every target of the format reads it (else a
    UsageError naming the target), the best they all read if none was given."""
    targets = tuple(targets)
    chosen = []
    for family in formats:
        if given is not None:
            for target in of_family(targets, family):
                if not target.reads(given):
                    raise UsageError(
                        f"--compression {given}: {target.describe()} cannot read {given} .{family} payloads; "
                        f"use --compression {best(targets, family)} or drop {target} from --target"
                    )
        chosen.append((family, given or best(targets, family)))
    return tuple(chosen)
