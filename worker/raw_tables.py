"""The raw tables (one per interval): whether one exists, what it holds, when it expires, and the copy job
configuration that writes it from a staging table (:mod:`worker.loading`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_queries import count_rows
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec


def table_exists(client: bigquery.Client, table_id: str, *, budget: RetryBudget) -> bool:
    """Whether ``table_id`` exists (one metadata read)."""
    try:
        client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return False
    return True


def raw_table_contents(client: bigquery.Client, table_id: str, *,
                       budget: RetryBudget) -> tuple[int, tuple[bigquery.SchemaField, ...]]:
    """``(row count, schema)`` of a raw table, as the ledger records and the publish step reads them."""
    table = client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
    return count_rows(client, table_id, budget=budget), tuple(table.schema)


def raw_copy_config(spec: ImportSpec, *, append: bool, now: datetime) -> bigquery.CopyJobConfig:
    """The staging-to-raw copy: replace (or append to) the raw table, and give it the spec's expiry.

    With ``raw_table_expiration_days`` the copy sets it (``destinationExpirationTime``,
    https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationTableCopy): no patch per
    interval. Without, a copy cannot say "never" (a table it creates takes the dataset's default, if any):
    :func:`worker.loading.load_interval` reads the table back and removes such an expiry. Either way the raw
    table never keeps the staging table's one-day expiry, whether or not a copy carries it over (BigQuery does
    not say).
    """
    config = bigquery.CopyJobConfig(write_disposition="WRITE_APPEND" if append else "WRITE_TRUNCATE")
    expires = raw_table_expiry(spec, now=now)
    if expires is not None:
        config.destination_expiration_time = expires.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return config


def raw_table_expiry(spec: ImportSpec, *, now: datetime) -> datetime | None:
    """When BigQuery deletes a raw table written at ``now`` (``raw_table_expiration_days`` later), or None.

    The spec refuses a value that could expire the only copy of loaded rows (see
    :meth:`ImportSpec._check_raw_table_expiration`); each load of the interval moves the expiry on.
    """
    if spec.raw_table_expiration_days is None:
        return None
    return now + timedelta(days=spec.raw_table_expiration_days)
