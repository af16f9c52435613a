"""Build targets: the distributions a package must install on decide its payload compression, and
refuse what one of them cannot read, before anything is written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mmpkg.build.options import BuildOptions, load_file
from mmpkg.errors import CommandError, UsageError
from mmpkg.packaging import rpmlib
from mmpkg.packaging.formats import Compression, PackageFormat
from mmpkg.packaging.targets import BY_NAME, DEFAULT, DISTRIBUTIONS, PAYLOADS, parse_targets, upstream_version
from tests.support.cli_runner import runner
from tests.support.packages import MAINTAINER, PackageFactory

DEB, RPM = PackageFormat.DEB, PackageFormat.RPM
ZSTD, XZ, GZIP = Compression.ZSTD, Compression.XZ, Compression.GZIP


def payloads(*names: str, compression: Compression | None = None) -> dict[PackageFormat, Compression]:
    target = parse_targets(list(names)) if names else DEFAULT
    return dict(BuildOptions(maintainer=MAINTAINER, target=target, compression=compression).payloads())


def test_the_default_is_each_vendors_oldest_release_still_supported() -> None:
    assert [t.name for t in DEFAULT] == ["debian-12", "ubuntu-22.04", "rhel-8"]


@pytest.mark.parametrize(
    ("names", "deb", "rpm"),
    [
        ((), ZSTD, ZSTD),
        (("debian-11",), XZ, ZSTD),  # the .rpm keeps its default, rhel-8
        (("debian-11", "debian-13"), XZ, ZSTD),
        (("dpkg-1.20",), XZ, ZSTD),
        (("dpkg-1.21.18",), ZSTD, ZSTD),
        (("dpkg-1.15",), GZIP, ZSTD),
        # Ubuntu's dpkg 1.21.1 is older than upstream's zstd, but patched to read it.
        (("ubuntu-22.04",), ZSTD, ZSTD),
        (("rhel-8",), ZSTD, ZSTD),
        (("rpm-4.13",), ZSTD, XZ),
        (("rpm-4.6",), ZSTD, GZIP),
        (("debian-11", "rpm-4.11"), XZ, XZ),
    ],
)
def test_each_format_gets_the_best_compression_all_its_targets_read(
    names: tuple[str, ...], deb: Compression, rpm: Compression
) -> None:
    assert payloads(*names) == {DEB: deb, RPM: rpm}


def test_a_compression_every_target_reads_is_taken() -> None:
    assert payloads("debian-11", compression=GZIP) == {DEB: GZIP, RPM: GZIP}


def test_a_compression_a_target_cannot_read_is_refused_naming_the_target_and_the_option() -> None:
    with pytest.raises(UsageError) as refused:
        payloads("debian-11", compression=ZSTD)
    assert str(refused.value) == (
        "--compression zstd: debian-11 (dpkg 1.20.13) cannot read zstd .deb payloads; "
        "use --compression xz or drop debian-11 from --target"
    )


def test_only_the_formats_built_are_checked() -> None:
    options = BuildOptions(
        maintainer=MAINTAINER, formats=(RPM,), target=parse_targets("debian-11"), compression=ZSTD
    )
    assert options.payloads() == ((RPM, ZSTD),)


def test_every_row_has_comparable_versions_and_a_source() -> None:
    for d in DISTRIBUTIONS:
        for _, version in d.tools:
            upstream_version(version)
        assert d.source().startswith("https://"), d.name
        assert d.target.version == d.version("dpkg" if d.family is DEB else "rpm")
    for p in PAYLOADS:
        assert p.source, p


def test_the_target_key_of_the_build_file(tmp_path: Path) -> None:
    config = tmp_path / "build.toml"
    config.write_text('target = ["debian-11", "rpm-4.14"]\n', encoding="utf-8")
    assert load_file(config)["target"] == (BY_NAME["debian-11"].target, parse_targets("rpm-4.14")[0])


# -- through the command line ------------------------------------------------------------------


def test_refused_compression_is_one_line_and_exit_code_2(
    packages: PackageFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = runner(capsys)(
        "build", packages.tarball("10.5.2"), "--out", out, "--maintainer", MAINTAINER,
        "--target", "debian-11", "--compression", "zstd",
    )  # fmt: skip
    assert (code, stdout) == (2, "")
    assert stderr == (
        "mmpkg: error: --compression zstd: debian-11 (dpkg 1.20.13) cannot read zstd .deb payloads; "
        "use --compression xz or drop debian-11 from --target\n"
    )
    assert not out.exists()


def test_an_unknown_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = runner(capsys)("build", "/nonexistent.tar.gz", "--target", "debian-10")
    assert code == 2
    assert stderr.startswith("mmpkg: error: --target: unknown target 'debian-10': known are debian-11,")
    assert stderr.count("\n") == 1


# -- real packages -----------------------------------------------------------------------------


def sh(*argv: str | Path) -> str:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True).stdout


def test_a_debian_11_target_gives_an_xz_deb_and_the_default_a_zstd_one(packages: PackageFactory) -> None:
    old = packages.build("10.5.2", targets=("debian-11",))
    assert "data.tar.xz" in sh("ar", "t", old.deb).split()
    # The rpm's default target, rhel-8, reads zstd.
    assert sh("rpm", "-qp", "--qf", "%{PAYLOADCOMPRESSOR}", old.rpm) == "zstd"
    new = packages.build("10.5.2")
    assert "data.tar.zst" in sh("ar", "t", new.deb).split()


def test_the_default_rpms_rpmlib_needs_are_known_and_met_by_every_rpm_target(
    packages: PackageFactory,
) -> None:
    needs = rpmlib.features(sh("rpm", "-qp", "--requires", packages.build("10.5.2").rpm).splitlines())
    assert "PayloadIsZstd" in needs
    rpm_targets = [d.target for d in DISTRIBUTIONS if d.family is RPM]
    for feature in needs:
        assert all(t.has(rpmlib.RPMLIB[feature]) for t in rpm_targets), feature


def test_an_rpmlib_feature_a_target_lacks_is_refused_and_nothing_is_left(
    packages: PackageFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """11.0.0-rc1 is 11.0.0~rc1 in the rpm: rpmbuild adds rpmlib(TildeInVersions), rpm 4.10's."""
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, stderr = runner(capsys)(
        "build", packages.tarball("11.0.0-rc1"), "--out", out, "--maintainer", MAINTAINER,
        "--target", "rpm-4.9",
    )  # fmt: skip
    assert (code, stdout) == (2, "")
    assert stderr == (
        "mmpkg: error: mattermost-11.0.0~rc1-1.x86_64.rpm requires rpmlib(TildeInVersions) "
        "(rpm 4.10.0 or later): rpm-4.9 (rpm 4.9) cannot install it; drop rpm-4.9 from --target\n"
    )
    assert list(out.iterdir()) == []


def test_an_rpmlib_feature_mmpkg_does_not_know_is_refused_naming_it(
    packages: PackageFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As an rpmbuild newer than mmpkg's table would add one: here a known one taken out of it."""
    monkeypatch.delitem(rpmlib.RPMLIB, "FileDigests")
    out = tmp_path / "out"
    out.mkdir()
    code, _, stderr = runner(capsys)(
        "build", packages.tarball("10.5.2"), "--out", out, "--maintainer", MAINTAINER, "--formats", "rpm"
    )
    assert code == CommandError.exit_code
    assert "requires rpmlib(FileDigests), which mmpkg does not know" in stderr
    assert stderr.count("\n") == 1
    assert list(out.iterdir()) == []


def test_rpmlib_requirements_are_read_from_rpms_own_listing() -> None:
    lines = ["jq", "rpmlib(CompressedFileNames) <= 3.0.4-1", "rpmlib(PayloadIsZstd) <= 5.4.18-1", ""]
    assert rpmlib.features(lines) == ["CompressedFileNames", "PayloadIsZstd"]
    with pytest.raises(UsageError, match=r"rpm-4\.13 \(rpm 4\.13\) cannot install it"):
        rpmlib.check("x.rpm", lines, parse_targets("rpm-4.13"))
    rpmlib.check("x.rpm", lines, parse_targets("rhel-8"))
