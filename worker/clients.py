"""Official GCS and BigQuery clients, pointed at the emulators when their env variables say so.

In the cloud the clients use Application Default Credentials (Workload Identity
on Kubernetes). When ``STORAGE_EMULATOR_HOST`` / ``BIGQUERY_EMULATOR_HOST`` is
set they use anonymous credentials against that endpoint instead.
"""

from __future__ import annotations

import os

from google.api_core import retry as api_retry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, storage

#: Seconds to keep retrying an unreachable endpoint before failing (overridable per run).
DEFAULT_RETRY_DEADLINE_SECONDS = 120.0


def storage_client(*, project_id: str) -> storage.Client:
    """A GCS client for ``project_id`` (anonymous when ``STORAGE_EMULATOR_HOST`` is set)."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project_id, credentials=AnonymousCredentials())
    return storage.Client(project=project_id)


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


def transient_retry(*, deadline_seconds: float) -> api_retry.Retry:
    """Exponential backoff on connection errors, 429 and 5xx, giving up after ``deadline_seconds``."""
    import requests
    from google.api_core import exceptions as gexc

    return api_retry.Retry(
        predicate=api_retry.if_exception_type(
            ConnectionError,
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            gexc.TooManyRequests,
            gexc.InternalServerError,
            gexc.BadGateway,
            gexc.ServiceUnavailable,
            gexc.GatewayTimeout,
        ),
        initial=0.5,
        maximum=10.0,
        multiplier=2.0,
        timeout=deadline_seconds,
    )
