"""Upstream's versions, from the GitHub releases API of mattermost/mattermost.

Pages are followed through the `Link` header as GitHub documents it (never by counting), drafts
are skipped, and tags that are not server versions (`vX.Y.Z[-rcN]`) are ignored.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import requests

from mmpkg.errors import MmpkgError, UpstreamError
from mmpkg.upstream.http import Http, check
from mmpkg.versions import MattermostVersion

log = logging.getLogger("mmpkg")

API_URL = "https://api.github.com"
REPO = "mattermost/mattermost"
PER_PAGE = 100
# Far more than upstream has published: a Link header that never ends is a broken server.
MAX_PAGES = 50


@dataclass(frozen=True, order=True)
class UpstreamRelease:
    version: MattermostVersion
    tag: str
    published: str  # ISO 8601, as GitHub gives it

    @property
    def rc(self) -> bool:
        return self.version.rc is not None


def releases(
    *,
    api_url: str = API_URL,
    since: MattermostVersion | None = None,
    include_rc: bool = False,
    http: Http | None = None,
    token: str | None = None,
) -> list[UpstreamRelease]:
    """Upstream's releases, newest first: `since` and later, release candidates only if asked.
    `token` defaults to $GITHUB_TOKEN."""
    http = http or Http()
    token = token if token is not None else os.environ.get("GITHUB_TOKEN", "")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url: str | None = f"{api_url.rstrip('/')}/repos/{REPO}/releases?per_page={PER_PAGE}"
    found: dict[MattermostVersion, UpstreamRelease] = {}
    for _ in range(MAX_PAGES):
        if url is None:
            break
        response = http.get(url, what="GitHub releases API", headers=headers)
        _check_rate_limit(response, authenticated=bool(token))
        check(response, "GitHub releases API")
        for item in _items(response):
            release = _release(item)
            if release is not None and release.version not in found:
                found[release.version] = release
        url = response.links.get("next", {}).get("url")
    else:
        raise UpstreamError(f"GitHub releases API: more than {MAX_PAGES} pages; is {api_url} GitHub?")
    wanted = [
        r for r in found.values() if (include_rc or not r.rc) and (since is None or not r.version < since)
    ]
    return sorted(wanted, reverse=True)


def _items(response: requests.Response) -> list[dict[str, object]]:
    try:
        items = response.json()
    except ValueError as exc:
        raise UpstreamError(f"GitHub releases API: {response.url} did not answer JSON") from exc
    if not isinstance(items, list):
        raise UpstreamError(f"GitHub releases API: {response.url} did not answer a list of releases")
    return [i for i in items if isinstance(i, dict)]


def _release(item: dict[str, object]) -> UpstreamRelease | None:
    tag = str(item.get("tag_name") or "")
    if item.get("draft"):
        return None
    try:
        version = MattermostVersion.parse(tag.removeprefix("v"))
    except MmpkgError:
        log.debug("ignoring tag %r: not a server version", tag)
        return None
    return UpstreamRelease(version, tag, str(item.get("published_at") or ""))


def _check_rate_limit(response: requests.Response, *, authenticated: bool) -> None:
    """GitHub says "rate limited" with 403 or 429 and X-RateLimit-Remaining: 0 (primary limit)."""
    if response.status_code not in (403, 429) or response.headers.get("X-RateLimit-Remaining") != "0":
        return
    reset = response.headers.get("X-RateLimit-Reset", "")
    when = "later"
    if reset.isdigit():
        at = int(reset)
        minutes = max(0, round((at - time.time()) / 60))
        when = f"at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(at))} (in {minutes} min)"
    hint = "" if authenticated else "; set GITHUB_TOKEN for a higher limit"
    raise UpstreamError(f"GitHub API rate limit exceeded: it resets {when}{hint}")
