"""Expiry decisions for every table the worker creates or fills, whatever the dataset's defaults say.

A dataset's ``defaultTableExpirationMs`` / ``defaultPartitionExpirationMs`` (BigQuery's sandbox sets 60
days) apply to every table created in it, by ``tables.insert`` and by load, copy and query jobs, unless
the table sets its own
(https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets#Dataset.FIELDS.default_table_expiration_ms,
https://cloud.google.com/bigquery/docs/updating-datasets#table-expiration). A partition expires at its
partition time (lower boundary, UTC) plus ``timePartitioning.expirationMs``: an old interval's ledger
partition would expire at once. So the worker decides every table's expiry itself:

- ledger, pending loads, raw tables (without ``raw_table_expiration_days``) and the clean table: never;
  the ledger's and the clean table's partitions: never;
- raw tables with ``raw_table_expiration_days``: that many days after their last load (set by the copy
  job, ``destinationExpirationTime``);
- staging tables: one day (:data:`worker.loading.STAGING_EXPIRY`).

How "never" is said to BigQuery: an insert cannot say it for the table (an absent ``expirationTime``
takes the default), so the worker reads the created table back and, where it shows an expiry, patches
``expirationTime`` to null — a *removed* expiry "takes precedence over the default" (the Dataset
resource; ``bq update --expiration 0`` sends the same). For partitions, ``timePartitioning.expirationMs``
is negative, at creation and in a repair patch ("A negative number indicates no expiration",
``bq --time_partitioning_expiration``, which bq sends as is). Tables created by an earlier release that
inherited a default are repaired the same way at the start of the next run, with a warning naming them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.core.retries import RetryBudget

#: ``timePartitioning.expirationMs`` meaning "partitions never expire" (negative, as bq sends -1 s).
NEVER_PARTITION_MS = -1000

#: How far a table's expiry may be from the decision before it is set again (a reattached load, ms rounding).
TOLERANCE = timedelta(hours=1)


def partitions_expire(table: bigquery.Table | bigquery.table.TableListItem) -> bool:
    """Whether a partitioned table's partitions expire (a positive ``expirationMs``)."""
    partitioning = table.time_partitioning
    return partitioning is not None and (partitioning.expiration_ms or 0) > 0


def expiry_changes(table: bigquery.Table, *, expires: datetime | None) -> list[str]:
    """The fields to patch so ``table`` expires at ``expires`` (None: never) and its partitions never; sets them
    on ``table`` (pure)."""
    fields = []
    if expires is None:
        if table.expires is not None:
            table.expires = None
            fields.append("expires")
    elif table.expires is None or abs(table.expires - expires) > TOLERANCE:
        table.expires = expires
        fields.append("expires")
    if partitions_expire(table):
        partitioning = table.time_partitioning
        partitioning.expiration_ms = NEVER_PARTITION_MS
        table.time_partitioning = partitioning
        fields.append("time_partitioning")
    return fields


def describe(table: bigquery.Table | bigquery.table.TableListItem) -> str:
    """What a table's current expiry is, for a warning."""
    parts = []
    if table.expires is not None:
        parts.append(f"expires {table.expires:%Y-%m-%d %H:%M} UTC")
    if partitions_expire(table):
        parts.append(f"partitions expire after {table.time_partitioning.expiration_ms / 86_400_000:g} days")
    return " and ".join(parts) or "no expiry"


def settle(client: bigquery.Client, table: bigquery.Table, *, expires: datetime | None,
           budget: RetryBudget) -> list[str]:
    """Patch ``table`` (as just read) to the decision when it differs; the fields patched (none: no call).

    The patch carries the table's ETag; when another run changed the table in between (412), the table is
    read again and the decision applied to what it is now (a few rounds).
    """
    for round_ in range(5):
        fields = expiry_changes(table, expires=expires)
        if not fields:
            return []
        try:
            client.update_table(table, fields, retry=budget.retry, timeout=budget.request_timeout)
            return fields
        except gexc.PreconditionFailed:
            if round_ == 4:
                raise
            table = client.get_table(table.reference, retry=budget.retry, timeout=budget.request_timeout)
    return []


def repair_message(table_id: str, before: str, expires: datetime | None) -> str:
    want = "never expires" if expires is None else f"expires {expires:%Y-%m-%d %H:%M} UTC"
    return (f"{table_id} had an expiry it inherited from its dataset's default ({before}): BigQuery would have deleted "
            f"loaded rows with it; it now {want} (partitions never). Tables this worker creates set their own expiry.")


def repair(client: bigquery.Client, tables: Iterable[tuple[bigquery.Table, datetime | None]], *,
           budget: RetryBudget) -> list[str]:
    """Settle each ``(table as read, decision)``; one warning line per table that needed it."""
    notes = []
    for table, expires in tables:
        before = describe(table)
        table_id = f"{table.project}.{table.dataset_id}.{table.table_id}"
        try:
            if settle(client, table, expires=expires, budget=budget):
                notes.append(repair_message(table_id, before, expires))
        except gexc.NotFound:
            continue  # dropped meanwhile: nothing to keep
    return notes
