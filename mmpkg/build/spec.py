"""The one frozen model every backend receives: what the package is and what it contains.

Policy lives here (names, relations, layout, the configuration layers); backends only translate
it into each format's spelling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from mmpkg import __version__
from mmpkg.build.options import BuildOptions
from mmpkg.build.package_model import Package
from mmpkg.mattermost.release import Arch, Edition, Release
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import Compression, PackageFormat
from mmpkg.packaging.targets import Target

HOMEPAGE = "https://mattermost.com"


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Installed paths: where the package puts each part of a server. Every script and template
    takes them from here."""

    prefix: str = "/opt/mattermost"
    # Root's: the environment file, package.conf and overrides.d. Only root may write here, so
    # the service user can never plant a name that a maintainer script would follow.
    etc: str = "/etc/mattermost"
    # The server's: config.json, its temporary files, uploaded certificates. Owned by the
    # service user; root acts in it only as that user. {prefix}/config links here.
    config: str = "/etc/mattermost/config"
    share: str = "/usr/share/mattermost"
    state: str = "/var/lib/mattermost"
    logs: str = "/var/log/mattermost"
    # The unit's RuntimeDirectory=: the server's, made at each start and removed at its stop.
    runtime: str = "/run/mattermost"
    backups: str = "/var/backups/mattermost"
    user: str = "mattermost"
    group: str = "mattermost"
    unit: str = "mattermost.service"
    admin_command: str = "/usr/sbin/mattermost-pkg"

    def install_defaults(self, release_config: str = "{}") -> dict[str, dict[str, str]]:
        """Configuration layer 1: where this package puts data, plugins, logs and the local-mode
        socket, for a release whose config.json is `release_config`.

        Applied only when config.json is first created; an administrator may move them later.
        """
        defaults = {
            # Upstream's /var/tmp/mattermost_local.socket is inside the unit's PrivateTmp=, where
            # `mmctl --local` on the host cannot see it; the runtime directory is the host's.
            "ServiceSettings": {"LocalModeSocketLocation": f"{self.runtime}/mattermost_local.socket"},
            "FileSettings": {"Directory": f"{self.state}/data/"},
            "LogSettings": {"FileLocation": self.logs},
            "PluginSettings": {
                "Directory": f"{self.state}/plugins",
                "ClientDirectory": f"{self.state}/client/plugins",
            },
        }
        # Releases that have the notification log (before 11) write notifications.log, with an
        # empty FileLocation, where logs/ would be found, else in the working directory: the
        # install directory, which is root's (upstream server/config/logger.go, before the
        # revision @86b60aad that has GetLogRootPath and no notification log).
        if "NotificationLogSettings" in json.loads(release_config or "{}"):
            defaults["NotificationLogSettings"] = {"FileLocation": self.logs}
        return defaults


class Need(StrEnum):
    """What the maintainer scripts use; each backend names the package that provides it."""

    JQ = "jq"
    CURL = "curl"
    USER_TOOLS = "user-tools"  # useradd, groupadd
    RUNUSER = "runuser"
    SYSTEMD = "systemd"
    FIND = "find"  # find, xargs
    AWK = "awk"
    SED = "sed"
    PG_DUMP = "pg_dump"  # pg_dump, pg_restore and psql: recommended, the backup warns without


@dataclass(frozen=True, kw_only=True)
class PackageSpec:
    name: str
    version: MattermostVersion
    revision: int
    edition: Edition
    arch: Arch
    maintainer: str
    homepage: str
    licence: str
    summary: str
    description: str
    provides: tuple[str, ...]
    conflicts: tuple[str, ...]
    needs: tuple[Need, ...]
    layout: Layout
    build_overrides: str  # layer 2, JSON text (a str keeps the model immutable)
    install_defaults: str  # layer 1, JSON text
    release_sha256: str
    source_date_epoch: int
    # Each format's payload compression, chosen for the targets (BuildOptions.payloads).
    compressions: tuple[tuple[PackageFormat, Compression], ...]
    # The distributions the packages must install on: the rpm's rpmlib() needs are checked
    # against them.
    targets: tuple[Target, ...]
    has_db_migrate: bool
    has_db_ping: bool
    # Release files the server rewrites in place when SiteURL has a sub-path, relative to
    # layout.prefix: the service's group may write them, and their content is not the package's.
    rewritten: tuple[str, ...]
    # (path relative to layout.prefix, md5) of each release file, read while it was unpacked:
    # the .deb's md5sums need no second read of the payload.
    release_md5: tuple[tuple[str, str], ...] = ()
    # The release's directories below layout.prefix, parents first: taking over a server
    # installed by hand makes each root's before dpkg or rpm writes into it.
    release_dirs: tuple[str, ...] = ()
    # KiB the release's files take once installed: an upgrade checks for room for them (and the
    # database dump) before it stops anything. 0: not checked.
    installed_kib: int = 0
    # Which mmpkg built it, recorded in the package: a packaging fix shows as a new mmpkg
    # version with the same upstream version.
    mmpkg_version: str = __version__

    @property
    def changelog_url(self) -> str:
        return f"https://docs.mattermost.com/product-overview/mattermost-v{self.version.major}-changelog.html"

    def package(self, fmt: PackageFormat) -> Package:
        """What the server is in format `fmt`; each backend adds its own relations, scripts,
        files and changelog (dataclasses.replace)."""
        return Package(
            name=self.name,
            version=self.version.package_version,
            revision=self.revision,
            arch=self.arch,
            maintainer=self.maintainer,
            summary=self.summary,
            description=self.description,
            homepage=self.homepage,
            licence=self.licence,
            section="net",
            source_date_epoch=self.source_date_epoch,
            compression=dict(self.compressions)[fmt],
            targets=self.targets,
        )


def build_spec(release: Release, options: BuildOptions, layout: Layout | None = None) -> PackageSpec:
    layout = layout or Layout()
    edition = release.edition
    other = Edition.TEAM if edition is Edition.ENTERPRISE else Edition.ENTERPRISE
    label = "Enterprise Edition" if edition is Edition.ENTERPRISE else "Team Edition"
    licence = "LicenseRef-Mattermost-Enterprise" if edition is Edition.ENTERPRISE else "MIT"
    return PackageSpec(
        name=edition.package_name,
        version=release.version,
        revision=options.revision,
        edition=edition,
        arch=release.arch,
        maintainer=options.maintainer,
        homepage=HOMEPAGE,
        licence=licence,
        summary=f"Secure collaboration platform server ({label})",
        description=_description(label, layout),
        provides=("mattermost-server",),
        conflicts=(other.package_name,),
        needs=tuple(Need),
        layout=layout,
        build_overrides=json.dumps(options.overrides(), indent=2, ensure_ascii=False),
        install_defaults=json.dumps(layout.install_defaults(release.config), indent=2),
        release_sha256=release.sha256,
        source_date_epoch=(
            release.source_date_epoch if options.source_date_epoch is None else options.source_date_epoch
        ),
        compressions=options.payloads(),
        targets=options.target,
        # `mattermost db migrate` appeared in 6.5; older servers migrate when they start.
        has_db_migrate=release.version.at_least(6, 5),
        # `mattermost db ping` appeared in 11.9: a readiness probe that needs no free text.
        has_db_ping=release.version.at_least(11, 9),
        rewritten=release.rewritten,
        release_md5=release.md5sums,
        release_dirs=release.directories,
        installed_kib=-(-release.unpacked_bytes // 1024),
    )


def _description(label: str, layout: Layout) -> str:
    return f"""\
Mattermost is an open source platform for secure collaboration across the
software development lifecycle: messaging, file sharing, search and
integrations, self-hosted.

This package installs the Mattermost server ({label}) from the
upstream release into {layout.prefix} and runs it as the {layout.user}
system user under systemd. The live configuration,
{layout.config}/config.json, is created once and never replaced. Files,
plugins and logs live in {layout.state} and {layout.logs}. Upgrades
stop the server, back up the configuration, re-apply the administrator's
overrides, migrate the database and start the server again."""
