"""The one way mmpkg talks to upstream: a `requests` session with retries, backoff and timeouts.

Both timeouts are set on every request, so a server that stops sending is a timeout and never a
hang: `connect` for the connection, `read` for each wait for more bytes. Status 429 and 5xx are
retried by urllib3 with exponential backoff; a body cut short is retried by the downloader,
which resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mmpkg import __version__
from mmpkg.errors import UpstreamError

RETRY_STATUS = (429, 500, 502, 503, 504)


def _session(attempts: int, backoff: float) -> requests.Session:
    retry = Retry(
        total=attempts - 1,
        connect=attempts - 1,
        read=attempts - 1,
        status=attempts - 1,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUS,
        allowed_methods=frozenset({"GET", "HEAD", "POST"}),
        # The last answer is returned, so its status can be reported in a sentence.
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"mmpkg/{__version__}"
    return session


@dataclass
class Http:
    """A session and its limits; tests shorten them."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    attempts: int = 4
    backoff: float = 1.0
    session: requests.Session = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.session = _session(self.attempts, self.backoff)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("POST", url, **kwargs)

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            wait = f"{self.read_timeout:g} s"
            raise UpstreamError(f"{url}: no answer within {wait} ({self.attempts} attempts)") from exc
        except requests.RequestException as exc:
            raise UpstreamError(f"{url}: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without the object reprs around it."""
    while exc.__context__ is not None and not str(exc):
        exc = exc.__context__
    text = str(exc.args[0] if exc.args else exc)
    # urllib3 wraps the socket error: "...: Failed to establish a new connection: [Errno 111] ..."
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") if "Errno" in text else text


def check(response: requests.Response, what: str) -> requests.Response:
    """`response` when it is a success; an UpstreamError saying what failed otherwise."""
    if response.ok:
        return response
    if response.status_code == 404:
        raise UpstreamError(f"{what}: not found at {response.url} (404)")
    raise UpstreamError(f"{what}: {response.url} answered {response.status_code} {response.reason}")
