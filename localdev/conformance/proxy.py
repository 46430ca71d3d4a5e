"""The conformance proxy: an HTTP proxy in front of the GCS and BigQuery emulators that answers as
Google Cloud does where the emulators are lenient.

Every process that talks to the emulators (the test process, a worker subprocess, a worker container
on the host network, a soak's killed worker) goes through it: ``STORAGE_EMULATOR_HOST`` and
``BIGQUERY_EMULATOR_HOST`` both point at :attr:`ConformanceProxy.endpoint`, and the path tells the two
services apart. Each rule (``localdev/conformance/rules/``) is one documented behaviour with its link;
a test turns one off with :meth:`ConformanceProxy.disabled` only when it tests that rule's absence.

Latency mode (the benchmarks' stand-in for the cloud's round trips): with ``latency_seconds`` set
(at construction, or at run time with :meth:`ConformanceProxy.set_latency`), every GCS and BigQuery
response is held that long before it is sent. Only the thread answering that request waits (the
server starts a thread per connection), so concurrent requests overlap their waits as they would on
Google Cloud. Token refreshes (``Service.AUTH``) are not held.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from localdev.conformance.chaos import Chaos, ChaosKind
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, bigquery_error, json_reply
from localdev.conformance.rules import all_rules
from localdev.conformance.rules.base import Rule
from localdev.conformance.rules.storage_rules import StorageCallRule
from localdev.conformance.storage_calls import answer_part, is_batch, join_batch, join_batch_reply, split_batch, split_batch_reply
from localdev.conformance.token_endpoint import token_reply
from localdev.conformance.world import Clock, Upstream, World

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "content-length", "content-encoding", "host", "accept-encoding"}


@dataclass(frozen=True)
class Recorded:
    """One request as it went through the proxy, and who answered it."""

    service: Service
    method: str
    target: str
    status: int
    answered_by: str  # "emulator", a rule's name, or "chaos:<kind>"
    body_bytes: int


class ConformanceProxy:
    """Start with :meth:`start` (a daemon thread serving on a free loopback port), stop with :meth:`stop`."""

    def __init__(self, *, bigquery_upstream: str, storage_upstream: str, gcs_root: Path | None = None,
                 rules: list[Rule] | None = None, latency_seconds: float = 0.0) -> None:
        self.world = World(clock=Clock(), upstream=Upstream(bigquery_upstream, storage_upstream, gcs_root))
        self.rules: dict[str, Rule] = {rule.name: rule for rule in (rules if rules is not None else all_rules())}
        self._off: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()  # rule name -> requests it answered, rewrote or whose answer it changed
        self.chaos_state = Chaos()
        self._recorders: list[list[Recorded]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._latency = 0.0
        self.set_latency(latency_seconds)

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        assert self._server is not None, "the proxy is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ConformanceProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="conformance-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- what tests use ------------------------------------------------------------------------
    def rule(self, name: str) -> Rule:
        return self.rules[name]

    @contextlib.contextmanager
    def disabled(self, *names: str) -> Iterator[None]:
        """Turn rules off for the block: only in a test of what happens without them."""
        unknown = [n for n in names if n not in self.rules]
        if unknown:
            raise KeyError(f"no conformance rule named {unknown}; rules: {sorted(self.rules)}")
        with self._lock:
            self._off.update(names)
        try:
            yield
        finally:
            with self._lock:
                self._off.subtract(names)

    @property
    def latency_seconds(self) -> float:
        """How long every GCS and BigQuery response is held before it is sent (0: not held)."""
        return self._latency

    def set_latency(self, seconds: float) -> None:
        """Hold every later GCS and BigQuery response ``seconds`` before sending it (0 turns latency mode off).

        Requests already waiting keep the hold they started with. Raises ValueError for a negative value.
        """
        if seconds < 0:
            raise ValueError(f"latency_seconds must be 0 or more, not {seconds!r}")
        self._latency = float(seconds)

    @contextlib.contextmanager
    def latency(self, seconds: float) -> Iterator[None]:
        """Latency mode at ``seconds`` for the block; the previous setting afterwards."""
        before = self._latency
        self.set_latency(seconds)
        try:
            yield
        finally:
            self.set_latency(before)

    def advance_clock(self, delta: timedelta) -> None:
        """Move the proxy's clock (expiries, rate windows) forward by ``delta``."""
        self.world.clock.offset += delta

    @contextlib.contextmanager
    def chaos(self, *, seed: int, rate: float, kinds: frozenset[ChaosKind] | None = None) -> Iterator[Chaos]:
        """Inject Google's documented transient answers into ``rate`` of the requests (seeded)."""
        self.chaos_state.start(seed=seed, rate=rate, kinds=kinds)
        try:
            yield self.chaos_state
        finally:
            self.chaos_state.stop()

    @property
    def chaos_injected(self) -> dict[str, int]:
        return dict(self.chaos_state.injected)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Recorded]]:
        """Record every request that goes through the proxy during the block."""
        log: list[Recorded] = []
        with self._lock:
            self._recorders.append(log)
        try:
            yield log
        finally:
            with self._lock:
                self._recorders.remove(log)

    def reset(self) -> None:
        """Back to the state a test starts from: clock, chaos off, every rule's marks forgotten."""
        self.world.clock.offset = timedelta(0)
        self.chaos_state.stop()
        for rule in self.rules.values():
            rule.reset()

    # --- the pipeline --------------------------------------------------------------------------
    def _active(self, service: Service) -> list[Rule]:
        with self._lock:
            return [r for r in self.rules.values() if r.service is service and self._off[r.name] <= 0]

    def handle(self, exchange: Exchange) -> Reply | None:
        """The answer to one request (None: cut the connection, as a reset does)."""
        answered_by = "emulator"
        injected = self.chaos_state.draw(exchange)
        if injected is not None:
            kind, reply = injected
            self._record(exchange, reply.status if reply else 0, f"chaos:{kind.value}")
            return reply
        if exchange.service is Service.AUTH:
            self._record(exchange, 200, "conformance:token")
            return token_reply(exchange)
        rules = self._active(exchange.service)
        reply = self._known_job(exchange)
        if reply is not None:
            answered_by = "conformance:jobs"
        for rule in rules if reply is None else []:
            sent = exchange.body
            reply = rule.before(exchange, self.world)
            if exchange.body is not sent:  # the rule rewrote the request (as the service would read it)
                self.answered[rule.name] += 1
            if reply is not None:
                answered_by = rule.name
                self.answered[rule.name] += 1
                self._remember_job(exchange, reply)
                break
        try:
            if reply is None:
                reply = self._forward_batch(exchange, rules) if is_batch(exchange) else self.forward(exchange)
        finally:
            reply = reply or bigquery_error(502, "backendError", "conformance proxy: the emulator did not answer")
            for rule in rules:
                changed = rule.after(exchange, reply, self.world)
                if changed is not reply:
                    self.answered[rule.name] += 1
                reply = changed
        self.chaos_state.observe(exchange, reply)
        self._record(exchange, reply.status, answered_by)
        return reply

    def _known_job(self, exchange: Exchange) -> Reply | None:
        """jobs.get / getQueryResults of a job a rule answered for at insert (the emulator never saw it)."""
        route = exchange.bigquery_route
        if route is None or route.call not in (BigQueryCall.JOBS_GET, BigQueryCall.JOBS_RESULTS):
            return None
        job = self.world.jobs.get(route.job_id or "")
        return json_reply(200, job) if job is not None else None

    def _remember_job(self, exchange: Exchange, reply: Reply) -> None:
        route = exchange.bigquery_route
        if route is not None and route.call is BigQueryCall.JOBS_INSERT and reply.status == 200 and route.job_id:
            self.world.jobs[route.job_id] = reply.json

    def _forward_batch(self, exchange: Exchange, rules: list[Rule]) -> Reply:
        """A GCS batch: each sub-request checked by the call rules; refused ones answered here, the rest
        forwarded as one smaller batch; the answers put back in the order of the calls."""
        boundary, parts = split_batch(exchange)
        checks = [r for r in rules if isinstance(r, StorageCallRule)]
        refused: dict[int, Reply] = {}
        for index, part in enumerate(parts):
            for rule in checks:
                answer = rule.check(part.call, self.world)
                if answer is not None:
                    refused[index] = answer
                    self.answered[rule.name] += 1
                    break
        if not refused:
            return self.forward(exchange)
        kept = [p for i, p in enumerate(parts) if i not in refused]
        forwarded: list[bytes] = []
        if kept:
            exchange.body = join_batch(boundary, kept)
            forwarded = split_batch_reply(self.forward(exchange))
        answers, it = [], iter(forwarded)
        for index in range(len(parts)):
            answers.append(answer_part(refused[index], index + 1) if index in refused else next(it))
        return join_batch_reply(answers)

    def forward(self, exchange: Exchange) -> Reply:
        headers = {k: v for k, v in exchange.headers.items() if k not in _HOP_BY_HOP}
        upstream = self.world.upstream
        reply = upstream.send(exchange.service, exchange.method, exchange.target, headers=headers, body=exchange.body)
        reply.headers = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
        # Links in answers (resumable upload sessions, mediaLink) name the emulator: point them at the proxy,
        # or the client would go around it.
        origin = upstream.endpoint(exchange.service)
        for key, value in list(reply.headers.items()):
            if key.lower() == "location" and value.startswith(origin):
                reply.headers[key] = self.endpoint + value[len(origin):]
        if "json" in reply.headers.get("Content-Type", reply.headers.get("content-type", "")):
            reply.body = reply.body.replace(origin.encode(), self.endpoint.encode())
            reply.__dict__.pop("json", None)
        return reply

    def _record(self, exchange: Exchange, status: int, answered_by: str) -> None:
        with self._lock:
            recorders = list(self._recorders)
        entry = Recorded(exchange.service, exchange.method, exchange.target, status, answered_by, len(exchange.body))
        for log in recorders:
            log.append(entry)


class _Handler(BaseHTTPRequestHandler):
    owner: ConformanceProxy
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, each answer waits for the
    # client's delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        exchange = Exchange.parse(method=self.command, target=self.path, headers=dict(self.headers.items()),
                                  body=self._body())
        try:
            reply = self.owner.handle(exchange)
        except Exception as exc:  # a rule's bug must show as a loud 500 (and a traceback), not a hung client
            traceback.print_exc()
            reply = bigquery_error(500, "proxyError", f"conformance proxy failed: {type(exc).__name__}: {exc}")
        hold = self.owner.latency_seconds if exchange.service is not Service.AUTH else 0.0
        if hold > 0:  # latency mode: only this request's thread waits
            time.sleep(hold)
        if reply is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve
