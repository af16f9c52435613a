"""The one way mmpkg talks to upstream: a `requests` session with retries, backoff, timeouts,
deadlines and size limits.

Both timeouts are set on every request: `connect` for the connection, `read` for each wait for
more bytes. A server that sends a byte now and then never meets the read timeout, so every
exchange also has a deadline for all of it, from the request to the body's last byte: when it
passes, the sockets of the exchange are shut down, which ends a read blocked on them at once
(urllib3 reads the status line, headers and body with a timeout per read only). A body is read
up to a limit, and never whole before its size is checked. Status 429 and 5xx are retried by
urllib3 with exponential backoff; a body cut short is retried by the downloader, which resumes
where it stopped.

Messages never show the user and password of a URL, nor more than the scheme and host of a URL
that is itself a secret (a webhook's), nor a credential sent in a header.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from mmpkg import __version__
from mmpkg.errors import UpstreamError, UsageError

RETRY_STATUS = (429, 500, 502, 503, 504)
CHUNK = 1 << 16
MAX_TARBALL = 4 << 30

# The deadline of the exchange under way in this thread, which its connections report to.
_current = threading.local()


class Deadline:
    """The time one exchange may take. The socket of each request it makes is watched; when the
    time is up they are shut down, and a request made later fails at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._outer: Deadline | None = None

    def watch(self, sock: object) -> None:
        with self._lock:
            if self.expired:
                raise TimeoutError(f"the deadline of {self.seconds:g} s has passed")
            if isinstance(sock, socket.socket) and sock not in self._watched:
                self._watched.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._watched:
                with contextlib.suppress(OSError):
                    # socket.socket's own shutdown, for an SSLSocket too: the reading thread
                    # meets the end of the stream, not a TLS object taken away under it. Reads
                    # then return what has come, or nothing, and never wait again.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> Deadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._timer.cancel()
        _current.deadline = self._outer
        with self._lock:
            # Back in the pool, they are another exchange's.
            self._watched.clear()


def _watch(sock: object) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


# The socket is watched when the request starts (a new connection has none yet) and when its
# answer is read: an answer that closes the connection takes the socket from it (http.client).
class _HTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]  # as urllib3 does
        _watch(self.sock)
        return super().getresponse()


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]  # as urllib3 does
        _watch(self.sock)
        return super().getresponse()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    """requests' adapter, its connections watched by the deadline of the exchange using them."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kw: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.ProxyManager):  # not a SOCKS proxy's, whose pools differ
            manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager


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
    adapter = _Adapter(max_retries=retry)
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
    # All of one exchange but a tarball's: a page of the API, a signature, the key, the webhook.
    deadline: float = 120.0
    # One attempt at a tarball: 1.8 GB at 1 MB/s, far more than a release; a download cut there
    # resumes in the next attempt.
    download_deadline: float = 1800.0
    # The largest tarball taken (tarball_limit()).
    max_tarball: int = field(default_factory=lambda: tarball_limit())
    # The largest body but a tarball's (a page of the releases API is a few hundred KiB).
    max_body: int = 32 << 20
    session: requests.Session = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.session = _session(self.attempts, self.backoff)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def get(
        self, url: str, *, what: str, limit: int | None = None, secret: bool = False, **kwargs: Any
    ) -> requests.Response:
        """The answer to a GET of `url`, whatever its status, its body read whole within the
        deadline: at most `limit` bytes (else max_body), or an UpstreamError saying `what`
        sends more. A `secret` URL is shown by its scheme and host only."""
        return self._exchange("GET", url, what=what, limit=limit, secret=secret, **kwargs)

    def post(self, url: str, *, what: str, secret: bool = False, **kwargs: Any) -> requests.Response:
        """The answer to a POST to `url`, as get(). A redirect is not followed (check() refuses
        it): the body goes to the URL it was given, or nowhere."""
        return self._exchange(
            "POST", url, what=what, limit=None, secret=secret, allow_redirects=False, **kwargs
        )

    @contextlib.contextmanager
    def stream(self, url: str, seconds: float, **kwargs: Any) -> Iterator[tuple[requests.Response, Deadline]]:
        """A GET of `url` whose body the caller reads in the block, all of it within `seconds`
        (then its reads fail, and the Deadline says it has expired)."""
        hide = functools.partial(scrub, url=url, headers=kwargs.get("headers"))
        with Deadline(seconds) as deadline:
            response = self._send("GET", url, deadline, shown(url), hide, stream=True, **kwargs)
            with response:
                yield response, deadline

    def _exchange(
        self, method: str, url: str, *, what: str, limit: int | None, secret: bool, **kwargs: Any
    ) -> requests.Response:
        limit = self.max_body if limit is None else limit
        where = f"{what}: {shown(url, secret=secret)}"
        hide = functools.partial(scrub, url=url, secret=secret, headers=kwargs.get("headers"))
        with Deadline(self.deadline) as deadline:
            response = self._send(method, url, deadline, where, hide, stream=True, **kwargs)
            with response:
                try:
                    response._content = _body(response, limit, where)
                except requests.RequestException as exc:
                    raise self._failed(exc, where, deadline, hide) from exc
        if deadline.expired:
            # A body with no length ends when its socket is shut down, with no error.
            raise UpstreamError(f"{where}: no complete answer within {deadline.seconds:g} s")
        return response

    def _send(
        self, method: str, url: str, deadline: Deadline, where: str, hide: Callable[[str], str], **kwargs: Any
    ) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise self._failed(exc, where, deadline, hide) from exc

    def _failed(
        self, exc: requests.RequestException, where: str, deadline: Deadline, hide: Callable[[str], str]
    ) -> UpstreamError:
        if deadline.expired:
            return UpstreamError(f"{where}: no complete answer within {deadline.seconds:g} s")
        if isinstance(exc, requests.Timeout):
            wait = f"{self.read_timeout:g} s"
            return UpstreamError(f"{where}: no answer within {wait} ({self.attempts} attempts)")
        # requests' and urllib3's words may hold the URL, its path, or a header's value.
        return UpstreamError(f"{where}: {hide(reason(exc))}")


def tarball_limit() -> int:
    """$MMPKG_MAX_TARBALL_MIB, else 4 GiB: several times any release tarball, and a stop
    to a server that would send without end until the disk is full."""
    text = os.environ.get("MMPKG_MAX_TARBALL_MIB", "")
    if not text:
        return MAX_TARBALL
    if not text.isdigit() or int(text) == 0:
        raise UsageError(f"MMPKG_MAX_TARBALL_MIB={text}: expected a whole number of MiB")
    return int(text) << 20


def _body(response: requests.Response, limit: int, what: str) -> bytes:
    """The body, refused as soon as it is known to be longer than `limit` bytes: by its
    Content-Length, or by what has come."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise UpstreamError(f"{what} sends more than {limit} bytes ({length})")
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > limit:
            raise UpstreamError(f"{what} sends more than {limit} bytes")
    return bytes(body)


def shown(url: str, *, secret: bool = False) -> str:
    """`url` as messages show it: never with its user and password, and only its scheme and host
    (and port) when the whole URL is a secret (a webhook's path and query are its key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    if secret:
        return f"{parts.scheme}://{netloc}/..."
    return parts._replace(netloc=netloc).geturl()


def scrub(text: str, url: str, *, secret: bool = False, headers: Mapping[str, str] | None = None) -> str:
    """`text` without the secrets of `url` (see shown()) nor the credentials in `headers`."""
    parts = urlsplit(url)
    text = text.replace(url, shown(url, secret=secret))
    hidden = [parts.password or "", f"{parts.username}:" if parts.username else ""]
    if secret:
        hidden += [f"{parts.path}?{parts.query}", parts.query, parts.path if len(parts.path) > 1 else ""]
    for key, value in (headers or {}).items():
        if key.lower() in ("authorization", "proxy-authorization"):
            hidden += [value, *value.split()[1:]]  # "Bearer TOKEN": the token, even where quoted
    for secret_text in sorted(filter(None, hidden), key=len, reverse=True):
        text = text.replace(secret_text, "...")
    return text


def reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without the object reprs around it."""
    while exc.__context__ is not None and not str(exc):
        exc = exc.__context__
    text = str(exc.args[0] if exc.args else exc)
    # urllib3 wraps the socket error: "...: Failed to establish a new connection: [Errno 111] ..."
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") if "Errno" in text else text


def check(response: requests.Response, what: str, *, secret: bool = False) -> requests.Response:
    """`response` when it is a success; an UpstreamError saying what failed otherwise. A
    redirect that was not followed (a POST's) is a failure: where it leads is shown as a
    secret, its host only."""
    where = shown(response.url, secret=secret)
    if response.is_redirect:
        to = shown(response.headers["Location"], secret=True)
        raise UpstreamError(
            f"{what}: {where} answered {response.status_code} {response.reason}, a redirect to {to}; "
            "not followed: give the URL that answers itself"
        )
    if response.ok:
        return response
    if response.status_code == 404:
        raise UpstreamError(f"{what}: not found at {where} (404)")
    raise UpstreamError(f"{what}: {where} answered {response.status_code} {response.reason}")
