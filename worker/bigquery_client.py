"""The official BigQuery client, pointed at the emulator when ``BIGQUERY_EMULATOR_HOST`` says so.

In the cloud it uses Application Default Credentials (Workload Identity on Kubernetes); against the
emulator the credentials of :func:`worker.core.gcs.emulator_credentials`.
"""

from __future__ import annotations

import os

from google.api_core.client_options import ClientOptions
from google.cloud import bigquery

from worker.core.gcs import emulator_credentials


def bigquery_client(*, project_id: str, location: str | None = None) -> bigquery.Client:
    """A BigQuery client for ``project_id`` (emulator credentials when ``BIGQUERY_EMULATOR_HOST`` is set)."""
    endpoint = os.environ.get("BIGQUERY_EMULATOR_HOST")
    if endpoint:
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return bigquery.Client(
            project=project_id,
            location=location,
            credentials=emulator_credentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return bigquery.Client(project=project_id, location=location)
