"""One HTTP request through the conformance proxy and its answer, as typed data.

Rules read an :class:`Exchange` (which service, which method and path, the JSON body) and either
answer it themselves (a :class:`Reply` built with :func:`bigquery_error`, :func:`storage_error` or
:func:`failed_job`) or let it through to the emulator.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any

#: Where the proxy answers OAuth token refreshes (``token_uri`` of the test credentials).
TOKEN_PATH = "/conformance/token"


class Service(Enum):
    """Which emulator a request is for (told apart by the path: ``/bigquery/v2/...`` or the GCS paths)."""

    BIGQUERY = "bigquery"
    STORAGE = "storage"
    AUTH = "auth"  # the token endpoint the proxy serves itself (see localdev/conformance/token_endpoint.py)


@dataclass
class Exchange:
    """A request as the proxy received it; ``body`` may be rewritten by a rule before it is forwarded."""

    service: Service
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    notes: dict[str, Any] = field(default_factory=dict)  # what a rule's ``before`` leaves for its ``after``

    @classmethod
    def parse(cls, *, method: str, target: str, headers: dict[str, str], body: bytes) -> Exchange:
        parsed = urllib.parse.urlsplit(target)
        if parsed.path.startswith("/bigquery/"):
            service = Service.BIGQUERY
        elif parsed.path == TOKEN_PATH:
            service = Service.AUTH
        else:
            service = Service.STORAGE
        return cls(service=service, method=method.upper(), path=parsed.path,
                   query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
                   headers={k.lower(): v for k, v in headers.items()}, body=body)

    @property
    def target(self) -> str:
        """Path and query string, as forwarded upstream."""
        query = urllib.parse.urlencode(self.query, doseq=True)
        return f"{self.path}?{query}" if query else self.path

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @cached_property
    def json(self) -> dict:
        """The body as a JSON object ({} when it is empty or not JSON)."""
        return parse_json(self.body)

    def set_json(self, payload: dict) -> None:
        self.body = json.dumps(payload).encode()
        self.__dict__["json"] = payload

    # --- BigQuery request shapes -------------------------------------------------------------
    @cached_property
    def bigquery_route(self) -> BigQueryRoute | None:
        return BigQueryRoute.of(self) if self.service is Service.BIGQUERY else None


@dataclass
class Reply:
    """An HTTP answer: from the emulator, or made up by a rule."""

    status: int
    headers: dict[str, str]
    body: bytes

    @cached_property
    def json(self) -> dict:
        return parse_json(self.body)

    def set_json(self, payload: dict) -> None:
        self.body = json.dumps(payload).encode()
        self.headers["Content-Type"] = "application/json; charset=UTF-8"
        self.__dict__["json"] = payload


def parse_json(data: bytes) -> dict:
    if not data:
        return {}
    try:
        found = json.loads(data)
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def json_reply(status: int, payload: dict) -> Reply:
    reply = Reply(status=status, headers={}, body=b"")
    reply.set_json(payload)
    return reply


def bigquery_error_payload(status: int, reason: str, message: str) -> dict:
    """BigQuery's error payload (https://cloud.google.com/bigquery/docs/error-messages)."""
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, ""),
                      "errors": [{"reason": reason, "message": message, "domain": "global"}]}}


def bigquery_error(status: int, reason: str, message: str) -> Reply:
    return json_reply(status, bigquery_error_payload(status, reason, message))


def storage_error(status: int, reason: str, message: str) -> Reply:
    """Cloud Storage's JSON API error payload (https://cloud.google.com/storage/docs/json_api/v1/status-codes)."""
    return json_reply(status, {"error": {"code": status, "message": message,
                                         "errors": [{"reason": reason, "message": message, "domain": "global"}]}})


def failed_job(exchange: Exchange, *, reason: str, message: str) -> Reply:
    """jobs.insert accepted the job, which failed at once: the job resource with ``status.errorResult``.

    This is how BigQuery reports a job-level failure (a rate limit hit by a load, a DML conflict):
    the insert answers 200 and the job is DONE with an error (https://cloud.google.com/bigquery/docs/managing-jobs).
    """
    return json_reply(200, failed_job_resource(exchange.json, reason=reason, message=message))


def failed_job_resource(body: dict, *, reason: str, message: str) -> dict:
    """The job resource of the jobs.insert ``body``, DONE with ``reason`` as its ``status.errorResult``."""
    reference = dict(body.get("jobReference") or {})
    error = {"reason": reason, "message": message}
    return {**body, "kind": "bigquery#job", "jobReference": reference,
            "id": f"{reference.get('projectId', '')}:{reference.get('jobId', '')}",
            "status": {"state": "DONE", "errorResult": error, "errors": [error]},
            "statistics": {"creationTime": "0", "startTime": "0", "endTime": "0"}}


_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
                 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class TableRef:
    project: str
    dataset: str
    table: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def path(self) -> str:
        return f"/bigquery/v2/projects/{self.project}/datasets/{self.dataset}/tables/{self.table}"

    @classmethod
    def from_resource(cls, ref: dict | None, *, default_project: str) -> TableRef | None:
        if not ref or not ref.get("tableId"):
            return None
        return cls(ref.get("projectId") or default_project, ref["datasetId"], ref["tableId"].split("$", 1)[0])


class BigQueryCall(Enum):
    """The BigQuery REST methods the rules tell apart."""

    TABLES_INSERT = "tables.insert"
    TABLES_GET = "tables.get"
    TABLES_PATCH = "tables.patch"
    TABLES_UPDATE = "tables.update"
    TABLES_DELETE = "tables.delete"
    TABLES_LIST = "tables.list"
    DATASETS_GET = "datasets.get"
    DATASETS_INSERT = "datasets.insert"
    JOBS_INSERT = "jobs.insert"
    JOBS_GET = "jobs.get"
    JOBS_QUERY = "jobs.query"
    JOBS_RESULTS = "jobs.getQueryResults"
    OTHER = "other"


_TABLE = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)$")
_TABLES = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables$")
_DATASET = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)$")
_DATASETS = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets$")
_JOBS = re.compile(r"^/bigquery/v2/projects/([^/]+)/jobs$")
_JOB = re.compile(r"^/bigquery/v2/projects/([^/]+)/jobs/([^/]+)$")
_QUERIES = re.compile(r"^/bigquery/v2/projects/([^/]+)/queries$")
_RESULTS = re.compile(r"^/bigquery/v2/projects/([^/]+)/queries/([^/]+)$")


@dataclass(frozen=True)
class BigQueryRoute:
    """Which BigQuery method a request calls, and on what."""

    call: BigQueryCall
    project: str
    dataset: str | None = None
    table: TableRef | None = None
    job_id: str | None = None

    @classmethod
    def of(cls, exchange: Exchange) -> BigQueryRoute:
        path, method = urllib.parse.unquote(exchange.path), exchange.method
        if found := _TABLE.match(path):
            calls = {"GET": BigQueryCall.TABLES_GET, "PATCH": BigQueryCall.TABLES_PATCH,
                     "PUT": BigQueryCall.TABLES_UPDATE, "DELETE": BigQueryCall.TABLES_DELETE}
            project, dataset, table = found.groups()
            return cls(calls.get(method, BigQueryCall.OTHER), project, dataset, TableRef(project, dataset, table))
        if found := _TABLES.match(path):
            call = BigQueryCall.TABLES_INSERT if method == "POST" else BigQueryCall.TABLES_LIST
            project, dataset = found.groups()
            table = TableRef.from_resource(exchange.json.get("tableReference"), default_project=project) \
                if method == "POST" else None
            return cls(call, project, dataset, table)
        if found := _DATASET.match(path):
            return cls(BigQueryCall.DATASETS_GET if method == "GET" else BigQueryCall.OTHER, *found.groups())
        if found := _DATASETS.match(path):
            return cls(BigQueryCall.DATASETS_INSERT if method == "POST" else BigQueryCall.OTHER, found.group(1))
        if found := _JOBS.match(path):
            if method == "POST":
                job_id = (exchange.json.get("jobReference") or {}).get("jobId")
                return cls(BigQueryCall.JOBS_INSERT, found.group(1), job_id=job_id)
            return cls(BigQueryCall.OTHER, found.group(1))
        if found := _JOB.match(path):
            return cls(BigQueryCall.JOBS_GET if method == "GET" else BigQueryCall.OTHER, *found.groups()[:1],
                       job_id=found.group(2))
        if found := _QUERIES.match(path):
            return cls(BigQueryCall.JOBS_QUERY, found.group(1))
        if found := _RESULTS.match(path):
            return cls(BigQueryCall.JOBS_RESULTS, found.group(1), job_id=found.group(2))
        return cls(BigQueryCall.OTHER, "")
