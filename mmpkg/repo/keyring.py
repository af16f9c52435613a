"""The `mattermost-archive-keyring` package: every current repository key, for apt and dnf.

Clients install it once (after fetching the key by hand to trust the first download) and from
then on get each new key set as an ordinary upgrade, before the repository signs with the new
key: a rotation needs no manual step. It is built by the same backends as the server.
"""

from __future__ import annotations

import re
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from mmpkg.backends import deb, rpm
from mmpkg.errors import RepoError
from mmpkg.options import Compression
from mmpkg.package import Package, PackageFile
from mmpkg.repo.keys import KeySet, combined, describe, infos
from mmpkg.resources import render
from mmpkg.run import require, run

NAME = "mattermost-archive-keyring"
DEB_KEYRING = f"/usr/share/keyrings/{NAME}.gpg"
RPM_KEY = "/etc/pki/rpm-gpg/RPM-GPG-KEY-mattermost"
_MAINTAINER = re.compile(r"[^<>\n]+ <[^<>@\s]+@[^<>\s]+>")


def package(keyset: KeySet, fmt: str, *, maintainer: str) -> Package:
    """The keyring package for deb or rpm (`fmt`), version keyset.version."""
    armoured, binary = combined(keyset)
    keys = infos(keyset)
    listing = "\n".join(f"{k.fingerprint} {k.uid}" for k in keys)
    epoch = int(max(k.created for k in keys).timestamp())
    year = datetime.fromtimestamp(epoch, UTC).year
    copyright_text = render("debian/keyring-copyright.j2", year=year, maintainer=maintainer).encode()
    doc = f"/usr/share/doc/{NAME}"
    files: tuple[PackageFile, ...]
    if fmt == "deb":
        files = (
            PackageFile(path=DEB_KEYRING, data=binary),
            PackageFile(path=f"{doc}/copyright", data=copyright_text),
            PackageFile(
                path=f"/usr/share/lintian/overrides/{NAME}",
                data=render("debian/keyring-lintian-overrides.j2", package=NAME).encode(),
            ),
        )
        where = DEB_KEYRING
    else:
        files = (
            PackageFile(path=RPM_KEY, data=armoured.encode()),
            PackageFile(path=f"/usr/share/licenses/{NAME}/COPYING", data=copyright_text),
        )
        where = RPM_KEY
    return Package(
        name=NAME,
        version=str(keyset.version),
        revision=1,
        arch=None,
        maintainer=maintainer,
        summary="OpenPGP keys of the Mattermost package repository",
        description=(
            "The public keys that sign this Mattermost package repository, in\n"
            f"{where}.\n\n"
            "Every key that may sign the repository is here before it signs, so\n"
            "that upgrading this package is all a client needs across a key\n"
            "rotation. The keys:\n\n" + listing
        ),
        homepage="https://mattermost.com",
        licence="CC0-1.0",
        section="misc",
        files=files,
        changes=(f"Repository key set {keyset.version}:\n{listing}",),
        # The newest key's time: the same key set always makes the same package.
        source_date_epoch=epoch,
        # Every client must read it, however old its dpkg or rpm.
        compression=Compression.XZ,
    )


def build(keyset: KeySet, out: Path, *, maintainer: str) -> list[Path]:
    """The .deb and the .rpm of `keyset`, written into `out`."""
    if not _MAINTAINER.fullmatch(maintainer):
        raise RepoError(f"the signing key's user id {maintainer!r} is not a Maintainer's 'Name <email>'")
    require(deb.DebBackend.tool)
    require(rpm.RpmBackend.tool)
    built = []
    # The work directory is inside `out`, not in $TMPDIR: the rpm is renamed from it into `out`,
    # and a rename cannot cross file systems (a /tmp on tmpfs, a repository on a /srv volume).
    with tempfile.TemporaryDirectory(prefix="mmpkg-keyring-", dir=out) as tmp:
        work = Path(tmp)
        pkg = package(keyset, "deb", maintainer=maintainer)
        (work / "deb").mkdir()
        deb.stage_package(pkg, work / "deb" / "root")
        built.append(deb.build_package(pkg, work / "deb" / "root", out))
        pkg = package(keyset, "rpm", maintainer=maintainer)
        (work / "rpm").mkdir()
        rpm.stage_package(pkg, work / "rpm" / "root")
        path = rpm.build_package(pkg, rpm.render_package_spec(pkg), work / "rpm" / "root", work / "rpm")
        built.append(path.rename(out / path.name))
    return built


def installed_keys(package: Path, fmt: str) -> set[str]:
    """The fingerprints of the keys a keyring package (deb or rpm, `fmt`) installs where apt
    (DEB_KEYRING) or dnf (RPM_KEY) reads them; none when that is not a plain file."""
    where = DEB_KEYRING if fmt == "deb" else RPM_KEY
    with tempfile.TemporaryDirectory(prefix="mmpkg-keyring-") as tmp:
        key = Path(tmp) / "key"
        if fmt == "deb":
            run(["dpkg-deb", "--extract", str(package), f"{tmp}/root"])
            found = Path(tmp) / "root" / where.lstrip("/")
            # Never a link: it could lead anywhere on this machine.
            if found.is_symlink() or not found.is_file():
                return set()
            found.rename(key)
        else:
            # rpm2archive writes NAME.tar beside the file it is given.
            (Path(tmp) / "pkg").symlink_to(package.absolute())
            run(["rpm2archive", "--nocompression", f"{tmp}/pkg"])
            with tarfile.open(f"{tmp}/pkg.tar") as tar:
                member = next((m for m in tar.getmembers() if m.name == f".{where}"), None)
                data = tar.extractfile(member) if member is not None and member.isfile() else None
                if data is None:
                    return set()
                key.write_bytes(data.read())
        return {fpr for fpr, *_ in describe(key)}
