"""Chaos mode: Google's documented transient answers, injected into a seeded fraction of requests.

Off by default; on in the soak and in the chaos tests. Each kind is an answer Google documents as
transient, which a client must retry:

- BigQuery 403 ``rateLimitExceeded``, 500 ``backendError``, 503 ``backendError``
  (https://cloud.google.com/bigquery/docs/error-messages#errortable);
- Cloud Storage 429 ``rateLimitExceeded`` (GCS signals rate limits with 429, never 403) and 503
  (https://cloud.google.com/storage/docs/retry-strategy);
- a connection reset (the request never reaches the service);
- a failed token refresh: the token endpoint resets the connection, which google-auth raises as
  ``google.auth.exceptions.TransportError`` (only for clients whose credentials refresh through the proxy,
  see localdev/conformance/token_endpoint.py);
- a brief 404 on ``jobs.get`` right after ``jobs.insert`` created the job (the client library's known
  case, https://github.com/googleapis/python-bigquery/issues/2134).

A refused request is never forwarded, so retrying it is always safe for the service's state.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from enum import Enum

from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, bigquery_error, storage_error


class ChaosKind(Enum):
    BIGQUERY_RATE_LIMITED = "bigquery_403_rateLimitExceeded"
    BIGQUERY_BACKEND_ERROR = "bigquery_500_backendError"
    BIGQUERY_UNAVAILABLE = "bigquery_503_backendError"
    STORAGE_RATE_LIMITED = "storage_429_rateLimitExceeded"
    STORAGE_UNAVAILABLE = "storage_503_backendError"
    CONNECTION_RESET = "connection_reset"
    JOB_NOT_FOUND_AFTER_INSERT = "bigquery_404_job_after_insert"
    TOKEN_REFRESH_FAILURE = "token_refresh_transport_error"


_BIGQUERY = [ChaosKind.BIGQUERY_RATE_LIMITED, ChaosKind.BIGQUERY_BACKEND_ERROR, ChaosKind.BIGQUERY_UNAVAILABLE,
             ChaosKind.CONNECTION_RESET]
_STORAGE = [ChaosKind.STORAGE_RATE_LIMITED, ChaosKind.STORAGE_UNAVAILABLE, ChaosKind.CONNECTION_RESET]
_KINDS_BY_SERVICE = {Service.BIGQUERY: _BIGQUERY, Service.STORAGE: _STORAGE,
                     Service.AUTH: [ChaosKind.TOKEN_REFRESH_FAILURE]}


def _answer(kind: ChaosKind, exchange: Exchange) -> Reply | None:
    if kind is ChaosKind.BIGQUERY_RATE_LIMITED:
        return bigquery_error(403, "rateLimitExceeded", "Exceeded rate limits: too many api requests per user per "
                                                        "method for this user_method. For more information, see "
                                                        "https://cloud.google.com/bigquery/docs/troubleshoot-quotas")
    if kind is ChaosKind.BIGQUERY_BACKEND_ERROR:
        return bigquery_error(500, "backendError", "An internal error occurred and the request could not be completed.")
    if kind is ChaosKind.BIGQUERY_UNAVAILABLE:
        return bigquery_error(503, "backendError", "The service is currently unavailable.")
    if kind is ChaosKind.STORAGE_RATE_LIMITED:
        return storage_error(429, "rateLimitExceeded", "The rate of change requests to the object is too high.")
    if kind is ChaosKind.STORAGE_UNAVAILABLE:
        return storage_error(503, "backendError", "Backend Error")
    if kind is ChaosKind.JOB_NOT_FOUND_AFTER_INSERT:
        route = exchange.bigquery_route
        return bigquery_error(404, "notFound", f"Not found: Job {route.project}:{route.job_id}")
    return None  # CONNECTION_RESET, TOKEN_REFRESH_FAILURE: no answer at all (the connection is cut)


class Chaos:
    """The chaos state shared by the proxy's threads; ``injected`` counts answers by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(0)
        self.rate = 0.0
        self.kinds: frozenset[ChaosKind] = frozenset(ChaosKind)
        self.injected: Counter[str] = Counter()
        self._just_inserted: set[str] = set()

    @property
    def on(self) -> bool:
        return self.rate > 0

    def start(self, *, seed: int, rate: float, kinds: frozenset[ChaosKind] | None = None) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"chaos rate is a fraction of requests between 0 and 1, not {rate}")
        with self._lock:
            self._random = random.Random(seed)
            self.rate, self.kinds = rate, kinds or frozenset(ChaosKind)
            self._just_inserted.clear()

    def stop(self) -> None:
        with self._lock:
            self.rate = 0.0
            self._just_inserted.clear()

    def draw(self, exchange: Exchange) -> tuple[ChaosKind, Reply | None] | None:
        """The transient answer to give instead of forwarding ``exchange``, or None to forward it."""
        if not self.on:
            return None
        route = exchange.bigquery_route
        with self._lock:
            if route is not None and route.call is BigQueryCall.JOBS_GET and route.job_id in self._just_inserted:
                self._just_inserted.discard(route.job_id)
                kind = ChaosKind.JOB_NOT_FOUND_AFTER_INSERT
            elif self._random.random() < self.rate:
                choices = [k for k in _KINDS_BY_SERVICE[exchange.service] if k in self.kinds]
                if not choices:
                    return None
                kind = self._random.choice(choices)
            else:
                return None
            self.injected[kind.value] += 1
        return kind, _answer(kind, exchange)

    def observe(self, exchange: Exchange, reply: Reply) -> None:
        """After a forwarded jobs.insert: maybe make the next jobs.get of that job a brief 404."""
        if not self.on or ChaosKind.JOB_NOT_FOUND_AFTER_INSERT not in self.kinds:
            return
        route = exchange.bigquery_route
        if route is None or route.call is not BigQueryCall.JOBS_INSERT or reply.status != 200 or not route.job_id:
            return
        with self._lock:
            if self._random.random() < self.rate * 4:
                self._just_inserted.add(route.job_id)
            else:
                return
        # bqemulator answers the insert with the job already DONE, so a client would never poll it; BigQuery
        # answers PENDING or RUNNING for any job that takes time (https://cloud.google.com/bigquery/docs/managing-jobs),
        # and the client then polls jobs.get: show the job running, so the 404 reaches that poll.
        if (reply.json.get("status") or {}).get("state") == "DONE":
            reply.set_json({**reply.json, "status": {"state": "RUNNING"}})
