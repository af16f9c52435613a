"""mmpkg: Mattermost server release tarballs to upgrade-safe .deb and .rpm packages."""

from __future__ import annotations

__version__ = "0.9.0"
