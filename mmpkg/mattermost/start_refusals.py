"""What a Mattermost release refuses at start, as one table: the oldest PostgreSQL it runs on,
and the settings it will not start with.

The package's upgrade guard (templates/lifecycle/upgrade-guard.sh.j2) is rendered from these
rows, so that an upgrade the new server would refuse is refused before the old server stops
(the server itself only finds out after the package has replaced it); a build refuses its own
overrides when its release would refuse them (mmpkg/build/spec.py). The sample server
(sample_release/fake_mattermost.py) stands for upstream's binary and enforces the same on its own
terms, from upstream's code; tests/test_start_refusals.py holds the two together.

Each row names its upstream source: a docs page, a pull request, or the observed message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mmpkg.mattermost.versions import MattermostVersion

_V = MattermostVersion.parse

_NOTES = "https://docs.mattermost.com/administration-guide/upgrade/important-upgrade-notes.html"
_PR = "https://github.com/mattermost/mattermost/pull/"


@dataclass(frozen=True)
class MinimumPostgres:
    """From `since` on, the server stops at start when the database server's
    `SHOW server_version_num` is below `version_num` (sqlstore's ensureMinimumDBVersion:
    "minimum Postgres version requirements not met. Found: 13.22, Wanted: 14.0")."""

    since: MattermostVersion
    version_num: int
    source: str

    @property
    def major(self) -> int:
        # server_version_num is major * 10000 + minor from PostgreSQL 10 on.
        return self.version_num // 10000


@dataclass(frozen=True)
class RefusedSetting:
    """From `since` on, the server refuses its configuration (Config.IsValid) when the boolean
    Section.Key is `value`; `upstream` is what upstream says of it."""

    since: MattermostVersion
    section: str
    key: str
    value: bool
    upstream: str
    source: str

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def accepted(self) -> str:
        """The value to set instead, as JSON."""
        return json.dumps(not self.value)

    @property
    def env(self) -> str:
        """The environment variable that sets it, and wins over config.json."""
        return f"MM_{self.section}_{self.key}".upper()

    def named_in(self, overrides: str) -> bool:
        """Whether the JSON object `overrides` (a build's layer 2) names this setting."""
        section = json.loads(overrides).get(self.section)
        return isinstance(section, dict) and self.key in section

    def refuses(self, version: MattermostVersion, value: object) -> bool:
        # Only a boolean of the refused value: the server reads nothing else as one.
        return not version < self.since and isinstance(value, bool) and value is self.value


@dataclass(frozen=True)
class StartRefusals:
    postgres: tuple[MinimumPostgres, ...]  # oldest first
    settings: tuple[RefusedSetting, ...]

    def minimum_postgres(self, version: MattermostVersion) -> MinimumPostgres | None:
        """The row in force for `version`: the newest whose `since` it has reached."""
        reached = [row for row in self.postgres if not version < row.since]
        return reached[-1] if reached else None

    def settings_for(self, version: MattermostVersion) -> tuple[RefusedSetting, ...]:
        return tuple(row for row in self.settings if not version < row.since)


TABLE = StartRefusals(
    postgres=(
        # 9.4 dropped, "the minimum required version for Postgres will be 10" (PR #16564); the
        # server said so at start from 5.32 (mattermost/mattermost#16978).
        MinimumPostgres(since=_V("5.32.0"), version_num=100000, source=f"{_PR}16564"),
        # "Removed support for PostgreSQL v10. The new minimum PostgreSQL version is now v11."
        # (upgrade notes, v8.0; PR #23315)
        MinimumPostgres(since=_V("8.0.0"), version_num=110000, source=f"{_PR}23315"),
        # "Support for PostgreSQL v11 and v12 have been removed. The new minimum PostgreSQL
        # version is v13+." (upgrade notes, v10.6; PR #30039)
        MinimumPostgres(since=_V("10.6.0"), version_num=130000, source=f"{_PR}30039"),
        # "Support for PostgreSQL v13 has been removed. The new minimum PostgreSQL version is
        # v14+." (upgrade notes, v11.0; PR #34010, picked into release-11.0)
        MinimumPostgres(since=_V("11.0.0"), version_num=140000, source=f"{_PR}34010"),
    ),
    settings=(
        # "The server will fail to start if this setting is set to false" (upgrade notes,
        # v11.0; PR #30868). The message is 11.x's (mattermost_ynh#553, an 11.1.0 log; issue
        # #34084, an 11.0.1 one).
        RefusedSetting(
            since=_V("11.0.0"),
            section="TeamSettings",
            key="ExperimentalViewArchivedChannels",
            value=False,
            upstream=(
                "Hiding archived channels is no longer supported. "
                "Make these channels private and remove members instead."
            ),
            source=_NOTES,
        ),
        # "ExperimentalSettings.ClientSideCertEnable must be false to start the server"
        # (upgrade notes, v11.0; PR #33751 removed certificate-based authentication).
        RefusedSetting(
            since=_V("11.0.0"),
            section="ExperimentalSettings",
            key="ClientSideCertEnable",
            value=True,
            upstream="Experimental certificate-based authentication feature has been removed.",
            source=_NOTES,
        ),
    ),
)
