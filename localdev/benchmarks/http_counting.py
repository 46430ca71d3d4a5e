"""A reverse proxy on loopback that forwards every request to an emulator and records it.

The benchmarks point ``STORAGE_EMULATOR_HOST`` / ``BIGQUERY_EMULATOR_HOST`` of a worker, a
Dagster process or a sensor at it, so what they send is counted from outside the process:
method, path, request bytes, status and the seconds the upstream took (the time a caller spent
outside HTTP is its wall time minus these).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Request:
    """One forwarded request."""

    method: str
    path: str
    request_bytes: int
    body: bytes
    status: int
    seconds: float


class CountingProxy:
    """``with CountingProxy(upstream) as proxy:`` forwards ``proxy.endpoint`` to ``upstream``.

    ``keep_bodies`` keeps request bodies up to that many bytes (BigQuery job configurations);
    larger bodies are counted, not kept.
    """

    def __init__(self, upstream: str, *, keep_bodies: int = 0) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname, parts.port
        self._keep = keep_bodies
        self._lock = threading.Lock()
        self._log: list[Request] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                started = time.monotonic()
                status, reason, response_headers, data = proxy._send(self.command, self.path, body, headers)
                seconds = time.monotonic() - started
                proxy._record(Request(self.command, self.path, len(body) + len(self.requestline) + sum(
                    len(k) + len(v) + 4 for k, v in self.headers.items()), body if len(body) <= proxy._keep else b"",
                    status, seconds))
                self.send_response_only(status, reason)
                for key, value in response_headers:
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._connections = threading.local()

    def _send(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int, str, list, bytes]:
        """Forward on this thread's upstream connection (reconnecting once if the upstream closed it)."""
        for attempt in (1, 2):
            conn = getattr(self._connections, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=900)
                self._connections.conn = conn
            try:
                conn.request(method, path, body=body or None, headers=headers)
                response = conn.getresponse()
                return response.status, response.reason, response.getheaders(), response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._connections.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def take(self) -> list[Request]:
        """The requests forwarded since the last ``take`` (and forget them)."""
        with self._lock:
            log, self._log = self._log, []
        return log

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
