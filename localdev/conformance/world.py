"""What every rule of the conformance proxy can use: the proxy's clock and direct calls to the emulators.

Rules call the emulators directly (not through the proxy) to look at the state a request would change:
whether a table exists, its schema, a dataset's default expiry, an object's generation.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from localdev.conformance.exchange import Reply, Service, TableRef, parse_json


@dataclass
class Clock:
    """Wall-clock time moved by ``offset``: a test moves it past an expiry instead of waiting."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def now_ms(self) -> int:
        return int(self.now().timestamp() * 1000)


@dataclass
class Upstream:
    """The two emulators behind the proxy, and plain-HTTP helpers to ask them things."""

    bigquery_endpoint: str
    storage_endpoint: str
    gcs_root: Path | None = None
    _local: threading.local = field(default_factory=threading.local)

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def endpoint(self, service: Service) -> str:
        return self.bigquery_endpoint if service is Service.BIGQUERY else self.storage_endpoint

    def send(self, service: Service, method: str, target: str, *, headers: dict[str, str], body: bytes) -> Reply:
        response = self.session.request(method, self.endpoint(service) + target, headers=headers, data=body or None,
                                        allow_redirects=False, timeout=600)
        return Reply(status=response.status_code, headers=dict(response.headers), body=response.content)

    def bigquery(self, method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
        response = self.session.request(method, self.bigquery_endpoint + path, timeout=600,
                                        data=json.dumps(payload) if payload is not None else None,
                                        headers={"Content-Type": "application/json"})
        return response.status_code, parse_json(response.content)

    def table(self, table: TableRef) -> dict | None:
        """tables.get on the emulator, or None when the table does not exist."""
        status, body = self.bigquery("GET", table.path)
        return body if status == 200 else None

    def query(self, project: str, sql: str) -> list[list]:
        """Run ``sql`` on the emulator (jobs.query); the rows as lists of raw values. Raises on an error."""
        status, body = self.bigquery("POST", f"/bigquery/v2/projects/{project}/queries",
                                     {"query": sql, "useLegacySql": False, "timeoutMs": 600000})
        if status != 200 or body.get("errors"):
            raise RuntimeError(f"conformance proxy: query failed on the emulator ({status}): {body} for {sql}")
        return [[cell.get("v") for cell in row.get("f", [])] for row in body.get("rows", [])]

    def storage(self, method: str, path: str) -> tuple[int, dict]:
        response = self.session.request(method, self.storage_endpoint + path, timeout=600)
        return response.status_code, parse_json(response.content)


@dataclass
class World:
    """The clock, the emulators, and the jobs rules answered for (a job refused at insert exists in
    BigQuery as a failed job: jobs.get must find it)."""

    clock: Clock
    upstream: Upstream
    jobs: dict[str, dict] = field(default_factory=dict)
