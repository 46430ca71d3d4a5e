"""Moving a ledger an earlier release wrote unpartitioned into a partitioned, clustered one (``python -m worker
migrate-ledger``): backed up, copied in chunks of days, swapped, each step counted and checked."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.core.errors import WorkerError, explain_bigquery_error
from worker.ledger.entries import MAX_PARTITIONS_PER_JOB  # defined beside the chunking that also obeys it
from worker.ledger.records import LEDGER_SCHEMA, Ledger, new_ledger_table
from worker.sql import quote_column, quote_table
from worker.table_expiry import settle


def day_chunks(days: Sequence[date], *, size: int | None = None) -> list[list[date]]:
    """Sorted distinct ``days`` cut into runs of at most ``size`` (:data:`MAX_PARTITIONS_PER_JOB`) days: the
    rows of one run fill at most that many day partitions, whatever the gaps between the days (pure)."""
    size = size or MAX_PARTITIONS_PER_JOB
    ordered = sorted(set(days))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def migrate_to_partitioned(ledger: Ledger, *, now: datetime, quiet_minutes: float = 10, force: bool = False) -> dict:
    """Move an unpartitioned ledger (every asset's rows) into a partitioned, clustered one; keep a backup.

    An existing table cannot be re-partitioned: the old table is copied to
    ``_gcs_import_ledger_unpartitioned_<time>`` (a copy job; kept as the backup, counted); every row is
    copied into a new partitioned table ``_gcs_import_ledger_partitioned_<time>`` with ``INSERT ... SELECT``
    statements of at most :data:`MAX_PARTITIONS_PER_JOB` interval days each (BigQuery refuses a query
    job that modifies more partitions), counted; only then is the old ledger dropped and the new table
    copied to its name (a copy job: no partition limit), checked (partitioning, clustering, count) and
    the temporary table dropped. Until then the live ledger is untouched; between the drop and the copy
    it is missing for one copy job: stop the sensors and clean-up jobs of every asset of this raw dataset
    first and let running imports finish.
    Refuses when the ledger was written in the last ``quiet_minutes`` unless ``force``.

    Returns: ``{"migrated": bool, "rows": n, "backup": table id or None}``.

    Raises:
        WorkerError: the ledger was written recently, or a step failed or counted other rows (the message says
            what is unchanged and how to restore).
    """
    ledger.ensure()
    if ledger.partitioned:
        return {"migrated": False, "rows": None, "backup": None}
    table_id = ledger.table_id
    latest = ledger.query(f"SELECT MAX(loaded_at) AS l, MAX(deleted_at) AS d, MAX(sealed_at) AS s, COUNT(*) AS n "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                          f"FROM {quote_table(table_id)}", [], action="reading the load ledger before migrating it")[0]
    written = max((t for t in (latest["l"], latest["d"], latest["s"]) if t is not None), default=None)
    if not force and written is not None and (now - written).total_seconds() < quiet_minutes * 60:
        raise WorkerError(
            f"{table_id} was written at {written.isoformat()}, less than {quiet_minutes:g} minutes ago: stop "
            "the new-files sensors and clean-up jobs of every asset of this raw dataset, let running imports "
            "finish, then run the migration again (or pass --force when nothing runs)."
        )
    project_dataset, name = table_id.rsplit(".", 1)
    backup = f"{project_dataset}.{name}_unpartitioned_{now:%Y%m%d%H%M%S}"
    _back_up(ledger, backup=backup, rows=latest["n"])
    staging = f"{project_dataset}.{name}_partitioned_{now:%Y%m%d%H%M%S}"
    _copy_partitioned(ledger, backup=backup, staging=staging, rows=latest["n"])
    copied = _swap(ledger, backup=backup, staging=staging, rows=latest["n"])
    budget = ledger.budget
    with contextlib.suppress(gexc.GoogleAPIError):  # migrated: a leftover copy is only a table to delete by hand
        ledger.client.delete_table(staging, not_found_ok=True, retry=budget.retry, timeout=budget.request_timeout)
    ledger.partitioned = True
    return {"migrated": True, "rows": int(copied), "backup": backup}


def _back_up(ledger: Ledger, *, backup: str, rows: int) -> None:
    """Copy the ledger to ``backup`` (never expiring) and check it holds ``rows`` rows; nothing else changes."""
    client, budget, table_id = ledger.client, ledger.budget, ledger.table_id
    try:
        client.copy_table(table_id, backup, location=ledger.spec.location, retry=budget.retry,
                          timeout=budget.request_timeout,
                          job_config=bigquery.CopyJobConfig(write_disposition="WRITE_EMPTY")
                          ).result(retry=budget.retry)
        # the backup is the only copy of every row until the swap: never let a dataset default expire it
        settle(client, client.get_table(backup, retry=budget.retry, timeout=budget.request_timeout),
               expires=None, budget=budget)
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=backup, action="backing up the ledger (nothing was changed)") from exc
    saved = ledger.query(f"SELECT COUNT(*) AS n FROM {quote_table(backup)}", [], action="counting the backup")[0]["n"]  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
    if saved != rows:
        raise WorkerError(f"the backup {backup} holds {saved} rows, {table_id} {rows}: something writes "
                          "the ledger; the ledger is unchanged: stop it and run the migration again.")


def _copy_partitioned(ledger: Ledger, *, backup: str, staging: str, rows: int) -> None:
    """Create the partitioned ``staging`` table and copy the backup into it, at most
    :data:`MAX_PARTITIONS_PER_JOB` interval days per statement; check it holds ``rows`` rows."""
    budget, table_id = ledger.budget, ledger.table_id
    unchanged = (f"{table_id} is unchanged and the backup {backup} holds every row: delete {staging}, then "
                 "run the migration again")
    try:
        ledger.client.create_table(new_ledger_table(staging), retry=budget.retry, timeout=budget.request_timeout)
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=staging, action=f"creating the partitioned ledger ({unchanged})") from exc
    columns = ", ".join(quote_column(f.name) for f in LEDGER_SCHEMA)
    days = [row["d"] for row in ledger.query(
        f"SELECT DATE(interval_start) AS d FROM {quote_table(backup)} GROUP BY d ORDER BY d", [],  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
        action="listing the ledger's interval days")]
    for chunk in day_chunks(days):
        # Every column of the new schema: the backup may predate some (added by ensure() above).
        ledger.query(
            f"INSERT INTO {quote_table(staging)} ({columns}) SELECT {columns} FROM {quote_table(backup)} "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            "WHERE interval_start >= @first AND interval_start < @after",
            [bigquery.ScalarQueryParameter("first", "TIMESTAMP", datetime.combine(chunk[0], time(), UTC)),
             bigquery.ScalarQueryParameter("after", "TIMESTAMP",
                                           datetime.combine(chunk[-1] + timedelta(days=1), time(), UTC))],
            action=f"copying the ledger's intervals {chunk[0]}..{chunk[-1]} into {staging} ({unchanged})")
    copied = ledger.query(f"SELECT COUNT(*) AS n FROM {quote_table(staging)}", [], action="counting the copy")[0]["n"]  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
    if copied != rows:
        raise WorkerError(f"the partitioned copy {staging} holds {copied} rows, {table_id} {rows}: "
                          f"something wrote the ledger during the migration; {unchanged}.")


def _swap(ledger: Ledger, *, backup: str, staging: str, rows: int) -> int:
    """Drop the ledger and copy ``staging`` to its name; check partitioning, clustering and ``rows``.
    Returns the migrated ledger's row count."""
    client, budget, table_id = ledger.client, ledger.budget, ledger.table_id
    restore = (f"{staging} holds every row, partitioned, and {backup} every row: copy {staging} to "
               f"{table_id} (bq cp {staging} {table_id}), or the backup back (bq cp -f), or run the "
               "migration again")
    try:
        # A copy job onto a new name creates it with the source's partitioning and clustering, and copy
        # jobs have no partition limit (https://cloud.google.com/bigquery/quotas#copy_jobs); WRITE_EMPTY:
        # never over rows someone wrote in between.
        client.delete_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
        client.copy_table(staging, table_id, location=ledger.spec.location, retry=budget.retry,
                          timeout=budget.request_timeout,
                          job_config=bigquery.CopyJobConfig(write_disposition="WRITE_EMPTY")
                          ).result(retry=budget.retry)
        swapped = client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.GoogleAPIError as exc:
        raise WorkerError(f"replacing {table_id} by its partitioned copy failed ({exc}); {restore}.") from exc
    partitioning = swapped.time_partitioning
    if partitioning is None or partitioning.field != "interval_start" or swapped.clustering_fields != ["asset"]:
        raise WorkerError(f"{table_id} was copied from {staging} without its partitioning or clustering; "
                          f"{restore}.")
    copied = ledger.query(f"SELECT COUNT(*) AS n FROM {quote_table(table_id)}", [], action="counting the migrated ledger")[0]["n"]  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
    if copied != rows:
        raise WorkerError(f"the partitioned {table_id} holds {copied} rows, the backup {rows}: "
                          f"something wrote the ledger during the migration; {restore}.")
    return copied
