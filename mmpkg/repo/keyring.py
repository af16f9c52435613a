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
from mmpkg.build.package_model import Package, PackageFile
from mmpkg.build.templates import render
from mmpkg.errors import RepoError
from mmpkg.packaging.formats import Compression
from mmpkg.repo.keys import KeySet, combined, describe, infos
from mmpkg.tools.run import require, run

NAME = "mattermost-archive-keyring"
# Not NAME.gpg: that is where Mattermost's own repository set-up (its repo-setup.sh and install
# guide) writes the key of deb.packages.mattermost.com, which a server may trust beside this one.
DEB_KEYRING = "/usr/share/keyrings/mmpkg-mattermost-archive-keyring.gpg"
# Where revision 1 of the deb put the keys, and the sources that client-config wrote then still
# name: from revision 2 on, the package keeps a copy there that is its own, and only such a copy
# (debian/keyring-*.j2).
LEGACY_DEB_KEYRING = f"/usr/share/keyrings/{NAME}.gpg"
RPM_KEY = "/etc/pki/rpm-gpg/RPM-GPG-KEY-mattermost"
# The package's version is the key set's, its revision this: a new revision is a new file list
# or new scripts for the same keys, which a repository publishes on its next add.
REVISION = 2
_DEB_SCRIPTS = ("preinst", "postinst", "postrm")
_MAINTAINER = re.compile(r"[^<>\n]+ <[^<>@\s]+@[^<>\s]+>")


def version(keyset: KeySet) -> str:
    """VERSION-REVISION of the keyring package of `keyset`."""
    return f"{keyset.version}-{REVISION}"


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
    scripts: tuple[tuple[str, str], ...] = ()
    if fmt == "deb":
        paths = {"package": NAME, "keyring": DEB_KEYRING, "legacy": LEGACY_DEB_KEYRING}
        files = (
            PackageFile(path=DEB_KEYRING, data=binary),
            PackageFile(path=f"{doc}/copyright", data=copyright_text),
            PackageFile(
                path=f"/usr/share/lintian/overrides/{NAME}",
                data=render("debian/keyring-lintian-overrides.j2", **paths).encode(),
            ),
        )
        where = DEB_KEYRING
        scripts = tuple((s, render(f"debian/keyring-{s}.j2", **paths)) for s in _DEB_SCRIPTS)
    else:
        files = (
            PackageFile(path=RPM_KEY, data=armoured.encode()),
            PackageFile(path=f"/usr/share/licenses/{NAME}/COPYING", data=copyright_text),
        )
        where = RPM_KEY
    return Package(
        name=NAME,
        version=str(keyset.version),
        revision=REVISION,
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
        scripts=scripts,
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
    (DEB_KEYRING, or LEGACY_DEB_KEYRING as revision 1 did) or dnf (RPM_KEY) reads them; none
    when that is not a plain file."""
    where = RPM_KEY
    with tempfile.TemporaryDirectory(prefix="mmpkg-keyring-") as tmp:
        key = Path(tmp) / "key"
        if fmt == "deb":
            run(["dpkg-deb", "--extract", str(package), f"{tmp}/root"])
            found = [Path(tmp) / "root" / p.lstrip("/") for p in (DEB_KEYRING, LEGACY_DEB_KEYRING)]
            # Never a link: it could lead anywhere on this machine.
            found = [f for f in found if f.is_file() and not f.is_symlink()]
            if not found:
                return set()
            key.write_bytes(b"".join(f.read_bytes() for f in found))
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
