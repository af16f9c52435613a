"""A replica of Mattermost's own `mattermost` deb (deb.packages.mattermost.com), for tests of
the move from it to this project's package and back.

Built the way upstream's Makefile builds it (mattermost/mattermost-omnibus, `Makefile`, target
`mattermost_$(version)-$(revision).deb`, at commit `COMMIT`): the release tarball unpacked into
`/opt/mattermost`, `config/config.json` renamed to `config/config.defaults.json`, links
`/usr/bin/{mattermost,platform,mmctl}`, the unit `mattermost/files/mattermost.service` in
`/lib/systemd/system`, and `mattermost/DEBIAN/` with `%%version%%` and `%%arch%%` filled in by
the same `sed`. The maintainer scripts and the unit in `tests/official/` are upstream's files
byte for byte (`BLOBS` holds their git blob ids, which a test checks). Two differences, neither
seen by a script: the payload is a sample release (mmpkg/sample) rather than a real one, and
`dpkg-deb --root-owner-group` makes its files root's where upstream's docker build leaves them
to the builder's uid (its postinst `chown -R`s the tree either way).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import harness

UPSTREAM = "mattermost/mattermost-omnibus"
COMMIT = "7d8779a0744158f90a87e6d2fec37ff1752aa8bc"
HERE = Path(__file__).parent / "official"
# Each file of tests/official, by its upstream path and git blob id at COMMIT.
BLOBS = {
    "DEBIAN/control": ("mattermost/DEBIAN/control", "fc5177a3c45d3d221ef1d4de46c51a574325625f"),
    "DEBIAN/preinst": ("mattermost/DEBIAN/preinst", "72aebec37ce3eae6fbfc23b933697ea9f2137b12"),
    "DEBIAN/postinst": ("mattermost/DEBIAN/postinst", "78f015541fa367d500235dc161da8e8a860a506c"),
    "DEBIAN/prerm": ("mattermost/DEBIAN/prerm", "51acd78fbef0dc0e43e510092661872a1ff08a6e"),
    "DEBIAN/postrm": ("mattermost/DEBIAN/postrm", "8c349b109dc862d3aa4197b621ef090d6625896f"),
    "mattermost.service": ("mattermost/files/mattermost.service", "0c1d096c11b93f5d0e818e906200105f2821bcde"),
}
INSTALL_PATH = "/opt/mattermost"
# Upstream's package revision: every release of theirs is X.Y.Z-0.
REVISION = 0


def git_blob_id(data: bytes) -> str:
    """The id git gives `data` as a file (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def build_official_deb(tarball: Path, version: str, out: Path, *, arch: str = "amd64") -> Path:
    """`mattermost_VERSION-0_ARCH.deb` (the name upstream's repository serves it under) in `out`."""
    name = f"mattermost_{version}-{REVISION}"
    build_path = out / "build" / name
    shutil.rmtree(build_path, ignore_errors=True)
    opt = build_path / INSTALL_PATH.lstrip("/")
    opt.mkdir(parents=True)
    harness.run_host(["tar", "xf", str(tarball), "--strip-components=1", "-C", str(opt)])
    (opt / "config/config.json").rename(opt / "config/config.defaults.json")
    usr_bin = build_path / "usr/bin"
    usr_bin.mkdir(parents=True)
    for binary in ("mattermost", "platform", "mmctl"):
        (usr_bin / binary).symlink_to(f"{INSTALL_PATH}/bin/{binary}")
    units = build_path / "lib/systemd/system"
    units.mkdir(parents=True)
    shutil.copy2(HERE / "mattermost.service", units / "mattermost.service")
    shutil.copytree(HERE / "DEBIAN", build_path / "DEBIAN")
    control = build_path / "DEBIAN/control"
    text = control.read_text().replace("%%version%%", f"{version}-{REVISION}").replace("%%arch%%", arch)
    control.write_text(text)
    deb = out / f"{name}_{arch}.deb"
    harness.run_host(["dpkg-deb", "--root-owner-group", "--build", str(build_path), str(deb)])
    return deb
