"""What the fault tests share: the end state of an import (to compare with an uninterrupted run),
checkpoint hooks for exact interleavings, the killed worker, and a TCP proxy that can go down.

The services stay real: hooks only decide *when* the real worker code runs, and the proxy only
forwards bytes (or refuses connections, as a stopped emulator does).
"""

from __future__ import annotations

import contextlib
import hashlib
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from google.cloud import bigquery, storage

from tests.emulators.worker_helpers import REPO, ledger_rows, table_exists, table_rows
from worker import checkpoints
from worker.core.spec import ImportSpec


@dataclass(frozen=True)
class EndState:
    """Everything a lost or duplicated row would show in, independent of dataset names."""

    clean_rows: int
    clean_checksum: str
    raw: dict[str, tuple[int, str]]
    ledger: tuple[tuple, ...]
    objects: frozenset[tuple[str, int]]

    def describe(self) -> str:
        return (f"clean {self.clean_rows} rows ({self.clean_checksum}), raw {self.raw}, "
                f"{len(self.ledger)} ledger rows, {len(self.objects)} objects")


def _checksum(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(sorted(rows, key=repr)).encode()).hexdigest()[:16]


def end_state(spec: ImportSpec, bq: bigquery.Client, bucket: storage.Bucket, *, days: list[datetime]) -> EndState:
    """Clean table (count + checksum of sorted rows), each raw table, the ledger (no timestamps or job ids),
    and the GCS objects (name, generation) under the spec's prefix."""
    clean = table_rows(bq, spec.clean_table_id) if table_exists(bq, spec.clean_table_id) else []
    raw = {}
    for d in days:
        table_id = spec.raw_table_id(d)
        if table_exists(bq, table_id):
            rows = table_rows(bq, table_id)
            raw[spec.interval.table_suffix(d)] = (len(rows), _checksum(rows))
    ledger = tuple(sorted(
        (r["interval_start"].astimezone(UTC).isoformat(), r["object_name"], r["generation"], r["interval_rows"],
         r["deleted_at"] is not None, r["digest"])
        for r in ledger_rows(bq, spec)
    ))
    objects = frozenset((b.name, int(b.generation)) for b in bucket.client.list_blobs(bucket.name, prefix=spec.object_prefix))
    return EndState(clean_rows=len(clean), clean_checksum=_checksum(clean), raw=raw, ledger=ledger, objects=objects)


def duplicate_rows(bq: bigquery.Client, table_id: str) -> int:
    """Rows that appear more than once (the sample rows are distinct by construction)."""
    rows = table_rows(bq, table_id)
    return len(rows) - len(set(rows))


@contextlib.contextmanager
def at_checkpoint(name: str, action: Callable[[], None], *, nth: int = 1) -> Iterator[list[str]]:
    """Run ``action`` (once) when the code under test reaches checkpoint ``name`` for the ``nth`` time.

    The hook is removed while ``action`` runs, so a worker started by ``action`` runs undisturbed.
    Yields the list of checkpoints passed, in order.
    """
    passed: list[str] = []
    seen = 0

    def hook(reached: str) -> None:
        nonlocal seen
        passed.append(reached)
        if reached == name:
            seen += 1
            if seen == nth:
                checkpoints.set_hook(None)
                try:
                    action()
                finally:
                    checkpoints.set_hook(hook)

    checkpoints.set_hook(hook)
    try:
        yield passed
    finally:
        checkpoints.set_hook(None)


class SimulatedCrash(BaseException):
    """Raised at a checkpoint to stop an in-process run there (not an Exception: no handler catches it)."""


def crash_at(name: str, *, nth: int = 1):
    def crash() -> None:
        raise SimulatedCrash(name)
    return at_checkpoint(name, crash, nth=nth)


def run_killed(worker_args: list[str], *, at: str, nth: int = 1, delete_batch_size: int | None = None,
               env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """The worker CLI in a subprocess, SIGKILLed at checkpoint ``at`` (see :mod:`tests.faults.kill_at`)."""
    import os

    args = [sys.executable, "-m", "tests.faults.kill_at", "--at", at, "--nth", str(nth)]
    if delete_batch_size:
        args += ["--delete-batch-size", str(delete_batch_size)]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DAGSTER_PIPES_CONTEXT", None)
    return subprocess.run([*args, "--", *worker_args], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


class TcpProxy:
    """Forwards 127.0.0.1:port to an upstream ``host:port``; ``down()`` stops it as if the server had stopped
    (connections refused, open connections cut), ``up()`` listens again on the same port."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.replace("http://", "").rsplit(":", 1)
        self._upstream = (host, int(port))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def down_for(self, seconds: float) -> None:
        """Down now, up again after ``seconds`` (in the background)."""
        self.down()
        timer = threading.Timer(seconds, self.up)
        timer.daemon = True
        timer.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._conns.difference_update((a, b))






class BatchSubResponseFaults:
    """A transport hook on a storage client: the first ``times`` batch requests get ``status`` for their first
    sub-request, which is *not* sent to the server (as when GCS throttles one call of a batch or a backend
    fails it); the other sub-requests go to the real emulator and their answers come back in place.

    Google documents that each call in a batch gets its own status, and that 429 and 5xx are to be retried:
    https://cloud.google.com/storage/docs/batch#batch-response-format
    https://cloud.google.com/storage/docs/retry-strategy
    ``sent`` records every sub-request line that reached the server (to assert the preconditions it carried).
    """

    PAYLOADS = {
        429: b'{"error": {"code": 429, "message": "The rate of change requests to the object is too high.", '
             b'"errors": [{"reason": "rateLimitExceeded", "domain": "usageLimits"}]}}',
        503: b'{"error": {"code": 503, "message": "Backend Error", "errors": [{"reason": "backendError", '
             b'"domain": "global"}]}}',
    }
    REASONS = {429: b"Too Many Requests", 503: b"Service Unavailable"}

    def __init__(self, client: storage.Client, *, status: int, times: int) -> None:
        self._status, self._left = status, times
        self.sent: list[str] = []
        self.faulted: list[str] = []
        connection = client._base_connection
        self._original = connection._make_request
        connection._make_request = self._make_request

    def _make_request(self, method, url, data=None, headers=None, **kwargs):
        if "/batch/storage/v1" not in url:
            return self._original(method, url, data=data, headers=headers, **kwargs)
        boundary = headers["Content-Type"].split("boundary=", 1)[1].strip('"')
        parts = [p for p in data.split(f"--{boundary}") if p.strip() and p.strip() != "--"]
        faulted = self._left > 0 and len(parts) > 1
        if faulted:
            self._left -= 1
            self.faulted.append(_request_line(parts[0]))
            parts = parts[1:]
        self.sent.extend(_request_line(p) for p in parts)
        body = "".join(f"--{boundary}{p}" for p in parts) + f"--{boundary}--"
        response = self._original(method, url, data=body, headers=headers, **kwargs)
        if faulted:
            answer_boundary = response.headers["Content-Type"].split("boundary=", 1)[1].strip('"').encode()
            fake = (b"\r\nContent-Type: application/http\r\nHTTP/1.1 " + str(self._status).encode() + b" "
                    + self.REASONS[self._status] + b"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
                    + self.PAYLOADS[self._status] + b"\r\n")
            response._content = b"--" + answer_boundary + fake + response.content
            response.headers["Content-Length"] = str(len(response._content))
        return response


def _request_line(part: str) -> str:
    return next(line for line in part.splitlines() if line.startswith(("DELETE ", "GET ", "POST ", "PATCH ")))
