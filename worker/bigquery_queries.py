"""Query jobs (DML and reads) with the run's retry budget and BigQuery's concurrent-DML retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_jobs import wait_for
from worker.core.errors import explain_bigquery_error
from worker.core.retries import RetryBudget

T = TypeVar("T")

#: Rows asked for with the ``jobs.getQueryResults`` call that waits for a query: the first page comes with the
#: answer that says the job is done, instead of in a second call (the client asks for 0 rows by default). Later
#: pages follow by page token; BigQuery caps a page's size in bytes whatever this asks.
RESULT_PAGE_ROWS = 10_000


def with_dml_retries(budget: RetryBudget, statement: Callable[[], T]) -> T:
    """Run ``statement`` (which starts a query job and waits for it) again, as a new job, while it fails
    with one of BigQuery's documented concurrent-DML errors, within ``budget``'s deadline.

    Done here rather than with the client's ``job_retry``: passing a ``job_retry`` also wraps the job
    insert in the client's own 600 s retry, which would outlast the run's deadline during an outage.
    """
    return budget.dml_retry(statement)()


def run_query(client: bigquery.Client, sql: str, params: list, *, budget: RetryBudget, table: str, action: str,
              location: str | None = None) -> list:
    """Run one query job and return its rows (a statement's: none).

    Waiting for the job and reading its first page of rows is one ``jobs.getQueryResults`` call
    (:data:`RESULT_PAGE_ROWS`), not two.

    API calls are retried with ``budget.retry`` and the job is polled with :func:`worker.bigquery_jobs.wait_for`;
    a job that fails with one of BigQuery's documented concurrent-DML errors, or with a transient reason
    (``rateLimitExceeded``, ``backendError``), is run again as a new job (:func:`with_dml_retries`).

    Raises:
        WorkerError: naming ``table`` and ``action`` (and BigQuery's reasons).
    """
    def statement() -> list:
        job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params), location=location,
                           retry=budget.retry, timeout=budget.request_timeout, job_retry=None)
        return list(wait_for(job, budget=budget, job_retry=None, page_size=RESULT_PAGE_ROWS))

    try:
        return with_dml_retries(budget, statement)
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=table, action=action) from exc


def count_rows(client: bigquery.Client, table_id: str, *, budget: RetryBudget, location: str | None = None) -> int:
    """``COUNT(*)`` of a table: reads table metadata only (0 bytes billed). ``table.num_rows`` would do in
    BigQuery, but bqemulator keeps a stale num_rows after a WRITE_TRUNCATE copy onto an existing table."""
    from worker.sql import quote_table

    rows = run_query(client, f"SELECT COUNT(*) AS n FROM {quote_table(table_id)}", [], budget=budget, table=table_id,  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                     action="counting its rows", location=location)
    return int(rows[0]["n"])
