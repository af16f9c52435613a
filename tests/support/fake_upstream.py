"""A loopback server that behaves like upstream, and a signing key that stands in for Mattermost's.

    /api/repos/mattermost/mattermost/releases?per_page=N&page=P   GitHub's releases API: pages
                                                                  of `page_size`, Link headers
    /VERSION/mattermost[-team]-VERSION-linux-ARCH.tar.gz[.sig]     releases.mattermost.com
    /pubkey.gpg                                                   the release-signing key
    /hooks/ID                                                     a Mattermost incoming webhook

Every failure the downloader must survive or report is a switch: `faults[path]` is a list of
faults the next requests of that path meet, one each ("404", "500", "stall", "cut"), and
`rate_limited` makes the API answer as GitHub does when the limit is spent. `sent` counts the
body bytes sent per path, so a test can see that a second fetch sent nothing.

A hostile server is a fault too: "trickle" sends the body one byte every `trickle_seconds`,
"trickle-head" the status line and headers too; "endless" sends `endless_bytes` of junk with no
length, or until the client hangs up; a POST may also meet "redirect", a 307 to `redirect_to`.
`link_url`, when set, is where the API's `Link` headers send the next pages.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mmpkg.mattermost.release import Arch, Edition, tarball_name
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release

API_PATH = "/api/repos/mattermost/mattermost/releases"
RELEASE_KEY = "release@mattermost.test"
OTHER_KEY = "someone-else@example.invalid"


@dataclass
class SigningKeys:
    """ed25519 keys in a GnuPG home of their own: Mattermost's stand-in, and another."""

    home: Path

    @classmethod
    def make(cls, home: Path, *, also: tuple[str, ...] = ()) -> SigningKeys:
        """Mattermost's stand-in and another key, and one key for each address in `also` (a
        repository's signing key, say)."""
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = cls(home)
        for email in (RELEASE_KEY, OTHER_KEY, *also):
            params = "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
            params += f"Name-Real: test\nName-Email: {email}\nExpire-Date: 0\n%commit\n"
            keys._gpg("--gen-key", input=params.encode())
        return keys

    def _gpg(self, *args: str, input: bytes | None = None) -> bytes:
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        return subprocess.run(
            ["gpg", "--batch", "--quiet", *args], input=input, env=env, capture_output=True, check=True
        ).stdout

    def sign(self, data: bytes, key: str = RELEASE_KEY) -> bytes:
        return self._gpg("--local-user", key, "--detach-sign", "--output", "-", input=data)

    def public(self, key: str = RELEASE_KEY) -> bytes:
        return self._gpg("--armor", "--export", key)

    def fingerprint(self, key: str = RELEASE_KEY) -> str:
        colons = self._gpg("--with-colons", "--list-keys", key).decode()
        return next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr"))

    def keyring_file(self, dest: Path, key: str = RELEASE_KEY) -> Path:
        dest.write_bytes(self.public(key))
        return dest


@dataclass
class Upstream:
    url: str = ""
    page_size: int = 2
    releases: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    rate_limited: bool = False
    rate_reset: int = 0
    stall_seconds: float = 2.0
    trickle_seconds: float = 0.05
    endless_bytes: int = 64 << 20
    redirect_to: str = ""
    link_url: str = ""
    sent: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    posts: list[tuple[str, Any]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def release(
        self,
        version: str,
        keys: SigningKeys,
        work: Path,
        *,
        editions: tuple[Edition, ...] = (Edition.ENTERPRISE,),
        arches: tuple[Arch, ...] = (Arch.AMD64,),
        prerelease: bool = False,
        draft: bool = False,
    ) -> None:
        """Publish `version` as upstream does: a GitHub release, and signed tarballs."""
        v = MattermostVersion.parse(version)
        for edition in editions:
            for arch in arches:
                tarball = write_sample_release(v, edition=edition, arch=arch, dest=work / "upstream")
                data = tarball.read_bytes()
                self.files[self.path_of(version, edition, arch)] = data
                self.files[self.path_of(version, edition, arch) + ".sig"] = keys.sign(data)
        # GitHub lists releases newest first.
        self.releases.insert(
            0,
            {"tag_name": f"v{version}", "draft": draft, "prerelease": prerelease,
             "published_at": f"2025-01-{len(self.releases) + 1:02}T12:00:00Z"},
        )  # fmt: skip

    @staticmethod
    def path_of(version: str, edition: Edition = Edition.ENTERPRISE, arch: Arch = Arch.AMD64) -> str:
        return f"/{version}/{tarball_name(MattermostVersion.parse(version), edition, arch)}"

    def api_requests(self) -> list[dict[str, str]]:
        return [headers for path, headers in self.requests if path.startswith(API_PATH)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        up = self.server.upstream
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        up.posts.append((self.path, json.loads(body)))
        fault = up.faults[self.path].pop(0) if up.faults.get(self.path) else None
        if fault == "404":
            self._answer(404, b"Not Found", {"Content-Type": "text/plain"})
        elif fault == "redirect":
            self._answer(307, b"", {"Location": up.redirect_to})
        else:
            self._answer(200, b"ok", {"Content-Type": "text/plain"}, fault)

    def do_GET(self) -> None:
        up = self.server.upstream
        path = urlsplit(self.path).path
        up.requests.append((self.path, dict(self.headers.items())))
        fault = up.faults[path].pop(0) if up.faults.get(path) else None
        if fault == "404" or (path not in up.files and path != API_PATH):
            self._answer(404, b"Not Found", {"Content-Type": "text/plain"})
        elif fault == "500":
            self._answer(500, b"Internal Server Error", {"Content-Type": "text/plain"})
        elif fault == "endless":
            self._endless(path)
        elif path == API_PATH:
            self._api(fault)
        else:
            self._file(path, up.files[path], fault)

    def _api(self, fault: str | None) -> None:
        up = self.server.upstream
        if up.rate_limited:
            body = json.dumps({"message": "API rate limit exceeded for 127.0.0.1."}).encode()
            headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": str(up.rate_reset), "Content-Type": "application/json"}  # fmt: skip
            self._answer(403, body, headers)
            return
        query = parse_qs(urlsplit(self.path).query)
        per_page = min(int(query.get("per_page", ["30"])[0]), up.page_size)
        page = int(query.get("page", ["1"])[0])
        last = max(1, -(-len(up.releases) // per_page))
        items = up.releases[(page - 1) * per_page : page * per_page]
        link = f"{up.link_url or up.api_url}/repos/mattermost/mattermost/releases?per_page={per_page}&page="
        links = [f'<{link}{page + 1}>; rel="next"', f'<{link}{last}>; rel="last"'] if page < last else []
        headers = {"Content-Type": "application/json", "X-RateLimit-Remaining": "59"}
        if links:
            headers["Link"] = ", ".join(links)
        self._answer(200, json.dumps(items).encode(), headers, fault)

    def _file(self, path: str, data: bytes, fault: str | None) -> None:
        up = self.server.upstream
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        status = 200
        if m:
            start = int(m[1])
            if start >= len(data):
                self._answer(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if fault in ("trickle", "trickle-head"):
            self._trickle(status, body, headers, head=fault == "trickle-head", path=path)
            return
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        if fault in ("cut", "stall"):
            # Half the body; then either silence, or the connection closed.
            half = body[: len(body) // 2]
            self.wfile.write(half)
            self.wfile.flush()
            up.sent[path] += len(half)
            if fault == "stall":
                up.stopping.wait(up.stall_seconds)
            self.close_connection = True
            return
        self.wfile.write(body)
        up.sent[path] += len(body)

    def _endless(self, path: str) -> None:
        """Junk with no length, until `endless_bytes` or the client hangs up."""
        up = self.server.upstream
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.close_connection = True
        block = b"\x1f" * (1 << 16)
        try:
            while up.sent[path] < up.endless_bytes and not up.stopping.is_set():
                self.wfile.write(block)
                up.sent[path] += len(block)
        except OSError:
            pass  # the client hung up: what it was meant to do

    def _answer(self, status: int, body: bytes, headers: dict[str, str], fault: str | None = None) -> None:
        if fault in ("trickle", "trickle-head"):
            self._trickle(status, body, headers, head=fault == "trickle-head")
            return
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _trickle(
        self, status: int, body: bytes, headers: dict[str, str], *, head: bool, path: str = ""
    ) -> None:
        """A whole, valid answer, one byte every `trickle_seconds`: from its status line on
        (`head`), or from its body on. Each byte comes well within any read timeout."""
        up = self.server.upstream
        lines = [f"HTTP/1.1 {status} Slow", *(f"{k}: {v}" for k, v in headers.items())]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        answer = "\r\n".join(lines).encode()
        self.close_connection = True
        try:
            if not head:
                self.wfile.write(answer)
                answer = b""
            for i, byte in enumerate(answer + body):
                if up.stopping.wait(up.trickle_seconds):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                up.sent[path] += i >= len(answer)
        except OSError:
            pass  # the client hung up


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream


@contextmanager
def serve(upstream: Upstream | None = None) -> Iterator[Upstream]:
    """`upstream` served on 127.0.0.1 for the block."""
    up = upstream or Upstream()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.upstream = up
    up.url = f"http://127.0.0.1:{server.server_address[1]}"
    up.rate_reset = up.rate_reset or int(time.time()) + 1800
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield up
    finally:
        up.stopping.set()
        server.shutdown()
        server.server_close()
