"""Official GCS and BigQuery clients, pointed at the emulators when their env variables say so.

In the cloud the clients use Application Default Credentials (Workload Identity
on Kubernetes). When ``STORAGE_EMULATOR_HOST`` / ``BIGQUERY_EMULATOR_HOST`` is
set they use anonymous credentials against that endpoint instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from google.api_core import retry as api_retry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, storage

#: Seconds to keep retrying an unreachable endpoint before failing (overridable per run).
DEFAULT_RETRY_DEADLINE_SECONDS = 120.0


def storage_client(*, project_id: str) -> storage.Client:
    """A GCS client for ``project_id`` (anonymous when ``STORAGE_EMULATOR_HOST`` is set), without the
    library's background bucket GET (see :func:`without_bucket_metadata_fetch`)."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return without_bucket_metadata_fetch(storage.Client(project=project_id, credentials=AnonymousCredentials()))
    return without_bucket_metadata_fetch(storage.Client(project=project_id))


def without_bucket_metadata_fetch(client: Any) -> Any:
    """``client`` with google-cloud-storage's bucket-metadata cache turned off; returns ``client``.

    google-cloud-storage 3.x keeps a per-client bucket-metadata cache for its tracing attributes:
    the first call on a bucket queues a background ``GET /b/{bucket}``, which needs
    ``storage.buckets.get`` (not in the object roles the worker and the sensor are granted) and
    costs a request: a sensor making a new client each tick made that GET each tick. Without the
    cache the worker and a tick send object requests only. (The library's process-wide
    switch is the environment variable ``DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA=true``.)
    """
    if getattr(client, "_bucket_metadata_cache", None) is not None:
        client._bucket_metadata_cache = None
    return client


def bigquery_client(*, project_id: str, location: str | None = None) -> bigquery.Client:
    """A BigQuery client for ``project_id`` (anonymous when ``BIGQUERY_EMULATOR_HOST`` is set)."""
    endpoint = os.environ.get("BIGQUERY_EMULATOR_HOST")
    if endpoint:
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return bigquery.Client(
            project=project_id,
            location=location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return bigquery.Client(project=project_id, location=location)


def _transient_predicate():
    import requests
    from google.api_core import exceptions as gexc

    return api_retry.if_exception_type(
        ConnectionError,
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.Timeout,
        gexc.TooManyRequests,
        gexc.InternalServerError,
        gexc.BadGateway,
        gexc.ServiceUnavailable,
        gexc.GatewayTimeout,
    )


def transient_retry(*, deadline_seconds: float) -> api_retry.Retry:
    """Exponential backoff on connection errors, 429 and 5xx, giving up after ``deadline_seconds``."""
    return api_retry.Retry(predicate=_transient_predicate(), initial=0.5, maximum=10.0, multiplier=2.0,
                           timeout=deadline_seconds)


#: Failures of a DML statement that BigQuery documents as transient and the client does not retry:
#: conflicting concurrent mutations of one table and a full DML queue.
#: https://cloud.google.com/bigquery/docs/data-manipulation-language#dml_statement_conflicts
#: https://cloud.google.com/bigquery/quotas#data-manipulation-language-statements
DML_CONCURRENCY_MESSAGES = ("could not serialize access to table", "too many dml statements outstanding")


def is_dml_concurrency_error(exc: BaseException) -> bool:
    """True for the documented concurrent-DML failures, which succeed when the statement is run again."""
    from google.api_core import exceptions as gexc

    if not isinstance(exc, gexc.GoogleAPIError):
        return False
    texts = [str(exc), *(str(e.get("message", "")) for e in (getattr(exc, "errors", None) or []) if isinstance(e, dict))]
    return any(marker in text.lower() for text in texts for marker in DML_CONCURRENCY_MESSAGES)


@dataclass(frozen=True)
class RetryBudget:
    """The one retry policy of a run: every GCS and BigQuery call of the run is retried with it.

    ``deadline_seconds`` bounds how long a call keeps retrying an unreachable endpoint, a 429 or
    a 5xx (then the run fails naming the service); ``request_timeout`` bounds one HTTP request.
    """

    deadline_seconds: float = DEFAULT_RETRY_DEADLINE_SECONDS

    @property
    def request_timeout(self) -> float:
        return max(5.0, min(60.0, self.deadline_seconds))

    @cached_property
    def retry(self) -> api_retry.Retry:
        return transient_retry(deadline_seconds=self.deadline_seconds)

    @cached_property
    def dml_retry(self) -> api_retry.Retry:
        """Re-runs a query job that failed with a documented concurrent-DML error (new job id each time)."""
        return api_retry.Retry(predicate=is_dml_concurrency_error, initial=1.0, maximum=30.0, multiplier=2.0,
                               timeout=self.deadline_seconds)


#: The budget of calls made without a run's own (tests and helpers).
DEFAULT_BUDGET = RetryBudget()
