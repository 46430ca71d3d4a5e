"""The conformance proxy's latency mode, against a stand-in upstream that answers at once: every GCS and
BigQuery response is held the set time, a request's hold does not hold the others (N concurrent requests
take about one latency, not N), and token refreshes are not held."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from localdev.conformance import ConformanceProxy
from localdev.conformance.exchange import TOKEN_PATH

LATENCY = 0.4


class _Instant(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"items": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def proxy() -> Iterator[ConformanceProxy]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Instant)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{upstream.server_address[1]}"
    proxy = ConformanceProxy(bigquery_upstream=endpoint, storage_upstream=endpoint, rules=[]).start()
    try:
        yield proxy
    finally:
        proxy.stop()
        upstream.shutdown()
        upstream.server_close()


def _get(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        response.read()
    return time.monotonic() - started


def _bigquery(proxy: ConformanceProxy) -> str:
    return f"{proxy.endpoint}/bigquery/v2/projects/p/datasets"


def _storage(proxy: ConformanceProxy) -> str:
    return f"{proxy.endpoint}/storage/v1/b/bucket/o"


def test_latency_is_off_by_default_and_holds_both_services_when_set(proxy):
    assert proxy.latency_seconds == 0
    assert _get(_bigquery(proxy)) < LATENCY / 2
    proxy.set_latency(LATENCY)
    assert _get(_bigquery(proxy)) >= LATENCY
    assert _get(_storage(proxy)) >= LATENCY
    proxy.set_latency(0)
    assert _get(_storage(proxy)) < LATENCY / 2


def test_the_latency_block_restores_the_previous_setting(proxy):
    with proxy.latency(LATENCY):
        assert proxy.latency_seconds == LATENCY
    assert proxy.latency_seconds == 0
    with pytest.raises(ValueError, match="0 or more"):
        proxy.set_latency(-1)


def test_concurrent_requests_overlap_their_waits(proxy):
    n = 8
    proxy.set_latency(LATENCY)
    threads = [threading.Thread(target=_get, args=(_bigquery(proxy) if i % 2 else _storage(proxy),)) for i in range(n)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    assert LATENCY <= wall < LATENCY * 3, f"{n} concurrent requests took {wall:.2f} s at {LATENCY} s latency (serialized: {n * LATENCY} s)"


def test_token_refreshes_are_not_held(proxy):
    proxy.set_latency(LATENCY)
    request = urllib.request.Request(proxy.endpoint + TOKEN_PATH, data=b"grant_type=x", method="POST")
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert time.monotonic() - started < LATENCY / 2


def test_the_constructor_sets_the_latency():
    proxy = ConformanceProxy(bigquery_upstream="http://127.0.0.1:9", storage_upstream="http://127.0.0.1:9", rules=[],
                             latency_seconds=0.25)
    assert proxy.latency_seconds == 0.25
