"""Tool tier: real dpkg-deb and rpmbuild builds, read back with the real tools."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.metadata
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

import mmpkg
from mmpkg.backends import BACKENDS
from mmpkg.build.inspect import inspect_release
from mmpkg.build.options import BuildOptions
from mmpkg.build.spec import build_spec
from mmpkg.build.staging import stage_common
from mmpkg.cli import main
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import Compression, PackageFormat
from sample_release.profiles import Profile
from sample_release.tarball import write_sample_release
from tests.support.harness import require
from tests.support.packages import MAINTAINER, PackageFactory

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    require("dpkg-deb", "rpmbuild", "rpm", root=False)


def sh(*argv: str | Path) -> str:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True).stdout


def deb_field(deb: Path, name: str) -> str:
    return sh("dpkg-deb", "--field", deb, name).strip()


def rpm_query(rpm: Path, fmt: str) -> str:
    return sh("rpm", "-qp", "--nosignature", "--queryformat", fmt, rpm)


def deb_members(deb: Path) -> dict[str, tarfile.TarInfo]:
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        return {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}


def deb_file(deb: Path, path: str) -> bytes:
    proc = subprocess.run(
        ["sh", "-c", f'dpkg-deb --fsys-tarfile "$0" | tar -xO ./{path}', str(deb)],
        check=True,
        capture_output=True,
    )
    return proc.stdout


def rpm_file(rpm: Path, path: str) -> bytes:
    """One file of the rpm's payload, as rpm2cpio and cpio unpack it."""
    proc = subprocess.run(
        ["sh", "-c", f'rpm2cpio "$0" | cpio --quiet -i --to-stdout ./{path}', str(rpm)],
        check=True,
        capture_output=True,
    )
    return proc.stdout


def deb_description(deb: Path) -> tuple[str, str]:
    """(summary, extended description) of a .deb, its deb-control(5) formatting undone."""
    first, *rest = deb_field(deb, "Description").split("\n")
    return first, "\n".join("" if line == " ." else line.removeprefix(" ") for line in rest)


def hostile_text(marker: Path) -> str:
    """rpm would expand, run or swallow these if they reached a spec file unescaped."""
    return (
        f"%{{_arch}} %(touch {marker}) %% 100% %{{?foo}} %{{!?bar:baz}} %{{quote:q}} "
        "back\\slash trailing\\ \"dq\" 'sq' $(id) `id`"
    )


def test_names_follow_each_format(packages: PackageFactory) -> None:
    assert packages.build("10.5.2").deb.name == "mattermost_10.5.2-1_amd64.deb"
    assert packages.build("10.5.2").rpm.name == "mattermost-10.5.2-1.x86_64.rpm"
    rc = packages.build("11.0.0-rc1")
    assert (rc.deb.name, rc.rpm.name) == (
        "mattermost_11.0.0~rc1-1_amd64.deb",
        "mattermost-11.0.0~rc1-1.x86_64.rpm",
    )
    team = packages.build("10.5.2", edition=Edition.TEAM, arch=Arch.ARM64, revision=3)
    assert (team.deb.name, team.rpm.name) == (
        "mattermost-team_10.5.2-3_arm64.deb",
        "mattermost-team-10.5.2-3.aarch64.rpm",
    )


def test_deb_metadata(packages: PackageFactory) -> None:
    deb = packages.build("10.5.2").deb
    assert deb_field(deb, "Package") == "mattermost"
    assert deb_field(deb, "Version") == "10.5.2-1"
    assert deb_field(deb, "Architecture") == "amd64"
    # preinst reads config.json with jq before anything is unpacked.
    assert deb_field(deb, "Pre-Depends") == "jq"
    assert deb_field(deb, "Depends") == "curl, passwd, systemd"
    assert deb_field(deb, "Provides") == "mattermost-server"
    assert deb_field(deb, "Conflicts") == deb_field(deb, "Replaces") == "mattermost-team"
    assert deb_field(deb, "Homepage") == "https://mattermost.com"
    assert deb_field(deb, "Section") == "net"
    assert "Enterprise Edition" in deb_field(deb, "Description")
    team = packages.build("10.5.2", edition=Edition.TEAM, arch=Arch.ARM64, revision=3).deb
    assert deb_field(team, "Conflicts") == "mattermost"
    assert deb_field(team, "Architecture") == "arm64"
    assert sh("dpkg-deb", "--info", deb, "conffiles").split() == [
        "/etc/mattermost/mattermost.env",
        "/etc/mattermost/package.conf",
        "/etc/apt/preferences.d/mattermost",
    ]


def test_rpm_metadata(packages: PackageFactory) -> None:
    rpm = packages.build("10.5.2").rpm
    assert rpm_query(rpm, "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}") == (
        "mattermost 10.5.2 1 x86_64 LicenseRef-Mattermost-Enterprise"
    )
    requires = sh("rpm", "-qp", "--nosignature", "--requires", rpm).splitlines()
    named = sorted(r.split()[0] for r in requires if not r.startswith(("rpmlib(", "/bin/sh")))
    assert named == ["curl", "findutils", "gawk", "jq", "jq", "sed", "shadow-utils", "systemd", "util-linux"]
    kinds = rpm_query(rpm, "[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]").splitlines()
    assert {"jq pre", "jq manual", "shadow-utils pre"} <= set(kinds)
    assert "mattermost-server = 10.5.2-1" in sh("rpm", "-qp", "--nosignature", "--provides", rpm)
    assert sh("rpm", "-qp", "--nosignature", "--conflicts", rpm).split() == ["mattermost-team"]
    team = packages.build("10.5.2", edition=Edition.TEAM, arch=Arch.ARM64, revision=3).rpm
    assert rpm_query(team, "%{NAME} %{ARCH} %{LICENSE}") == "mattermost-team aarch64 MIT"
    assert "Release notes: https://docs.mattermost.com/" in rpm_query(rpm, "[%{CHANGELOGTEXT}\n]")


def test_rc_sorts_before_its_release_in_both_tools(packages: PackageFactory) -> None:
    rc, final = packages.build("11.0.0-rc1"), packages.build("10.11.1")
    rc_deb, final_deb = deb_field(rc.deb, "Version"), "11.0.0-1"
    assert subprocess.run(["dpkg", "--compare-versions", rc_deb, "lt", final_deb]).returncode == 0
    assert (
        subprocess.run(
            ["dpkg", "--compare-versions", rc_deb, "gt", deb_field(final.deb, "Version")]
        ).returncode
        == 0
    )
    rc_rpm = rpm_query(rc.rpm, "%{VERSION}-%{RELEASE}")
    lua = f'%{{lua: print(rpm.vercmp("{rc_rpm}", "11.0.0-1"))}}'
    assert sh("rpm", "--eval", lua).strip() == "-1"


def test_installed_layout(packages: PackageFactory) -> None:
    built = packages.build("10.5.2", settings=(("ServiceSettings.SiteURL", "https://chat.example.com"),))
    members = deb_members(built.deb)
    assert members["opt/mattermost/bin/mattermost"].mode == 0o755
    assert members["opt/mattermost/config"].issym()
    assert members["opt/mattermost/config"].linkname == "/etc/mattermost/config"
    assert "etc/mattermost/config.json" not in members
    assert "opt/mattermost/logs" not in members
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert all(not m.mode & 0o7002 for m in members.values() if not m.issym())
    for path in (
        "lib/systemd/system/mattermost.service",
        "etc/mattermost/mattermost.env",
        "usr/share/mattermost/config.defaults.json",
        "usr/sbin/mattermost-pkg",
        "usr/share/doc/mattermost/copyright",
        "usr/share/doc/mattermost/changelog.Debian.gz",
        "usr/share/doc/mattermost/README",
        "opt/mattermost/prepackaged_plugins",
    ):
        assert path in members, path
    overrides = json.loads(deb_file(built.deb, "usr/share/mattermost/overrides.json"))
    assert overrides == {"ServiceSettings": {"SiteURL": "https://chat.example.com"}}
    arm = deb_members(packages.build("10.5.2", edition=Edition.TEAM, arch=Arch.ARM64, revision=3).deb)
    assert "opt/mattermost/prepackaged_plugins" not in arm
    assert "opt/mattermost/MIT-COMPILED-LICENSE.md" in arm

    files = rpm_query(
        built.rpm, "[%{FILENAMES}|%{FILEFLAGS:fflags}|%{FILEUSERNAME}:%{FILEGROUPNAME}|%{FILEMODES:octal}\n]"
    )
    by_path = {line.split("|")[0]: line.split("|")[1:] for line in files.splitlines()}
    assert by_path["/etc/mattermost/config/config.json"][0] == "cng"  # %ghost %config(noreplace)
    assert by_path["/etc/mattermost/config"] == ["", "mattermost:mattermost", "40750"]
    # The older packages' config.json, a link now: still listed, so that rpm never erases it.
    assert by_path["/etc/mattermost/config.json"][0] == "g"
    assert by_path["/etc/mattermost/mattermost.env"][:2] == ["cn", "root:mattermost"]
    assert by_path["/etc/mattermost"] == ["", "root:root", "40755"]
    assert "/usr/lib/systemd/system/mattermost.service" in by_path
    assert "/opt/mattermost/logs" not in by_path


def test_rpm_owns_only_its_own_directories(packages: PackageFactory) -> None:
    """/opt, /etc, /usr/share and the rest belong to Fedora's filesystem package (the unit
    directory to systemd): the rpm lists only directories of its own, so erasing it never
    takes one of them away."""
    rpm = packages.build("10.5.2").rpm
    listed = rpm_query(rpm, "[%{FILEMODES:perms} %{FILENAMES}\n]").splitlines()
    dirs = {line.split(" ", 1)[1] for line in listed if line.startswith("d")}
    own = tuple(
        f"{d}/mattermost" for d in ("/opt", "/etc", "/usr/share", "/usr/share/doc", "/usr/share/licenses")
    )
    assert dirs and all(d in own or d.startswith(tuple(f"{o}/" for o in own)) for d in dirs), sorted(dirs)
    assert "/opt" not in sh("rpm", "-qlp", "--nosignature", rpm).splitlines()


def with_members(tarball: Path, dest: Path, extra: dict[str, bytes]) -> Path:
    """A copy of `tarball` with more files under its top directory."""
    with tarfile.open(tarball) as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            out.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name, data in extra.items():
            info = tarfile.TarInfo(f"mattermost/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            out.addfile(info, io.BytesIO(data))
    return dest


def test_files_the_server_rewrites_are_declared(packages: PackageFactory, tmp_path: Path) -> None:
    """The rpm gives each its group's write access and leaves its content out of rpm -V; the
    deb leaves its checksum out of md5sums. Every file is in the rpm once, nested and oddly
    named ones too."""
    extra = {
        "client/emoji/sheet.css": b"a{background:url(/static/x.png)}",
        "client/emoji/manifest.json": b"{}",
        "client/emoji/sheet.js": b"",
        "client/odd name [1]*.css": b"",
        "client/odd name [1]?.js": b"",
    }
    tarball = with_members(
        packages.tarball("10.5.2"), tmp_path / "mattermost-10.5.2-linux-amd64.tar.gz", extra
    )
    assert main(["build", str(tarball), "--out", str(tmp_path / "out"), "--maintainer", MAINTAINER]) == 0
    deb, rpm = tmp_path / "out/mattermost_10.5.2-1_amd64.deb", tmp_path / "out/mattermost-10.5.2-1.x86_64.rpm"

    fmt = "[%{FILENAMES}|%{FILEUSERNAME}:%{FILEGROUPNAME}|%{FILEMODES:octal}|%{FILEVERIFYFLAGS:hex}\n]"
    by_path = {line.split("|")[0]: line.split("|")[1:] for line in rpm_query(rpm, fmt).splitlines()}
    client = "/opt/mattermost/client"
    rewritten = {f"{client}/root.html", f"{client}/manifest.json", f"{client}/emoji/manifest.json"}
    rewritten |= {f"{client}/emoji/sheet.css", f"{client}/odd name [1]*.css"}
    rewritten |= {p for p in by_path if p.startswith(f"{client}/main.") and p.endswith(".css")}
    assert len(rewritten) == 6
    for path in rewritten:
        owner, mode, verify = by_path[path]
        assert (owner, mode) == ("root:mattermost", "100664"), path
        # Every check but rpm's RPMVERIFY_FILEDIGEST (1), _FILESIZE (2) and _MTIME (32).
        assert int(verify, 16) == 0xFFFFFFFF & ~(1 | 2 | 32), (path, verify)
    for path, (owner, _, verify) in by_path.items():
        if path not in rewritten and path.startswith("/opt/"):
            assert owner == "root:root" and int(verify, 16) == 0xFFFFFFFF, (path, owner, verify)

    # The same tree in both packages, and only the rewritten files without a checksum.
    listed = rpm_query(rpm, "[%{FILENAMES}\n]").splitlines()
    assert len(listed) == len(set(listed))
    deb_paths = {f"/{name}" for name in deb_members(deb)}
    assert {p for p in deb_paths if p.startswith("/opt/")} == {p for p in listed if p.startswith("/opt/")}
    md5sums = {line.split("  ", 1)[1] for line in sh("dpkg-deb", "--info", deb, "md5sums").splitlines()}
    deb_files = {n for n, m in deb_members(deb).items() if m.isfile()}
    assert deb_files - md5sums == {p.lstrip("/") for p in rewritten}


def test_md5sums_match_the_payload(packages: PackageFactory, tmp_path: Path) -> None:
    """The release's checksums are taken while it is unpacked, the rest from the staged tree:
    md5sum(1) checks every line against the files dpkg-deb unpacks."""
    extra = {"client/dir/chunk.js": b"x", "client/a name with spaces.js": b"y"}
    tarball = with_members(
        packages.tarball("10.5.2"), tmp_path / "mattermost-10.5.2-linux-amd64.tar.gz", extra
    )
    assert main(["build", str(tarball), "--out", str(tmp_path / "out"), "--maintainer", MAINTAINER]) == 0
    deb = tmp_path / "out/mattermost_10.5.2-1_amd64.deb"
    tree = tmp_path / "tree"
    sh("dpkg-deb", "-x", deb, tree)
    md5sums = sh("dpkg-deb", "--info", deb, "md5sums")
    assert len(md5sums.splitlines()) > 20
    checked = subprocess.run(
        ["md5sum", "--check", "--strict", "-"], cwd=tree, input=md5sums, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "opt/mattermost/client/dir/chunk.js" in md5sums and "usr/share/doc/mattermost/copyright" in md5sums


def test_changelog_copyright_and_readme(packages: PackageFactory, tmp_path: Path) -> None:
    require("dpkg-parsechangelog", root=False)
    out = tmp_path / "out"
    maintainer = ["--maintainer", "Example IT <packages@example.com>"]
    assert main(["build", str(packages.tarball("10.11.1")), "--out", str(out), *maintainer]) == 0
    deb, rpm = out / "mattermost_10.11.1-1_amd64.deb", out / "mattermost-10.11.1-1.x86_64.rpm"
    notes = "https://docs.mattermost.com/product-overview/mattermost-v10-changelog.html"

    changelog = tmp_path / "changelog"
    changelog.write_bytes(gzip.decompress(deb_file(deb, "usr/share/doc/mattermost/changelog.Debian.gz")))
    parsed = {
        field: sh("dpkg-parsechangelog", "-l", changelog, "-S", field).strip()
        for field in ("Source", "Version", "Maintainer", "Changes")
    }
    assert parsed["Source"] == "mattermost"
    assert parsed["Version"] == "10.11.1-1"
    assert parsed["Maintainer"] == "Example IT <packages@example.com>"
    assert notes in parsed["Changes"]
    rpm_log = rpm_query(rpm, "[%{CHANGELOGNAME}\n%{CHANGELOGTEXT}\n]")
    assert rpm_log.startswith("Example IT <packages@example.com> - 10.11.1-1\n")
    assert notes in rpm_log

    copyright_text = deb_file(deb, "usr/share/doc/mattermost/copyright").decode()
    assert copyright_text.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    )
    readme = deb_file(deb, "usr/share/doc/mattermost/README").decode()
    for link in (
        "deploy-linux.html",
        "upgrading-mattermost-server.html",
        "configuration-settings.html",
        notes,
    ):
        assert link in readme, link
    assert "/etc/mattermost/config.json" in readme
    docs = rpm_query(rpm, "[%{FILENAMES} %{FILEFLAGS:fflags}\n]")
    assert "/usr/share/doc/mattermost/README d" in docs.splitlines()
    assert any(line.endswith(" l") for line in docs.splitlines())  # the licence file, as %license


def test_reproducible(packages: PackageFactory, tmp_path: Path) -> None:
    tarball = packages.tarball("10.5.2")
    outputs = []
    for name in ("one", "two"):
        if name == "two":
            # A different wall-clock second: anything stamped with the time of the build differs.
            time.sleep(1.1)
        assert main(["build", str(tarball), "--out", str(tmp_path / name), "--maintainer", MAINTAINER]) == 0
        outputs.append(sorted((tmp_path / name).iterdir()))
    for first, second in zip(*outputs, strict=True):
        assert first.name == second.name
        assert first.read_bytes() == second.read_bytes(), first.name


def test_reproducible_on_a_machine_with_one_cpu(tmp_path: Path) -> None:
    """The packages do not depend on how many processors built them: a compressor that uses
    worker threads only when there are several CPUs frames its output differently."""
    require("unshare", "mount", root=True)
    # Enough payload for several of zstd's jobs (a few MiB each at level 3).
    bulk = Profile("several-jobs", unpacked=40_000_000, files=40, plugins=2)
    tarball = write_sample_release(MattermostVersion.parse("10.5.2"), dest=tmp_path, profile=bulk)
    one_cpu = tmp_path / "online"
    one_cpu.write_text("0\n")  # what sysconf(_SC_NPROCESSORS_ONLN) reads on a 1-CPU machine
    build = [sys.executable, "-m", "mmpkg", "-q", "build", str(tarball), "--maintainer", MAINTAINER]
    script = 'mount --bind "$0" /sys/devices/system/cpu/online && getconf _NPROCESSORS_ONLN && exec "$@"'
    seen = sh("unshare", "--mount", "sh", "-c", script, one_cpu, *build, "--out", tmp_path / "one")
    assert seen.split()[0] == "1"
    sh(*build, "--out", tmp_path / "many")
    one, many = sorted((tmp_path / "one").iterdir()), sorted((tmp_path / "many").iterdir())
    assert [p.name for p in one] == [p.name for p in many]
    for a, b in zip(one, many, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_source_date_epoch_from_the_environment(
    packages: PackageFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out = tmp_path / "out"
    assert (
        main(["build", str(packages.tarball("10.5.2")), "--out", str(out), "--maintainer", MAINTAINER]) == 0
    )
    deb, rpm = out / "mattermost_10.5.2-1_amd64.deb", out / "mattermost-10.5.2-1.x86_64.rpm"
    assert {m.mtime for m in deb_members(deb).values()} == {1_700_000_000}
    assert rpm_query(rpm, "%{BUILDTIME}") == "1700000000"
    assert set(rpm_query(rpm, "[%{FILEMTIMES}\n]").split()) == {"1700000000"}


@pytest.mark.parametrize(
    ("compression", "deb_member", "rpm_compressor"),
    [
        (Compression.ZSTD, "data.tar.zst", "zstd"),
        (Compression.XZ, "data.tar.xz", "xz"),
        (Compression.GZIP, "data.tar.gz", "gzip"),
    ],
)
def test_compression(
    packages: PackageFactory, compression: Compression, deb_member: str, rpm_compressor: str
) -> None:
    built = packages.build("10.5.2", compression=compression)
    assert deb_member in sh("ar", "t", built.deb).split()
    assert rpm_query(built.rpm, "%{PAYLOADCOMPRESSOR}") == rpm_compressor


def test_build_failure_leaves_nothing(
    packages: PackageFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tarball = packages.tarball("10.5.2")
    out = tmp_path / "out"
    # A setting that cannot nest makes the build fail after inspection has already unpacked files.
    argv = ["build", str(tarball), "--out", str(out), "--maintainer", MAINTAINER]
    code = main([*argv, "--allow-unknown-settings", "--set", "A.B=1", "--set", "A.B.C=2"])
    assert code == 2
    assert "A.B.C" in capsys.readouterr().err
    assert not out.exists()


def test_hostile_build_values_reach_both_packages_literally(packages: PackageFactory, tmp_path: Path) -> None:
    """A maintainer and --set values full of rpm macro syntax: nothing expands, nothing runs."""
    require("rpm2cpio", "cpio", "dpkg-parsechangelog", root=False)
    marker = tmp_path / "PWNED"
    maintainer = f"Chat Team {hostile_text(marker)} <ops@example.com>"
    site_name = f"{hostile_text(marker)}\nsecond line %{{_arch}}\n%files\n# not a comment"
    out = tmp_path / "out"
    argv = ["build", str(packages.tarball("10.11.1")), "--out", str(out), "--maintainer", maintainer]
    argv += ["--set", f"TeamSettings.SiteName={site_name}", "--set", "TeamSettings.CustomBrandText=%{_arch}"]
    assert main(argv) == 0
    deb, rpm = out / "mattermost_10.11.1-1_amd64.deb", out / "mattermost-10.11.1-1.x86_64.rpm"

    assert rpm_query(rpm, "%{PACKAGER}") == maintainer == deb_field(deb, "Maintainer")
    changelog = tmp_path / "changelog"
    changelog.write_bytes(gzip.decompress(deb_file(deb, "usr/share/doc/mattermost/changelog.Debian.gz")))
    assert sh("dpkg-parsechangelog", "-l", changelog, "-S", "Maintainer").strip() == maintainer
    header = sh("rpm", "-qp", "--nosignature", "--changelog", rpm).splitlines()[0]
    assert header.endswith(f" {maintainer} - 10.11.1-1"), header

    overrides = {"TeamSettings": {"SiteName": site_name, "CustomBrandText": "%{_arch}"}}
    path = "usr/share/mattermost/overrides.json"
    assert json.loads(rpm_file(rpm, path)) == overrides == json.loads(deb_file(deb, path))

    # rpmbuild is given paths inside the output directory, whatever its name.
    odd = tmp_path / f"out %{{_arch}} %(touch {marker}-out)"
    assert main([*argv[:3], str(odd), *argv[4:]]) == 0
    assert [(p.name, p.read_bytes()) for p in sorted(odd.iterdir())] == [
        (p.name, p.read_bytes()) for p in sorted(out.iterdir())
    ]
    assert not list(tmp_path.glob("PWNED*"))


def test_hostile_model_text_reaches_both_packages_literally(packages: PackageFactory, tmp_path: Path) -> None:
    """Summary and description go into the spec's header and %description as they are."""
    marker = tmp_path / "PWNED"
    summary = f"Chat {hostile_text(marker)}"
    description = "\n".join(
        [
            f"First line {hostile_text(marker)}",
            "second line, 100% %%literal%% and %{?foo}",
            " %files after a space is text, not a section",
            "",
            "  an indented line",
            "- a dash and * a star",
            "* a star at the start",
            "the last line ends in a backslash\\",
        ]
    )
    work = tmp_path / "work"
    release = inspect_release(packages.tarball("10.5.2"), extract_to=work / "release")
    spec = build_spec(release, BuildOptions(maintainer=MAINTAINER))
    spec = dataclasses.replace(spec, summary=summary, description=description)
    common = stage_common(spec, work / "release", work / "common")
    roots = {fmt: BACKENDS[fmt].stage(spec, common, work / fmt) for fmt in PackageFormat}
    deb, rpm = (BACKENDS[fmt].package(spec, roots[fmt], work / fmt) for fmt in PackageFormat)

    assert rpm_query(rpm, "%{SUMMARY}") == summary
    assert rpm_query(rpm, "%{DESCRIPTION}") == description
    assert deb_description(deb) == (summary, description)
    assert not list(tmp_path.glob("PWNED*"))


def test_build_json_describes_each_package(
    packages: PackageFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["build", str(packages.tarball("10.5.2")), "--out", str(out), "--maintainer", MAINTAINER]
    assert main([*argv, "--revision", "2", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert [b["format"] for b in built] == ["deb", "rpm"]
    for entry in built:
        assert set(entry) == {"format", "name", "version", "arch", "path", "size", "sha256"}
        path = Path(entry["path"])
        assert path.parent == out and path.is_file()
        assert entry["size"] == path.stat().st_size
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    deb, rpm = (Path(b["path"]) for b in built)
    assert [built[0][k] for k in ("name", "version", "arch")] == [
        deb_field(deb, f) for f in ("Package", "Version", "Architecture")
    ]
    assert [built[1][k] for k in ("name", "version", "arch")] == rpm_query(
        rpm, "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}"
    ).split()


def test_packages_record_the_mmpkg_that_built_them(packages: PackageFactory, tmp_path: Path) -> None:
    """So that an administrator can tell a packaging fix from an upstream release."""
    built = packages.build("10.5.2")
    by = f"mmpkg {mmpkg.__version__}"
    assert deb_field(built.deb, "Mmpkg-Version") == mmpkg.__version__
    changelog = gzip.decompress(deb_file(built.deb, "usr/share/doc/mattermost/changelog.Debian.gz")).decode()
    assert f"packaged by {by} from" in " ".join(changelog.split())
    rpm_log = sh("rpm", "-qp", "--nosignature", "--changelog", built.rpm)
    assert f"packaged by {by} from" in " ".join(rpm_log.split())


def test_the_version_is_single_sourced() -> None:
    assert importlib.metadata.version("mmpkg") == mmpkg.__version__
