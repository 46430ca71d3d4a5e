"""Query jobs (DML and reads) with the run's retry budget and BigQuery's concurrent-DML retries."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.clients import RetryBudget
from worker.errors import explain_bigquery_error


def run_query(client: bigquery.Client, sql: str, params: list, *, budget: RetryBudget, table: str, action: str,
              location: str | None = None) -> list:
    """Run one query job and return its rows.

    API calls are retried with ``budget.retry``; a job that fails with one of BigQuery's documented
    concurrent-DML errors is run again as a new job (``budget.dml_retry``).

    Raises:
        WorkerError: naming ``table`` and ``action`` (and BigQuery's reasons).
    """
    try:
        job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params), location=location,
                           retry=budget.retry, timeout=budget.request_timeout, job_retry=budget.dml_retry)
        return list(job.result(retry=budget.retry, job_retry=budget.dml_retry))
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=table, action=action) from exc
