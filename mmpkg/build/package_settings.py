"""The installed package's own settings, each declared once in SETTINGS.

A row is an MMPKG_* variable the package's scripts and `mattermost-pkg` read: its default, where
it is read from, how its value is checked and what it does. Rendered from the table: the shell's
loading and checking (templates/lifecycle/settings.sh.j2), the commented package.conf
(templates/package.conf.j2), the man page's SETTINGS and ENVIRONMENT sections
(templates/mattermost-pkg.8.j2), the usage of `mattermost-pkg` (templates/mattermost-pkg.j2),
and the table in docs/administering.md (mmpkg/docs.py). The templates see it as
`package_settings`.

The help text reaches a man page, a shell here-document, a comment and a Markdown cell, so it is
plain text: no $, backquote or backslash (tests/test_package_settings.py checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """Where a value is read from; the shell's mm_knob takes these words."""

    # package.conf, so that upgrades run without the caller's environment (unattended-upgrades,
    # dnf-automatic, sudo) keep it; the environment wins over the file.
    PERSISTENT = "persistent"
    # The environment of the one command that needs it; in package.conf it is ignored, with a
    # warning, so that a switch meant for one upgrade never holds for every later one.
    ONCE = "once"


class Check(StrEnum):
    """How a value is checked before anything changes; the shell's mm_knob takes these words."""

    COUNT = "count"  # a whole number from 1 to 999999: a number of snapshots
    SECONDS = "seconds"  # a whole number from 0 to 999999
    SWITCH = "switch"  # 0 (off) or 1 (on)
    JOBS = "jobs"  # a whole number from 0 to 999999: parallel jobs, 0 for the machine's CPUs
    URL = "url"  # empty, or an http:// or https:// URL without spaces or quotes

    @property
    def metavar(self) -> str:
        return {
            Check.COUNT: "N",
            Check.SECONDS: "SECONDS",
            Check.SWITCH: "0|1",
            Check.JOBS: "N",
            Check.URL: "URL",
        }[self]

    @property
    def bounds(self) -> str:
        """What the check accepts beyond its kind, for the help text."""
        return "at least 1; " if self is Check.COUNT else ""


@dataclass(frozen=True, kw_only=True)
class PackageSetting:
    name: str
    # A number, or for a URL the empty string: none.
    default: int | str
    scope: Scope
    check: Check
    # Lower case, no final full stop: it is completed with the default (`text`).
    help: str
    # What 0 means, where it is more than "off" or "none"; for a URL, what none means.
    zero: str = ""

    @property
    def variable(self) -> str:
        """The shell variable the lifecycle library keeps the checked value in."""
        return "MM_" + self.name.removeprefix("MMPKG_")

    @property
    def persistent(self) -> bool:
        return self.scope is Scope.PERSISTENT

    @property
    def spelled(self) -> str:
        """NAME=VALUE as the administrator writes it; a one-off switch is only ever turned on."""
        return f"{self.name}={self.check.metavar if self.persistent else 1}"

    @property
    def text(self) -> str:
        """The help text with what the check accepts and the default, for every rendered place."""
        if not self.persistent:
            return self.help
        if self.check is Check.URL:
            return f"{self.help} (default none: {self.zero})"
        zero = f"; 0: {self.zero}" if self.zero else ""
        return f"{self.help} ({self.check.bounds}default {self.default}{zero})"


# In the order the scripts check them: the first bad value is the one reported.
SETTINGS: tuple[PackageSetting, ...] = (
    PackageSetting(
        name="MMPKG_BACKUP_KEEP",
        default=5,
        scope=Scope.PERSISTENT,
        check=Check.COUNT,
        help="keep the newest N snapshots the upgrades take of the configuration",
    ),
    PackageSetting(
        name="MMPKG_START_TIMEOUT",
        default=120,
        scope=Scope.PERSISTENT,
        check=Check.SECONDS,
        help="whole seconds an upgrade waits for the restarted server to answer its ping",
        zero="do not wait",
    ),
    PackageSetting(
        name="MMPKG_MANUAL_BACKUP_KEEP",
        default=10,
        scope=Scope.PERSISTENT,
        check=Check.COUNT,
        help="keep the newest N snapshots made by mattermost-pkg backup, apart from the upgrades'",
    ),
    PackageSetting(
        name="MMPKG_DB_BACKUP",
        default=1,
        scope=Scope.PERSISTENT,
        check=Check.SWITCH,
        help="before an upgrade that migrates, dump the PostgreSQL database into its snapshot with "
        "pg_dump in directory format and parallel jobs, and check the dump with pg_restore --list",
        zero="do not",
    ),
    PackageSetting(
        name="MMPKG_DB_BACKUP_STRICT",
        default=0,
        scope=Scope.PERSISTENT,
        check=Check.SWITCH,
        help="take that dump after the server has stopped, inside the outage, so that it holds every "
        "write the old server accepted; when 0 it is taken while the server still runs, the outage "
        "no longer grows with the database, and what is written between the start of the dump and "
        "the stop is in no dump",
    ),
    PackageSetting(
        name="MMPKG_DB_JOBS",
        default=0,
        scope=Scope.PERSISTENT,
        check=Check.JOBS,
        help="parallel jobs, each a database connection, of the upgrade's pg_dump and the "
        "rollback's pg_restore",
        zero="as many as the machine has CPUs, at most 8",
    ),
    PackageSetting(
        name="MMPKG_SELF_HEAL",
        default=1,
        scope=Scope.PERSISTENT,
        check=Check.SWITCH,
        help="when an upgrade nobody watches (unattended-upgrades, dnf-automatic, mattermost-pkg upgrade "
        "--unattended) fails its migration or its server does not answer in the start timeout above, "
        "roll it back by itself and hold the version; such an upgrade takes its database dump after "
        "the server stopped, so that the rollback loses nothing",
        zero="leave a failed upgrade as it is, for the administrator",
    ),
    PackageSetting(
        name="MMPKG_REPORT_URL",
        default="",
        scope=Scope.PERSISTENT,
        check=Check.URL,
        help="after each upgrade and each rollback by itself, POST its outcome as JSON to this URL, "
        "signed with HMAC-SHA256 over the body with the secret in the file report.secret beside "
        "this one (root's alone, mode 0600) in the header X-Mmpkg-Signature",
        zero="the outcome is only kept, for mattermost-pkg report",
    ),
    PackageSetting(
        name="MMPKG_ALLOW_DOWNGRADE",
        default=0,
        scope=Scope.ONCE,
        check=Check.SWITCH,
        help="install an older version",
    ),
    PackageSetting(
        name="MMPKG_ALLOW_UNSUPPORTED_UPGRADE",
        default=0,
        scope=Scope.ONCE,
        check=Check.SWITCH,
        help="skip upstream's required intermediate versions (ESRs included), the MySQL check, and "
        "the check of an installed version that cannot be read",
    ),
    PackageSetting(
        name="MMPKG_PURGE_DATA",
        default=0,
        scope=Scope.ONCE,
        check=Check.SWITCH,
        help="with a purge, also remove the file store and the backups",
    ),
    PackageSetting(
        name="MMPKG_REQUIRE_DB_BACKUP",
        default=0,
        scope=Scope.ONCE,
        check=Check.SWITCH,
        help="refuse the upgrade, before anything changes, when the database cannot be dumped "
        "(not PostgreSQL, no pg_dump, or the database cannot be reached) instead of warning",
    ),
    PackageSetting(
        name="MMPKG_UNATTENDED",
        default=0,
        scope=Scope.ONCE,
        check=Check.SWITCH,
        help="treat this upgrade as one nobody watches, as under unattended-upgrades and dnf-automatic "
        "(mattermost-pkg upgrade --unattended sets it)",
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
PERSISTENT = tuple(s for s in SETTINGS if s.persistent)
ONCE = tuple(s for s in SETTINGS if not s.persistent)
