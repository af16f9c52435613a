"""Upstream's versions, from the GitHub releases API of mattermost/mattermost.

Pages are followed through the `Link` header as GitHub documents it (never by counting), drafts
are skipped, and tags that are not server versions (`vX.Y.Z[-rcN]`) are ignored.

$GITHUB_TOKEN goes to the API's own host only, over https (or plain http to a loopback address,
the tests' server): a `Link` to a page anywhere else is not followed, and requests drops the
token on a redirect to another host (Session.rebuild_auth).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from mmpkg.errors import MmpkgError, UpstreamError
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.upstream.http import Http, check, shown

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
    if token and not sends_token(api_url, api_url):
        log.warning("GITHUB_TOKEN is not sent to %s: only over https", shown(api_url))
        token = ""
    url: str | None = f"{api_url.rstrip('/')}/repos/{REPO}/releases?per_page={PER_PAGE}"
    found: dict[MattermostVersion, UpstreamRelease] = {}
    for _ in range(MAX_PAGES):
        if url is None:
            break
        response = http.get(url, what="GitHub releases API", headers=_headers(token))
        _check_rate_limit(response, authenticated=bool(token))
        check(response, "GitHub releases API")
        for item in _items(response):
            release = _release(item)
            if release is not None and release.version not in found:
                found[release.version] = release
        url = _next_page(response, api_url)
    else:
        raise UpstreamError(f"GitHub releases API: more than {MAX_PAGES} pages; is {shown(api_url)} GitHub?")
    wanted = [
        r for r in found.values() if (include_rc or not r.rc) and (since is None or not r.version < since)
    ]
    return sorted(wanted, reverse=True)


def _headers(token: str) -> dict[str, str]:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _next_page(response: requests.Response, api_url: str) -> str | None:
    """The next page's URL, which must be the API's own: the token goes with it."""
    link = response.links.get("next", {}).get("url")
    if link is None:
        return None
    url = urljoin(response.url, link)
    if not sends_token(url, api_url):
        raise UpstreamError(
            f"GitHub releases API: the next page is at {shown(url)}, not at {shown(api_url)}; not followed"
        )
    return url


def sends_token(url: str, api_url: str) -> bool:
    """Whether a request for `url` may carry the token: one to the host of `api_url` (the same
    scheme, host and port), over https, or over plain http to a loopback address."""
    parts, api = urlsplit(url), urlsplit(api_url)
    if (parts.scheme, parts.hostname, _port(url)) != (api.scheme, api.hostname, _port(api_url)):
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname or ""))


def _port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # not a port number: no URL to send anything to
        return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _items(response: requests.Response) -> list[dict[str, object]]:
    try:
        items = response.json()
    except ValueError as exc:
        raise UpstreamError(f"GitHub releases API: {shown(response.url)} did not answer JSON") from exc
    if not isinstance(items, list):
        raise UpstreamError(f"GitHub releases API: {shown(response.url)} did not answer a list of releases")
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
