"""Inspection reads the tarball once, trusts nothing in it, and says in one line what is wrong."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mmpkg.build.inspect import inspect_release
from mmpkg.cli import main
from mmpkg.errors import ReleaseError
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import elf, write_sample_release

MODEL = "github.com/mattermost/mattermost/server/public/model"

MAINTAINER = "mmpkg tests <mmpkg-tests@example.com>"
Member = tuple[tarfile.TarInfo, bytes | None]
Transform = Callable[[list[Member]], list[Member]]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_release(MattermostVersion.parse("10.5.2"), dest=tmp_path_factory.mktemp("sample"))


def members_of(tarball: Path) -> list[Member]:
    out: list[Member] = []
    with tarfile.open(tarball) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            out.append((info, data))
    return out


def write_tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def variant(sample: Path, tmp_path: Path, transform: Transform, name: str | None = None) -> Path:
    return write_tar(tmp_path / (name or sample.name), transform(members_of(sample)))


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def test_sample_is_accepted_and_extracted(sample: Path, tmp_path: Path) -> None:
    release = inspect_release(sample, extract_to=tmp_path / "x")
    assert (release.version, release.edition, release.arch) == (
        MattermostVersion.parse("10.5.2"),
        Edition.ENTERPRISE,
        Arch.AMD64,
    )
    assert release.file_count > 10 and release.unpacked_bytes > 0
    assert (tmp_path / "x/bin/mattermost").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "x/config/config.json").stat().st_mode & 0o777 == 0o644
    assert release.sha256 == hashlib.sha256(sample.read_bytes()).hexdigest()


def with_go_binary(sample: Path, tmp_path: Path, name: str, **values: str) -> Path:
    """The sample with bin/mattermost replaced by an ELF file carrying `values` the way a Go
    release binary carries its -X values (sample_release/elf.py)."""
    binary = elf.go_binary(values, MODEL, Arch.AMD64, b"", date_time=(1980, 1, 1, 0, 0, 0))

    def swap(members: list[Member]) -> list[Member]:
        out: list[Member] = []
        for info, data in members:
            if info.name == "mattermost/bin/mattermost":
                info.size, data = len(binary), binary
            out.append((info, data))
        return out

    return variant(sample, tmp_path, swap, name)


@pytest.mark.parametrize("extract", [False, True], ids=["inspect", "extract"])
def test_renamed_file_is_recognised_by_its_binarys_symbol_table(
    sample: Path, tmp_path: Path, extract: bool
) -> None:
    renamed = with_go_binary(
        sample, tmp_path, "release.tar.gz", BuildNumber="10.5.2", BuildEnterpriseReady="true"
    )
    release = inspect_release(renamed, extract_to=tmp_path / "x" if extract else None)
    assert str(release.version) == "10.5.2" and release.arch is Arch.AMD64
    assert release.edition is Edition.ENTERPRISE


def test_the_samples_binary_tells_its_version_without_being_run(sample: Path, tmp_path: Path) -> None:
    """The sample's bin/mattermost is stamped as a release build is: renamed, it still says what
    it is, from its symbol table alone."""
    renamed = tmp_path / "release.tar.gz"
    renamed.write_bytes(sample.read_bytes())
    release = inspect_release(renamed)
    assert (str(release.version), release.edition, release.arch) == ("10.5.2", Edition.ENTERPRISE, Arch.AMD64)


def test_a_stripped_binary_leaves_the_name_to_go_by(sample: Path, tmp_path: Path) -> None:
    """A binary built with -s (as some distributions build it) has no symbol table."""
    stripped = with_go_binary(sample, tmp_path, "release.tar.gz")
    with pytest.raises(ReleaseError, match="cannot tell the version"):
        inspect_release(stripped)


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        (
            "mattermost-10.6.0-linux-amd64.tar.gz",
            {"BuildNumber": "10.5.2", "BuildEnterpriseReady": "true"},
            "file name says version 10.6.0 but bin/mattermost is 10.5.2",
        ),
        (
            "Mattermost-10.6.0-Linux-AMD64.tar.gz",
            {"BuildNumber": "10.5.2"},
            "file name says version 10.6.0 but bin/mattermost is 10.5.2",
        ),
        (
            "mattermost-10.5.2-linux-amd64.tar.gz",
            {"BuildNumber": "10.5.2", "BuildEnterpriseReady": "false"},
            "the licence file says enterprise but bin/mattermost is team",
        ),
    ],
)
def test_binary_contradicting_name_or_licence(
    sample: Path, tmp_path: Path, name: str, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ReleaseError, match=message):
        inspect_release(with_go_binary(sample, tmp_path, name, **values))


HOSTILE: list[tuple[str, Transform, str]] = [
    ("outside top dir", lambda m: [*m, entry("other/file")], "outside the single 'mattermost/' top"),
    ("absolute path", lambda m: [*m, entry("/etc/cron.d/evil")], "absolute path"),
    ("dot-dot", lambda m: [*m, entry("mattermost/../evil")], "contains '..'"),
    (
        "symlink escaping",
        lambda m: [*m, entry("mattermost/client/up", tarfile.SYMTYPE, link="../../../etc")],
        "points outside the release",
    ),
    (
        "absolute symlink",
        lambda m: [*m, entry("mattermost/client/abs", tarfile.SYMTYPE, link="/etc/passwd")],
        "points at absolute path",
    ),
    (
        "hard link outside",
        lambda m: [*m, entry("mattermost/client/hard", tarfile.LNKTYPE, link="/etc/passwd")],
        "absolute path",
    ),
    (
        "hard link to nothing",
        lambda m: [*m, entry("mattermost/client/hard", tarfile.LNKTYPE, link="mattermost/missing")],
        "not a file earlier in the archive",
    ),
    ("fifo", lambda m: [*m, entry("mattermost/fifo", tarfile.FIFOTYPE)], "device, fifo"),
    ("device", lambda m: [*m, entry("mattermost/sda", tarfile.BLKTYPE)], "device, fifo"),
    (
        "duplicates disagree",
        lambda m: [*m, entry("mattermost/NOTICE.txt", data=b"something else")],
        "appears twice with different contents",
    ),
    (
        "write through symlink",
        lambda m: [
            *m,
            entry("mattermost/client/lnk", tarfile.SYMTYPE, link="images"),
            entry("mattermost/client/lnk/evil.png"),
        ],
        "through a symlink",
    ),
    (
        "no binary",
        lambda m: [(i, d) for i, d in m if i.name != "mattermost/bin/mattermost"],
        "no mattermost/bin/mattermost",
    ),
    (
        "config not JSON",
        lambda m: (
            [(i, d) for i, d in m if i.name != "mattermost/config/config.json"]
            + [entry("mattermost/config/config.json", data=b"{not json")]
        ),
        "config.json is not valid JSON",
    ),
    (
        "control character",
        lambda m: [*m, entry("mattermost/client/new\nline.css")],
        "control character in its name",
    ),
    (
        "two licences",
        lambda m: [*m, entry("mattermost/MIT-COMPILED-LICENSE.md")],
        "cannot tell the edition",
    ),
]


@pytest.mark.parametrize(("case", "transform", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_tarballs_are_refused(
    sample: Path, tmp_path: Path, case: str, transform: Transform, message: str
) -> None:
    bad = variant(sample, tmp_path, transform)
    dest = tmp_path / "dest"
    with pytest.raises(ReleaseError, match=message):
        inspect_release(bad, extract_to=dest)
    # Nothing was ever written outside the private directory.
    assert not (tmp_path.parent / "evil").exists()
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "mattermost-team-10.5.2-linux-amd64.tar.gz",
            "file name says team edition but the contents are enterprise",
        ),
        ("mattermost-10.5.2-linux-arm64.tar.gz", "file name says arm64 but the contents are for amd64"),
        # Upstream's name with another case or the short suffix still claims what it claims.
        ("MATTERMOST-10.5.2-LINUX-ARM64.TGZ", "file name says arm64 but the contents are for amd64"),
        (
            "MATTERMOST-TEAM-10.5.2-LINUX-AMD64.TGZ",
            "file name says team edition but the contents are enterprise",
        ),
        ("mattermost-10.5.2-linux-arm64.TAR.GZ", "file name says arm64 but the contents are for amd64"),
    ],
)
def test_name_contradicting_contents(sample: Path, tmp_path: Path, name: str, message: str) -> None:
    renamed = tmp_path / name
    renamed.write_bytes(sample.read_bytes())
    with pytest.raises(ReleaseError, match=message):
        inspect_release(renamed)


def test_not_gzip_and_truncated(sample: Path, tmp_path: Path) -> None:
    text = tmp_path / sample.name
    text.write_text("<html>404 Not Found</html>")
    with pytest.raises(ReleaseError, match="not a complete gzip'd tar archive"):
        inspect_release(text)
    data = sample.read_bytes()
    text.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReleaseError, match="not a complete gzip'd tar archive"):
        inspect_release(text, extract_to=tmp_path / "x")


def test_what_the_server_rewrites_is_named(sample: Path, tmp_path: Path) -> None:
    """root.html, then every manifest.json and *.css below client/ (upstream's subpath.go)."""
    extra = [
        entry("mattermost/client/emoji", tarfile.DIRTYPE),
        entry("mattermost/client/emoji/sheet.css"),
        entry("mattermost/client/emoji/manifest.json"),
        entry("mattermost/client/emoji/manifest.json.map"),
        entry("mattermost/client/emoji/sheet.js"),
        entry("mattermost/client/styles.css", tarfile.SYMTYPE, link="emoji/sheet.js"),
        entry("mattermost/templates/mail.css"),
    ]
    release = inspect_release(variant(sample, tmp_path, lambda m: [*m, *extra]), extract_to=tmp_path / "x")
    css = next(n for n in release.rewritten if n.startswith("client/main."))
    assert release.rewritten == (
        "client/root.html",
        "client/emoji/manifest.json",
        "client/emoji/sheet.css",
        "client/emoji/sheet.js",  # written through the link client/styles.css
        css,
        "client/manifest.json",
    )


def test_modes_are_normalised(sample: Path, tmp_path: Path) -> None:
    def dangerous(members: list[Member]) -> list[Member]:
        for info, _ in members:
            if info.name == "mattermost/bin/mmctl":
                info.mode = 0o4777
            elif info.name == "mattermost/NOTICE.txt":
                info.mode = 0o2666
        return members

    bad = variant(sample, tmp_path, dangerous)
    inspect_release(bad, extract_to=tmp_path / "x")
    assert stat.S_IMODE((tmp_path / "x/bin/mmctl").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "x/NOTICE.txt").stat().st_mode) == 0o644


def test_cli_error_is_one_line_and_leaves_no_output(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = variant(sample, tmp_path, lambda m: [*m, entry("/etc/evil")])
    out = tmp_path / "out"
    assert main(["build", str(bad), "--out", str(out), "--maintainer", MAINTAINER]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmpkg: error: ") and "absolute path" in err
    assert not out.exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["build", str(bad), "--out", str(existing), "--maintainer", MAINTAINER]) == 3
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_inspect_cli_json(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", str(sample)]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["version"] == "10.5.2" and facts["edition"] == "enterprise" and facts["arch"] == "amd64"
    assert set(facts) == {
        "version",
        "edition",
        "arch",
        "files",
        "unpacked_bytes",
        "tarball_bytes",
        "tarball_sha256",
        "packages",
    }
    assert facts["tarball_bytes"] == sample.stat().st_size
    assert facts["tarball_sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    with tarfile.open(sample) as tar:
        # Members written twice (upstream's tarball has the shared tree twice) count once.
        sizes = {m.name: m.size for m in tar.getmembers() if m.isfile()}
    assert facts["unpacked_bytes"] == sum(sizes.values())
    assert facts["packages"] == [
        {
            "format": "deb",
            "name": "mattermost",
            "version": "10.5.2-1",
            "arch": "amd64",
            "file": "mattermost_10.5.2-1_amd64.deb",
        },
        {
            "format": "rpm",
            "name": "mattermost",
            "version": "10.5.2-1",
            "arch": "x86_64",
            "file": "mattermost-10.5.2-1.x86_64.rpm",
        },
    ]


def test_inspect_names_the_packages_a_build_would_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team = write_sample_release(
        MattermostVersion.parse("11.0.0-rc1"), edition=Edition.TEAM, arch=Arch.ARM64, dest=tmp_path
    )
    assert main(["inspect", str(team), "--revision", "3", "--json"]) == 0
    packages = json.loads(capsys.readouterr().out)["packages"]
    assert [p["file"] for p in packages] == [
        "mattermost-team_11.0.0~rc1-3_arm64.deb",
        "mattermost-team-11.0.0~rc1-3.aarch64.rpm",
    ]
    assert main(["inspect", str(team)]) == 0
    text = capsys.readouterr().out
    assert "unpacked_bytes:" in text and "tarball_sha256:" in text
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "deb: mattermost-team 11.0.0~rc1-1 arm64 (mattermost-team_11.0.0~rc1-1_arm64.deb)" in lines


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            lambda d: d[: len(d) // 2] + bytes([d[len(d) // 2] ^ 0xFF]) + d[len(d) // 2 + 1 :],
            id="flipped-byte",
        ),
        pytest.param(lambda d: d[:-8] + bytes(8), id="wrong-crc-and-size"),
        pytest.param(lambda d: d + b"garbage after the stream", id="trailing-garbage"),
        pytest.param(lambda d: d + gzip.compress(b"\x00" * 600)[:20], id="cut-second-member"),
    ],
)
def test_damaged_compressed_data(sample: Path, tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    damaged = tmp_path / sample.name
    damaged.write_bytes(damage(sample.read_bytes()))
    with pytest.raises(ReleaseError, match="not a complete gzip'd tar archive"):
        inspect_release(damaged, extract_to=tmp_path / "x")


def test_zero_padding_after_the_stream_is_accepted(sample: Path, tmp_path: Path) -> None:
    """Some copying tools pad a file to a block with zeros; gzip ignores them, and so does this."""
    padded = tmp_path / sample.name
    padded.write_bytes(sample.read_bytes() + bytes(512))
    assert inspect_release(padded).tarball_bytes == sample.stat().st_size + 512
