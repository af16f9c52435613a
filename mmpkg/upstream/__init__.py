"""Upstream: the versions Mattermost has released (github.py) and their verified tarballs
(download.py), over one `requests` session with retries and timeouts (http.py)."""

from __future__ import annotations

from mmpkg.upstream.download import (
    RELEASES_URL,
    Fetched,
    Held,
    check_cache,
    default_cache,
    fetch,
    held,
    trusted_keys,
)
from mmpkg.upstream.github import API_URL, UpstreamRelease, releases
from mmpkg.upstream.http import Http

__all__ = [
    "API_URL",
    "RELEASES_URL",
    "Fetched",
    "Held",
    "Http",
    "UpstreamRelease",
    "check_cache",
    "default_cache",
    "fetch",
    "held",
    "releases",
    "trusted_keys",
]
