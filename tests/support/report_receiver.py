"""A loopback receiver of the reports servers post after upgrades (MMPKG_REPORT_URL): it keeps
each request and checks its X-Mmpkg-Signature, HMAC-SHA256 of the body with the shared secret,
as a real receiver would before trusting a report."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    signature: str
    body: bytes

    def valid(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)

    def report(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)

    def reports(self, secret: str) -> list[dict[str, Any]]:
        """Every report received, each checked against `secret` first."""
        for r in self.received:
            assert r.valid(secret), f"bad signature {r.signature!r} on {r.body!r}"
        return [r.report() for r in self.received]


@contextmanager
def receiver() -> Iterator[Receiver]:
    got: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            got.append(Received(self.path, self.headers.get("X-Mmpkg-Signature", ""), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/mmpkg/reports", got)
    finally:
        server.shutdown()
        server.server_close()
