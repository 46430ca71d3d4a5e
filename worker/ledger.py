"""The ledger: a BigQuery table that durably records what each run loaded (and what retention deleted).

One row per loaded object: asset, interval, object name, generation, size, job id,
the interval's row count, raw table and load time. It is the only source of truth
for skipping unchanged intervals and for retention (which deletes nothing the
ledger does not list). It lives in the raw dataset as ``_gcs_import_ledger``.

Rows for an interval are written with one MERGE statement (atomic in BigQuery) unless they
do not fit one request (more than 10,000 objects, or about 4 MB of names: see
:func:`Ledger.record_interval`). Rows of
objects retention deleted are never removed, and an interval's seal (written by
retention before its first delete) is never lost, whatever runs concurrently.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_queries import run_query
from worker.core.errors import WorkerError, explain_bigquery_error
from worker.core.records import SKIPPED_JOB_ID, LedgerEntry, LoadedObject, RecordedInterval, SnapshotCandidate
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
from worker.schema_changes import widen_table
from worker.sql import quote_column, quote_table
from worker.table_expiry import NEVER_PARTITION_MS, repair, settle

LEDGER_SCHEMA = (
    bigquery.SchemaField("asset", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("interval_start", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("object_name", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("generation", "INT64", mode="REQUIRED"),
    bigquery.SchemaField("size_bytes", "INT64"),
    bigquery.SchemaField("job_id", "STRING"),
    bigquery.SchemaField("interval_rows", "INT64"),
    bigquery.SchemaField("raw_table", "STRING"),
    bigquery.SchemaField("loaded_at", "TIMESTAMP"),
    bigquery.SchemaField("deleted_at", "TIMESTAMP"),
    bigquery.SchemaField("digest", "STRING"),
    # Written by retention before its first delete in the interval; never cleared.
    bigquery.SchemaField("sealed_at", "TIMESTAMP"),
)
_INSERT_COLUMNS = ("asset", "interval_start", "object_name", "generation", "size_bytes", "job_id",
                   "interval_rows", "raw_table", "loaded_at", "digest", "sealed_at")


#: Objects per ledger statement at most, and bytes of their encoded entries at most: a statement's
#: request stays far below BigQuery's 10 MB limit (https://cloud.google.com/bigquery/quotas#query_jobs)
#: whatever the names' length (GCS allows 1,024 bytes).
LEDGER_CHUNK = 10_000
LEDGER_CHUNK_BYTES = 4_000_000

#: The rows of ``@entries``: one STRING parameter holding a JSON array of ``[name, generation, size,
#: job_id]``. As ARRAY<STRUCT> query parameters every entry became five parameter objects and five JSON
#: objects in the request (and again in the response that echoes it): about 6 KB of worker memory per
#: object, 60 MB for 10,000 (measured by ``python -m localdev.benchmarks``). As one string an entry
#: costs its JSON text. The generation travels as a string (JSON numbers are doubles). PARSE_JSON makes
#: the elements JSON values, so JSON_VALUE reads each name exactly, whatever characters it holds.
_ENTRIES_SQL = (
    "(SELECT JSON_VALUE(j, '$[0]') AS object_name, CAST(JSON_VALUE(j, '$[1]') AS INT64) AS generation, "
    "CAST(JSON_VALUE(j, '$[2]') AS INT64) AS size_bytes, JSON_VALUE(j, '$[3]') AS job_id "
    "FROM UNNEST(JSON_QUERY_ARRAY(PARSE_JSON(@entries))) AS j)"
)


def wire_bytes(text: str) -> int:
    """Bytes ``text`` takes inside a request body: the client JSON-encodes it with ``ensure_ascii``,
    so a non-ASCII character costs 6-12 bytes and a quote or backslash 2 (without the quotes)."""
    return len(json.dumps(text)) - 2


def bounded_chunks(texts: Iterable[str], *, separator_bytes: int) -> list[list[str]]:
    """``texts`` in order, cut into chunks of at most :data:`LEDGER_CHUNK` items whose request bytes
    (each item's :func:`wire_bytes` plus ``separator_bytes``) stay within :data:`LEDGER_CHUNK_BYTES`."""
    chunks: list[list[str]] = [[]]
    size = 0
    for text in texts:
        length = wire_bytes(text) + separator_bytes
        if chunks[-1] and (len(chunks[-1]) >= LEDGER_CHUNK or size + length > LEDGER_CHUNK_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(text)
        size += length
    return chunks


def entry_chunks(entries: Sequence[LedgerEntry]) -> list[str]:
    """``entries`` as ``@entries`` values: JSON arrays of at most LEDGER_CHUNK entries, each within
    LEDGER_CHUNK_BYTES as sent (:func:`wire_bytes`, brackets and commas included).

    Always at least one chunk (``"[]"`` for no entries), so a statement that also removes
    other rows runs once even for an empty interval.
    """
    texts = (json.dumps([e.name, str(e.generation), e.size, e.job_id], ensure_ascii=False, separators=(",", ":"))
             for e in entries)
    # one comma per entry counts the brackets' two bytes too (n entries: n - 1 commas + 2 brackets)
    return ["[" + ",".join(chunk) + "]" for chunk in bounded_chunks(texts, separator_bytes=1)]


def _entries_param(chunk: str) -> bigquery.ScalarQueryParameter:
    return bigquery.ScalarQueryParameter("entries", "STRING", chunk)


#: Intents of loads whose copy may reach a raw table before the ledger records them. A worker writes its
#: load's objects here (keyed by its copy job and staging table) before the copy, and deletes them after
#: its ledger write; a worker that died in between leaves them, and the next import of the interval
#: records exactly those objects if that copy ran (see worker.run), so the ledger always catches up with
#: what the raw table holds: never a row loaded twice, never a file deleted that the ledger missed.
PENDING_SCHEMA = (
    bigquery.SchemaField("asset", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("interval_start", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("pending_key", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("object_name", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("generation", "INT64", mode="REQUIRED"),
    bigquery.SchemaField("size_bytes", "INT64"),
    bigquery.SchemaField("created_at", "TIMESTAMP"),
    # The load skipped the object (on_bad_file: skip): a recovery must record it as skipped, never as
    # loaded (retention would then delete a file BigQuery never read).
    bigquery.SchemaField("skipped", "BOOL"),
)


def pending_key(*, copy_job_base: str, staging_table_id: str) -> str:
    """The key of one attempt's pending load: its copy job id base and its private staging table."""
    return f"{copy_job_base}|{staging_table_id}"


#: Partitions one query or load job may modify: "Each job operation (query or load) can affect up to 4,000
#: partitions. BigQuery rejects any query or load job that attempts to modify more than 4,000 partitions."
#: (https://cloud.google.com/bigquery/quotas#partitioned_tables). The ledger is partitioned by day.
MAX_PARTITIONS_PER_JOB = 4000


def day_chunks(days: Sequence[date], *, size: int | None = None) -> list[list[date]]:
    """Sorted distinct ``days`` cut into runs of at most ``size`` (:data:`MAX_PARTITIONS_PER_JOB`) days: the
    rows of one run fill at most that many day partitions, whatever the gaps between the days (pure)."""
    size = size or MAX_PARTITIONS_PER_JOB
    ordered = sorted(set(days))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def new_ledger_table(table_id: str) -> bigquery.Table:
    """The ledger table as it is created: partitioned by day of ``interval_start``, clustered by asset."""
    table = bigquery.Table(table_id, schema=list(LEDGER_SCHEMA))
    # Partitions never expire, whatever the dataset's default (worker.table_expiry): an old interval's
    # partition would expire at once, and the interval would look never loaded.
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="interval_start",
                                                        expiration_ms=NEVER_PARTITION_MS)
    table.clustering_fields = ["asset"]
    return table


def asset_id(spec: ImportSpec) -> str:
    """The ledger's key for a spec: its Dagster asset key path, e.g. ``gitcoin/passport_scores``."""
    return "/".join([*(spec.key_prefix or ()), spec.name])


class Ledger:
    """Reads and writes one spec's rows of the ledger table.

    Every call is retried with the run's :class:`RetryBudget`; DML statements are also re-run
    on BigQuery's documented concurrent-update errors. Failures raise :class:`WorkerError`
    naming the ledger table.
    """

    def __init__(self, client: bigquery.Client, spec: ImportSpec, *, budget: RetryBudget | None = None) -> None:
        self._client = client
        self._spec = spec
        self._table_id = spec.ledger_table_id
        self._pending_id = spec.pending_table_id
        self._asset = asset_id(spec)
        self._budget = budget or RetryBudget()
        #: False after :meth:`ensure` found a ledger written unpartitioned by an earlier release.
        self.partitioned = True
        #: Warnings of :meth:`ensure`: ledger tables an earlier release left with an inherited expiry, now repaired.
        self.expiry_repaired: list[str] = []

    @property
    def table_id(self) -> str:
        return self._table_id

    def ensure(self) -> None:
        """Create the ledger table if it does not exist (the raw dataset must exist).

        New ledgers are partitioned by day of ``interval_start`` and clustered by asset, so DML
        statements of different intervals touch different partitions (BigQuery detects conflicts
        per partition). A ledger written by an earlier release lacks newer columns; they are added
        in place (every recorded row is kept). One written unpartitioned keeps working;
        :meth:`migrate_to_partitioned` (``python -m worker migrate-ledger``) converts it.
        """
        budget = self._budget
        try:
            try:
                pending = self._client.get_table(self._pending_id, retry=budget.retry, timeout=budget.request_timeout)
                self._never_expire(pending, existing=True)
            except gexc.NotFound:
                pending = self._client.create_table(bigquery.Table(self._pending_id, schema=list(PENDING_SCHEMA)),
                                                    exists_ok=True, retry=budget.retry, timeout=budget.request_timeout)
                self._never_expire(pending, existing=False)
            have_pending = {f.name for f in pending.schema}
            self._upgrade(self._pending_id, [f for f in PENDING_SCHEMA if f.name not in have_pending],
                          what="the pending loads")
            try:
                table = self._client.get_table(self._table_id, retry=budget.retry, timeout=budget.request_timeout)
                self._never_expire(table, existing=True)
            except gexc.NotFound:
                created = self._client.create_table(new_ledger_table(self._table_id), exists_ok=True,
                                                    retry=budget.retry, timeout=budget.request_timeout)
                self._never_expire(created, existing=False)
                return
        except gexc.GoogleAPIError as exc:
            raise explain_bigquery_error(exc, table=self._table_id, action="creating the load ledger") from exc
        self.partitioned = table.time_partitioning is not None
        have = {f.name for f in table.schema}
        self._upgrade(self._table_id, [f for f in LEDGER_SCHEMA if f.name not in have], what="the load ledger")

    def _never_expire(self, table: bigquery.Table, *, existing: bool) -> None:
        """Remove an expiry the table got from its dataset's default (worker.table_expiry); before any schema
        patch, since the patch is conditional on the table as read (ETag). Noted for a warning when the table
        existed before this run (an earlier release created it)."""
        if existing:
            self.expiry_repaired += repair(self._client, [(table, None)], budget=self._budget)
        else:
            settle(self._client, table, expires=None, budget=self._budget)

    def _upgrade(self, table_id: str, missing: list[bigquery.SchemaField], *, what: str) -> None:
        """Add the columns a table written by an earlier release lacks (NULLABLE; every row kept) with one
        schema patch for all of them, not one ``ALTER TABLE`` each: BigQuery allows 5 table updates per
        10 seconds (:func:`worker.schema_changes.widen_table`)."""
        if not missing:
            return
        try:
            widen_table(self._client, table_id, add=missing, budget=self._budget)
        except gexc.GoogleAPIError as exc:
            raise explain_bigquery_error(
                exc, table=table_id, action=f"adding columns {[f.name for f in missing]} to {what} (upgrade)") from exc

    def migrate_to_partitioned(self, *, now: datetime, quiet_minutes: float = 10, force: bool = False) -> dict:
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
        """
        self.ensure()
        if self.partitioned:
            return {"migrated": False, "rows": None, "backup": None}
        table = quote_table(self._table_id)
        latest = self._query(f"SELECT MAX(loaded_at) AS l, MAX(deleted_at) AS d, MAX(sealed_at) AS s, COUNT(*) AS n "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                             f"FROM {table}", [], action="reading the load ledger before migrating it")[0]
        written = max((t for t in (latest["l"], latest["d"], latest["s"]) if t is not None), default=None)
        if not force and written is not None and (now - written).total_seconds() < quiet_minutes * 60:
            raise WorkerError(
                f"{self._table_id} was written at {written.isoformat()}, less than {quiet_minutes:g} minutes ago: stop "
                "the new-files sensors and clean-up jobs of every asset of this raw dataset, let running imports "
                "finish, then run the migration again (or pass --force when nothing runs)."
            )
        project_dataset, name = self._table_id.rsplit(".", 1)
        backup = f"{project_dataset}.{name}_unpartitioned_{now:%Y%m%d%H%M%S}"
        budget = self._budget
        try:
            self._client.copy_table(self._table_id, backup, location=self._spec.location, retry=budget.retry,
                                    timeout=budget.request_timeout,
                                    job_config=bigquery.CopyJobConfig(write_disposition="WRITE_EMPTY")
                                    ).result(retry=budget.retry)
            # the backup is the only copy of every row until the swap: never let a dataset default expire it
            settle(self._client, self._client.get_table(backup, retry=budget.retry, timeout=budget.request_timeout),
                   expires=None, budget=budget)
        except gexc.GoogleAPIError as exc:
            raise explain_bigquery_error(exc, table=backup, action="backing up the ledger (nothing was changed)") from exc
        saved = self._query(f"SELECT COUNT(*) AS n FROM {quote_table(backup)}", [], action="counting the backup")[0]["n"]  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
        if saved != latest["n"]:
            raise WorkerError(f"the backup {backup} holds {saved} rows, {self._table_id} {latest['n']}: something writes "
                              "the ledger; the ledger is unchanged: stop it and run the migration again.")
        staging = f"{project_dataset}.{name}_partitioned_{now:%Y%m%d%H%M%S}"
        unchanged = (f"{self._table_id} is unchanged and the backup {backup} holds every row: delete {staging}, then "
                     "run the migration again")
        try:
            self._client.create_table(new_ledger_table(staging), retry=budget.retry, timeout=budget.request_timeout)
        except gexc.GoogleAPIError as exc:
            raise explain_bigquery_error(exc, table=staging, action=f"creating the partitioned ledger ({unchanged})") from exc
        columns = ", ".join(quote_column(f.name) for f in LEDGER_SCHEMA)
        days = [row["d"] for row in self._query(
            f"SELECT DATE(interval_start) AS d FROM {quote_table(backup)} GROUP BY d ORDER BY d", [],  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            action="listing the ledger's interval days")]
        for chunk in day_chunks(days):
            # Every column of the new schema: the backup may predate some (added by ensure() above).
            self._query(
                f"INSERT INTO {quote_table(staging)} ({columns}) SELECT {columns} FROM {quote_table(backup)} "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                "WHERE interval_start >= @first AND interval_start < @after",
                [bigquery.ScalarQueryParameter("first", "TIMESTAMP", datetime.combine(chunk[0], time(), UTC)),
                 bigquery.ScalarQueryParameter("after", "TIMESTAMP",
                                               datetime.combine(chunk[-1] + timedelta(days=1), time(), UTC))],
                action=f"copying the ledger's intervals {chunk[0]}..{chunk[-1]} into {staging} ({unchanged})")
        copied = self._query(f"SELECT COUNT(*) AS n FROM {quote_table(staging)}", [], action="counting the copy")[0]["n"]  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
        if copied != latest["n"]:
            raise WorkerError(f"the partitioned copy {staging} holds {copied} rows, {self._table_id} {latest['n']}: "
                              f"something wrote the ledger during the migration; {unchanged}.")
        restore = (f"{staging} holds every row, partitioned, and {backup} every row: copy {staging} to "
                   f"{self._table_id} (bq cp {staging} {self._table_id}), or the backup back (bq cp -f), or run the "
                   "migration again")
        try:
            # A copy job onto a new name creates it with the source's partitioning and clustering, and copy
            # jobs have no partition limit (https://cloud.google.com/bigquery/quotas#copy_jobs); WRITE_EMPTY:
            # never over rows someone wrote in between.
            self._client.delete_table(self._table_id, retry=budget.retry, timeout=budget.request_timeout)
            self._client.copy_table(staging, self._table_id, location=self._spec.location, retry=budget.retry,
                                    timeout=budget.request_timeout,
                                    job_config=bigquery.CopyJobConfig(write_disposition="WRITE_EMPTY")
                                    ).result(retry=budget.retry)
            swapped = self._client.get_table(self._table_id, retry=budget.retry, timeout=budget.request_timeout)
        except gexc.GoogleAPIError as exc:
            raise WorkerError(f"replacing {self._table_id} by its partitioned copy failed ({exc}); {restore}.") from exc
        partitioning = swapped.time_partitioning
        if partitioning is None or partitioning.field != "interval_start" or swapped.clustering_fields != ["asset"]:
            raise WorkerError(f"{self._table_id} was copied from {staging} without its partitioning or clustering; "
                              f"{restore}.")
        copied = self._query(f"SELECT COUNT(*) AS n FROM {table}", [], action="counting the migrated ledger")[0]["n"]  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
        if copied != latest["n"]:
            raise WorkerError(f"the partitioned {self._table_id} holds {copied} rows, the backup {latest['n']}: "
                              f"something wrote the ledger during the migration; {restore}.")
        with contextlib.suppress(gexc.GoogleAPIError):  # migrated: a leftover copy is only a table to delete by hand
            self._client.delete_table(staging, not_found_ok=True, retry=budget.retry, timeout=budget.request_timeout)
        self.partitioned = True
        return {"migrated": True, "rows": int(copied), "backup": backup}

    def recorded(self, *, start: datetime | None = None, end: datetime | None = None,
                 include_deleted: bool = True) -> list[LoadedObject]:
        """Recorded objects of this asset with ``start <= interval_start < end``."""
        sql = (
            "SELECT interval_start, object_name, generation, size_bytes, interval_rows, loaded_at, deleted_at, digest, "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            f"sealed_at, job_id FROM {quote_table(self._table_id)} "
            "WHERE asset = @asset AND interval_start >= @start AND interval_start < @end"
        )
        if not include_deleted:
            sql += " AND deleted_at IS NULL"
        params = [
            bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", start or datetime(1970, 1, 1)),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", end or datetime(9999, 1, 1)),
        ]
        rows = self._query(sql, params, action="reading the load ledger")
        return [
            LoadedObject(interval_start=row["interval_start"], name=row["object_name"], generation=int(row["generation"]),
                         size=int(row["size_bytes"] or 0), deleted=row["deleted_at"] is not None,
                         interval_rows=int(row["interval_rows"] or 0), loaded_at=row["loaded_at"],
                         digest=row["digest"], sealed=row["sealed_at"] is not None, job_id=row["job_id"])
            for row in rows
        ]

    def recorded_intervals(self, *, start: datetime, end: datetime) -> dict[datetime, RecordedInterval]:
        """{interval start: its record} for the recorded intervals in ``[start, end)``."""
        by_start: dict[datetime, list[LoadedObject]] = {}
        for obj in self.recorded(start=start, end=end):
            by_start.setdefault(obj.interval_start, []).append(obj)
        return {s: RecordedInterval.from_rows(rows) for s, rows in by_start.items()}

    def snapshot_candidates(self) -> list[SnapshotCandidate]:
        """Every interval this asset has loaded, with its row count (for the Overwrite snapshot)."""
        sql = (f"SELECT interval_start, MAX(interval_rows) AS n FROM {quote_table(self._table_id)} "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
               "WHERE asset = @asset GROUP BY interval_start")
        rows = self._query(sql, [bigquery.ScalarQueryParameter("asset", "STRING", self._asset)],
                           action="reading the load ledger")
        return sorted((SnapshotCandidate(interval_start=row["interval_start"], rows=int(row["n"] or 0)) for row in rows),
                      key=lambda c: c.interval_start)

    def loaded_intervals(self) -> list[datetime]:
        """Every interval start this asset has ever loaded."""
        return [c.interval_start for c in self.snapshot_candidates()]

    def previous_interval(self, before: datetime) -> datetime | None:
        """The newest recorded interval that starts before ``before``."""
        earlier = [start for start in self.loaded_intervals() if start < before]
        return max(earlier, default=None)

    def record_interval(self, *, interval_start: datetime, entries: Sequence[LedgerEntry], interval_rows: int,
                        raw_table: str, loaded_at: datetime, digest: str) -> None:
        """Record that the interval now holds ``entries``.

        Rows of the same object generation are updated and keep their ``deleted_at`` and
        ``sealed_at``; new rows inherit the interval's seal as it is when the statement runs (so
        a seal written by a concurrent retention is never lost); recorded rows missing from
        ``entries`` are removed, except rows of objects retention deleted, which are kept forever.

        When the entries fit one chunk (:func:`entry_chunks`: up to :data:`LEDGER_CHUNK` entries and
        :data:`LEDGER_CHUNK_BYTES` as sent) this is one atomic MERGE. Larger intervals are written
        in chunks (each request stays far below BigQuery's 10 MB limit), then the interval's rows
        this write did not touch are removed: a crash in between leaves extra rows of objects that
        are either still listed (the next import reloads, seeing the difference) or gone (retention
        finds nothing to delete) — never a missing row of a loaded object.
        """
        interval_params = [
            bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
            bigquery.ScalarQueryParameter("interval_start", "TIMESTAMP", interval_start),
            bigquery.ScalarQueryParameter("interval_rows", "INT64", interval_rows),
            bigquery.ScalarQueryParameter("raw_table", "STRING", raw_table),
            bigquery.ScalarQueryParameter("loaded_at", "TIMESTAMP", loaded_at),
            bigquery.ScalarQueryParameter("digest", "STRING", digest),
        ]
        action = f"recording interval {interval_start.isoformat()} in the load ledger"
        chunks = entry_chunks(entries)
        for chunk in chunks:
            self._query(self._merge_sql(remove_others=len(chunks) == 1), [_entries_param(chunk), *interval_params],
                        action=action)
        if len(chunks) > 1:
            table = quote_table(self._table_id)
            untouched = "asset = @asset AND interval_start = @interval_start AND loaded_at != @loaded_at"
            self._query(f"DELETE FROM {table} WHERE {untouched} AND deleted_at IS NULL", interval_params, action=action)  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            self._query(f"UPDATE {table} SET interval_rows = @interval_rows, raw_table = @raw_table, "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                        f"digest = @digest, loaded_at = @loaded_at WHERE {untouched}", interval_params, action=action)

    def _merge_sql(self, *, remove_others: bool) -> str:
        table = quote_table(self._table_id)
        columns = ", ".join(_INSERT_COLUMNS)
        # Rows of deleted objects are never removed, but they take the interval's new figures.
        remove = ("WHEN NOT MATCHED BY SOURCE AND T.asset = @asset AND T.interval_start = @interval_start "
                  "AND T.deleted_at IS NULL THEN DELETE "
                  "WHEN NOT MATCHED BY SOURCE AND T.asset = @asset AND T.interval_start = @interval_start "
                  "THEN UPDATE SET interval_rows = @interval_rows, raw_table = @raw_table, loaded_at = @loaded_at, "
                  "digest = @digest " if remove_others else "")
        return (
            f"MERGE {table} T "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            "USING (SELECT e.object_name, e.generation, e.size_bytes, e.job_id, "
            f"(SELECT MAX(sealed_at) FROM {table} WHERE asset = @asset AND interval_start = @interval_start) AS sealed_at "
            f"FROM {_ENTRIES_SQL} AS e) S "
            "ON T.asset = @asset AND T.interval_start = @interval_start AND T.object_name = S.object_name "
            "AND T.generation = S.generation "
            # job_id too: the same generation may be skipped by one load and loaded by the next (or the reverse)
            "WHEN MATCHED THEN UPDATE SET interval_rows = @interval_rows, raw_table = @raw_table, job_id = S.job_id, "
            "loaded_at = @loaded_at, digest = @digest "
            f"{remove}"
            f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES (@asset, @interval_start, S.object_name, S.generation, "
            "S.size_bytes, S.job_id, @interval_rows, @raw_table, @loaded_at, @digest, S.sealed_at)"
        )

    def write_pending(self, *, interval_start: datetime, key: str, entries: Sequence[LedgerEntry],
                      created_at: datetime) -> None:
        """Record a load's objects as pending before its copy may change the raw table.

        Idempotent: one statement per chunk, keyed by the load (asset, interval, pending key) and each
        object generation, inserts only the rows not there yet, so writing the same pending load again (a
        statement run again after a lost or failed job, a later round of the same attempt) never duplicates
        a row. An INSERT rather than a MERGE: BigQuery runs concurrent INSERTs of one table without conflict
        (https://cloud.google.com/bigquery/docs/data-manipulation-language#dml_statement_conflicts), and the
        pending table is shared by every interval of the asset.
        """
        table = quote_table(self._pending_id)
        for chunk in entry_chunks(entries):
            sql = (f"INSERT INTO {table} (asset, interval_start, pending_key, object_name, "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                   "generation, size_bytes, created_at, skipped) SELECT @asset, @interval_start, @key, e.object_name, "
                   f"e.generation, e.size_bytes, @created_at, e.job_id = @skipped_id FROM {_ENTRIES_SQL} AS e "
                   f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.asset = @asset "
                   "AND p.interval_start = @interval_start AND p.pending_key = @key "
                   "AND p.object_name = e.object_name AND p.generation = e.generation)")
            self._query(sql, [_entries_param(chunk), *self._pending_params(interval_start, key),
                              bigquery.ScalarQueryParameter("created_at", "TIMESTAMP", created_at),
                              bigquery.ScalarQueryParameter("skipped_id", "STRING", SKIPPED_JOB_ID)],
                        action=f"recording a pending load of interval {interval_start.isoformat()}")

    def pending(self, *, start: datetime, end: datetime) -> dict[datetime, dict[str, list[LedgerEntry]]]:
        """{interval start: {pending key: objects}} of this asset's pending loads in ``[start, end)``."""
        sql = (f"SELECT interval_start, pending_key, object_name, generation, size_bytes, skipped "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
               f"FROM {quote_table(self._pending_id)} "
               "WHERE asset = @asset AND interval_start >= @start AND interval_start < @end")
        rows = self._query(sql, [bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
                                 bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
                                 bigquery.ScalarQueryParameter("end", "TIMESTAMP", end)],
                           action="reading pending loads")
        out: dict[datetime, dict[str, list[LedgerEntry]]] = {}
        for row in rows:
            job_id = SKIPPED_JOB_ID if row["skipped"] else row["pending_key"].split("|", 1)[0]
            entry = LedgerEntry(name=row["object_name"], generation=int(row["generation"]),
                                size=int(row["size_bytes"] or 0), job_id=job_id)
            out.setdefault(row["interval_start"], {}).setdefault(row["pending_key"], []).append(entry)
        return out

    def drop_pending(self, *, interval_start: datetime, key: str) -> None:
        """Forget one pending load (after its ledger write, or when another attempt's copy won)."""
        self._query(f"DELETE FROM {quote_table(self._pending_id)} WHERE asset = @asset AND "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                    "interval_start = @interval_start AND pending_key = @key", self._pending_params(interval_start, key),
                    action="clearing a pending load")

    def _pending_params(self, interval_start: datetime, key: str) -> list:
        return [bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
                bigquery.ScalarQueryParameter("interval_start", "TIMESTAMP", interval_start),
                bigquery.ScalarQueryParameter("key", "STRING", key)]

    def seal(self, intervals: Iterable[datetime], *, sealed_at: datetime) -> None:
        """Seal intervals before retention deletes from them: imports never rebuild them afterwards."""
        starts = sorted(set(intervals))
        if not starts:
            return
        sql = (
            f"UPDATE {quote_table(self._table_id)} SET sealed_at = @sealed_at "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            "WHERE asset = @asset AND interval_start IN UNNEST(@starts) AND sealed_at IS NULL"
        )
        params = [
            bigquery.ScalarQueryParameter("sealed_at", "TIMESTAMP", sealed_at),
            bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
            bigquery.ArrayQueryParameter("starts", "TIMESTAMP", starts),
        ]
        self._query(sql, params, action="sealing intervals before retention deletes")

    def mark_deleted(self, objects: Iterable[LoadedObject], *, deleted_at: datetime) -> None:
        """Stamp ``deleted_at`` on the given (name, generation) rows, in every interval that records them.

        Deliberately not narrowed to the objects' intervals: a row of the same generation under
        another interval (left by a spec change that regrouped the files) must be stamped too, or
        that interval would stay open and a reload would replace its raw table without the deleted
        file's rows. Keys go in chunks bounded like the entries (:func:`bounded_chunks`).
        """
        keys = sorted({f"{obj.name}#{obj.generation}" for obj in objects})
        sql = (
            f"UPDATE {quote_table(self._table_id)} SET deleted_at = @deleted_at "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            "WHERE asset = @asset AND CONCAT(object_name, '#', CAST(generation AS STRING)) IN UNNEST(@keys)"
        )
        # each ARRAY<STRING> element is sent as {"value": "..."} followed by ", "
        for chunk in bounded_chunks(keys, separator_bytes=len('{"value": ""}, ')):
            params = [
                bigquery.ScalarQueryParameter("deleted_at", "TIMESTAMP", deleted_at),
                bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
                bigquery.ArrayQueryParameter("keys", "STRING", chunk),
            ]
            self._query(sql, params, action="recording deletions in the load ledger")

    def _query(self, sql: str, params: list, *, action: str) -> list:
        return run_query(self._client, sql, params, budget=self._budget, table=self._table_id, action=action,
                         location=self._spec.location)
