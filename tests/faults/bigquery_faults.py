"""A transport hook on a BigQuery client that answers chosen requests with Google's documented error
payloads, and forwards everything else to the real emulator.

bqemulator has no IAM, no DML concurrency limits, no request-size limit and accepts reused job ids;
real BigQuery answers those cases with the payloads below (each rule's ``doc`` links the page that
describes it). The hook wraps the client's HTTP session, so the official client library parses and
retries the answers exactly as it would in the cloud.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from google.cloud import bigquery

from localdev.conformance.exchange import bigquery_error_payload, failed_job_resource


@dataclass
class Rule:
    """Answer requests that ``match`` with ``answer`` (at most ``times`` times)."""

    name: str
    doc: str
    match: Callable[[str, str, dict], bool]
    answer: Callable[[str, str, dict], tuple[int, dict]]
    times: int = 1
    hits: int = 0


def job_insert_with_query(prefix: str) -> Callable[[str, str, dict], bool]:
    """A jobs.insert of a query job whose SQL starts with ``prefix`` (e.g. ``MERGE``, ``UPDATE``)."""
    def match(method: str, url: str, body: dict) -> bool:
        query = ((body.get("configuration") or {}).get("query") or {}).get("query", "")
        return method == "POST" and url.split("?")[0].endswith("/jobs") and query.lstrip().upper().startswith(prefix)
    return match


def failed_job(reason: str, message: str) -> Callable[[str, str, dict], tuple[int, dict]]:
    """jobs.insert accepted the job, which then failed: the job resource with ``status.errorResult``."""
    def answer(method: str, url: str, body: dict) -> tuple[int, dict]:
        return 200, failed_job_resource(body, reason=reason, message=message)
    return answer


def error(status: int, reason: str, message: str) -> Callable[[str, str, dict], tuple[int, dict]]:
    def answer(method: str, url: str, body: dict) -> tuple[int, dict]:
        return status, bigquery_error_payload(status, reason, message)
    return answer


#: https://cloud.google.com/bigquery/docs/data-manipulation-language#dml_statement_conflicts
SERIALIZE = failed_job("invalidQuery", "Could not serialize access to table test-project:raw._gcs_import_ledger due "
                                       "to concurrent update")
#: https://cloud.google.com/bigquery/quotas#data-manipulation-language-statements
TOO_MANY_DML = failed_job("invalidQuery", "Resources exceeded during query execution: Too many DML statements "
                                          "outstanding against table test-project:raw._gcs_import_ledger, limit is 20.")


@dataclass
class BigQueryFaults:
    """Install on a client with ``BigQueryFaults(client, [rules])``; ``requests`` records what was sent."""

    client: bigquery.Client
    rules: list[Rule]
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    _faked_jobs: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        session = self.client._http
        self._original = session.request
        session.request = self._request

    def _request(self, method: str, url: str, data=None, headers=None, **kwargs):
        body = _json(data)
        size = len(data) if isinstance(data, (bytes, str)) else 0
        self.requests.append((method, url, size))
        job_id = _job_id_in(url)
        if method == "GET" and job_id in self._faked_jobs:
            return _response(method, url, 200, self._faked_jobs[job_id])
        for rule in self.rules:
            if rule.hits < rule.times and rule.match(method, url, body):
                rule.hits += 1
                status, payload = rule.answer(method, url, body)
                if status == 200 and payload.get("kind") == "bigquery#job":
                    self._faked_jobs[payload["jobReference"]["jobId"]] = payload
                return _response(method, url, status, payload)
        return self._original(method, url, data=data, headers=headers, **kwargs)


def _json(data) -> dict:
    if not data:
        return {}
    try:
        return json.loads(data)
    except (TypeError, ValueError):
        return {}


def _job_id_in(url: str) -> str | None:
    found = re.search(r"/(?:jobs|queries)/([^/?]+)", url)
    return found.group(1) if found else None


def _response(method: str, url: str, status: int, payload: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(payload).encode()
    response.headers["Content-Type"] = "application/json; charset=UTF-8"
    response.url = url
    response.request = requests.Request(method, url).prepare()
    return response
