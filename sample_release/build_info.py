"""Per-version facts a sample release is stamped with: schema number, build time, build hash.

Everything is derived from the version alone, so the same version always yields the same
tarball bytes and the same `mattermost version` output, and newer versions look newer.
"""

from __future__ import annotations

import hashlib
import time

from mmpkg.mattermost.versions import MattermostVersion

# 2015-01-01T00:00:00Z: early enough that no sample release is stamped in the future.
_BASE_EPOCH = 1_420_070_400
# One step of the ordering key below is ten minutes of pretend release time.
_STEP_SECONDS = 600


def schema_number(version: MattermostVersion) -> int:
    """The simulated database schema a version migrates to; a release candidate shares its final's."""
    return version.major * 10_000 + version.minor * 100 + version.patch


def migration_name(version: MattermostVersion) -> str:
    return f"sample_{schema_number(version):06d}"


def build_epoch(version: MattermostVersion) -> int:
    """The pretend build time: strictly increasing with the version, rcN below its final."""
    # Clamping keeps the key monotonic without making the range (and so the dates) absurd;
    # no Mattermost release has had 50 minors or 50 patches.
    minor = min(version.minor, 49)
    patch = min(version.patch, 49)
    rc = min(version.rc, 8) if version.rc is not None else 9
    key = ((version.major * 50 + minor) * 50 + patch) * 10 + rc
    return _BASE_EPOCH + key * _STEP_SECONDS


def build_date(version: MattermostVersion) -> str:
    """`date -u` style, as the upstream Makefile stamps model.BuildDate."""
    t = time.gmtime(build_epoch(version))
    # `date` pads the day of month with a space (%e), which strftime has no portable spelling for.
    return time.strftime(f"%a %b {t.tm_mday:2d} %H:%M:%S UTC %Y", t)


def build_hash(version: MattermostVersion) -> str:
    """A 40-hex pretend git commit; both editions of one version share it, as upstream's do."""
    return hashlib.sha1(f"mmpkg sample {version}".encode()).hexdigest()


# Upstream's one-line help (cobra's Short) of the commands a package looks for, with the release
# that added each: server/cmd/mattermost/commands/db.go (mattermost/mattermost@b1683404) and
# db_ping.go (@04bf19b2). `db migrate` came in 6.5 with mattermost/mattermost#19364, the change
# that made `version` leave config and database alone; its text is in the binary from then on.
_COMMAND_HELP = (
    ((0, 0), "db", "Commands related to the database"),
    ((0, 0), "db version", "Returns the recent applied version number"),
    ((5, 32), "db init", "Initialize the database"),
    ((6, 5), "db migrate", "Migrate the database if there are any unapplied migrations"),
    ((11, 9), "db ping", "Wait for the database to become reachable"),
)


def command_help(version: MattermostVersion) -> dict[str, str]:
    """ "db migrate" -> its help, for each of those commands `version` has."""
    have = (version.major, version.minor)
    return {name: text for since, name, text in _COMMAND_HELP if have >= since}
