"""`mattermost-omnibus`: Mattermost's own package around its server, and the transitional package
of that name that every deb channel carries in its place.

Mattermost's mattermost-omnibus (deb.packages.mattermost.com, versions X.Y.Z-0, its last
release 10.12) depends on exactly its own version of `mattermost`, sets the server up with
nginx, PostgreSQL and certbot, and keeps the server's settings in /etc/mattermost. Its postrm,
on purge, deletes /etc/mattermost, /var/log/mattermost and /var/opt/mattermost, and the
`mattermost` user with its home, /opt/mattermost: once this project's `mattermost` has taken
that server over, the same purge would delete the package's configuration, logs and release.
Its systemd drop-in omnibus-overrides.conf (a plain file of the package, not a conffile)
empties the unit's Environment= and makes it need postgresql.service.

So the repository carries a `mattermost-omnibus` of a higher version, with no scripts and no
files but its documents. apt upgrades omnibus to it when it upgrades `mattermost` (the server
package Breaks every older mattermost-omnibus): dpkg runs none of upstream's scripts for that
(its prerm and postrm act on `remove` and `purge` only), removes its files, the drop-in among
them, and from then on knows only this package's scripts, none, so no later purge deletes
anything. Removing or purging the transitional package removes nothing else.
"""

from __future__ import annotations

from mmpkg.build.package_model import Package, PackageFile
from mmpkg.build.templates import render
from mmpkg.packaging.formats import Compression

NAME = "mattermost-omnibus"
# The first Mattermost release with no mattermost-omnibus: every one of upstream's (X.Y.Z-0,
# up to 10.12) is older, and so is anything of theirs the package's apt pin leaves out.
VERSION = "11.0.0"
REVISION = 1
FULL_VERSION = f"{VERSION}-{REVISION}"
# What a server package says of every older one: apt must replace it before the server moves.
BREAKS = f"{NAME} (<< {FULL_VERSION})"
DROP_IN = "/etc/systemd/system/mattermost.service.d/omnibus-overrides.conf"
# What upstream's postrm purge deletes (mattermost-omnibus/DEBIAN/postrm).
PURGED = ("/etc/mattermost", "/var/log/mattermost", "/var/opt/mattermost")
# 2025-10-16, the date of mattermost-omnibus@7d8779a, whose scripts these notes describe: the
# package never changes with the day it is built.
_EPOCH = 1760572800


def package(*, maintainer: str) -> Package:
    """The transitional mattermost-omnibus, architecture-independent."""
    copyright_text = render("debian/omnibus-copyright.j2", maintainer=maintainer).encode()
    return Package(
        name=NAME,
        version=VERSION,
        revision=REVISION,
        arch=None,
        maintainer=maintainer,
        summary="transitional package: a mattermost-omnibus server moved to mattermost",
        description=(
            "Mattermost's mattermost-omnibus ended with release 10.12. This empty\n"
            "package takes its place once the server is this repository's\n"
            "mattermost package, so that nothing of omnibus's removal can touch the\n"
            "server: its scripts, which deleted /etc/mattermost, /var/log/mattermost,\n"
            "/var/opt/mattermost and the mattermost user on purge, are gone, and so\n"
            "is its systemd drop-in omnibus-overrides.conf.\n\n"
            "nginx, PostgreSQL and certbot, which omnibus set up, stay as they are.\n"
            "This package can be removed or purged at any time."
        ),
        homepage="https://mattermost.com",
        licence="MIT",
        section="oldlibs",
        files=(PackageFile(path=f"/usr/share/doc/{NAME}/copyright", data=copyright_text),),
        changes=("Takes the place of Mattermost's mattermost-omnibus, whose last release was 10.12.",),
        source_date_epoch=_EPOCH,
        # Every client must read it, however old its dpkg.
        compression=Compression.XZ,
    )
