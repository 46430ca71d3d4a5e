"""The ledger's records: a BigQuery table that durably records what each run loaded (and what retention deleted).

One row per loaded object: asset, interval, object name, generation, size, job id,
the interval's row count, raw table and load time. It is the only source of truth
for skipping unchanged intervals and for retention (which deletes nothing the
ledger does not list). It lives in the raw dataset as ``_gcs_import_ledger``.

Rows for an interval are written with one MERGE statement (atomic in BigQuery) unless they
do not fit one request (more than 10,000 objects, or about 4 MB of names: see
:meth:`Ledger.record_interval`). Rows of
objects retention deleted are never removed, and an interval's seal (written by
retention before its first delete) is never lost, whatever runs concurrently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_queries import run_query
from worker.core.errors import explain_bigquery_error
from worker.core.records import IntervalRecord, LedgerEntry, LoadedObject, RecordedInterval, SnapshotCandidate
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
from worker.ledger.archived import ARCHIVE_FIELDS
from worker.ledger.entries import (
    BATCH_ENTRIES_SQL,
    ENTRIES_SQL,
    IntervalEntries,
    asset_id,
    batch_chunks,
    bounded_chunks,
    describe_intervals,
    entries_param,
    entry_chunks,
    micros,
    wire_bytes,
)
from worker.ledger.pending import PENDING_SCHEMA, PendingLoads
from worker.schema_changes import widen_table
from worker.side_by_side import side_by_side
from worker.sql import quote_table
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
    # retention_action archive: the verified archive copy (worker.ledger.archived)
    *ARCHIVE_FIELDS,
)
#: The rows of a batch's ``@intervals`` (:func:`_figures_text`): each interval's figures.
_FIGURES_SQL = (
    "(SELECT TIMESTAMP_MICROS(CAST(JSON_VALUE(j, '$[0]') AS INT64)) AS interval_start, "
    "CAST(JSON_VALUE(j, '$[1]') AS INT64) AS interval_rows, JSON_VALUE(j, '$[2]') AS raw_table, "
    "TIMESTAMP_MICROS(CAST(JSON_VALUE(j, '$[3]') AS INT64)) AS loaded_at, JSON_VALUE(j, '$[4]') AS digest "
    "FROM UNNEST(JSON_QUERY_ARRAY(PARSE_JSON(@intervals))) AS j)"
)


def _figures_text(record: IntervalRecord) -> str:
    """One interval's figures as an ``@intervals`` element: ``[start, rows, raw table, loaded at, digest]``
    (times as exact microseconds, rows as a string: JSON numbers are doubles)."""
    return json.dumps([micros(record.interval_start), str(record.interval_rows), record.raw_table,
                       micros(record.loaded_at), record.digest], ensure_ascii=False, separators=(",", ":"))


_INSERT_COLUMNS = ("asset", "interval_start", "object_name", "generation", "size_bytes", "job_id",
                   "interval_rows", "raw_table", "loaded_at", "digest", "sealed_at")


def new_ledger_table(table_id: str) -> bigquery.Table:
    """The ledger table as it is created: partitioned by day of ``interval_start``, clustered by asset."""
    table = bigquery.Table(table_id, schema=list(LEDGER_SCHEMA))
    # Partitions never expire, whatever the dataset's default (worker.table_expiry): an old interval's
    # partition would expire at once, and the interval would look never loaded.
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="interval_start",
                                                        expiration_ms=NEVER_PARTITION_MS)
    table.clustering_fields = ["asset"]
    return table


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
        #: The pending-load table beside the ledger (:mod:`worker.ledger.pending`).
        self.pending_loads = PendingLoads(client, spec, budget=self._budget)
        #: False after :meth:`ensure` found a ledger written unpartitioned by an earlier release.
        self.partitioned = True
        #: Warnings of :meth:`ensure`: ledger tables an earlier release left with an inherited expiry, now repaired.
        self.expiry_repaired: list[str] = []

    @property
    def table_id(self) -> str:
        return self._table_id

    @property
    def client(self) -> bigquery.Client:
        return self._client

    @property
    def spec(self) -> ImportSpec:
        return self._spec

    @property
    def budget(self) -> RetryBudget:
        return self._budget

    def ensure(self) -> None:
        """Create the ledger table and the pending-load table if they do not exist (the raw dataset must exist).

        New ledgers are partitioned by day of ``interval_start`` and clustered by asset, so DML
        statements of different intervals touch different partitions (BigQuery detects conflicts
        per partition). A ledger written by an earlier release lacks newer columns; they are added
        in place (every recorded row is kept). One written unpartitioned keeps working;
        :func:`worker.ledger.migration.migrate_to_partitioned` (``python -m worker migrate-ledger``) converts it.
        """
        try:
            # two tables: read (or created) side by side
            _, (table, created) = side_by_side(
                self._ensure_pending, lambda: self._get_or_create(self._table_id, lambda: new_ledger_table(self._table_id)))
            if created:
                return
        except gexc.GoogleAPIError as exc:
            raise explain_bigquery_error(exc, table=self._table_id, action="creating the load ledger") from exc
        self.partitioned = table.time_partitioning is not None
        have = {f.name for f in table.schema}
        self._upgrade(self._table_id, [f for f in LEDGER_SCHEMA if f.name not in have], what="the load ledger")

    def _ensure_pending(self) -> None:
        """The pending-load table, read or created, with the columns an earlier release's lacks added."""
        pending, _ = self._get_or_create(
            self._pending_id, lambda: bigquery.Table(self._pending_id, schema=list(PENDING_SCHEMA)))
        have_pending = {f.name for f in pending.schema}
        self._upgrade(self._pending_id, [f for f in PENDING_SCHEMA if f.name not in have_pending],
                      what="the pending loads")

    def _get_or_create(self, table_id: str, new: Callable[[], bigquery.Table]) -> tuple[bigquery.Table, bool]:
        """The table, read (an inherited expiry repaired: :meth:`_never_expire`) or created (without expiry),
        and whether this call created it."""
        budget = self._budget
        try:
            table = self._client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
            self._never_expire(table, existing=True)
            return table, False
        except gexc.NotFound:
            created = self._client.create_table(new(), exists_ok=True, retry=budget.retry,
                                                timeout=budget.request_timeout)
            self._never_expire(created, existing=False)
            return created, True

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
        rows = self.query(sql, params, action="reading the load ledger")
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
        rows = self.query(sql, [bigquery.ScalarQueryParameter("asset", "STRING", self._asset)],
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
            self.query(self._merge_sql(remove_others=len(chunks) == 1), [entries_param(chunk), *interval_params],
                        action=action)
        if len(chunks) > 1:
            table = quote_table(self._table_id)
            untouched = "asset = @asset AND interval_start = @interval_start AND loaded_at != @loaded_at"
            self.query(f"DELETE FROM {table} WHERE {untouched} AND deleted_at IS NULL", interval_params, action=action)  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            self.query(f"UPDATE {table} SET interval_rows = @interval_rows, raw_table = @raw_table, "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                        f"digest = @digest, loaded_at = @loaded_at WHERE {untouched}", interval_params, action=action)

    def record_intervals(self, records: Sequence[IntervalRecord]) -> None:
        """Record several intervals' loads (one round of a run) with as few statements as BigQuery's limits allow.

        Each interval ends exactly as :meth:`record_interval` leaves it (same-generation rows updated keeping
        ``deleted_at`` and ``sealed_at``; new rows inheriting the interval's seal as the statement runs; rows
        missing from its entries removed unless retention deleted their objects: those stay and take the new
        figures), with its own ``interval_rows``, ``raw_table``, ``loaded_at`` and ``digest``. The intervals
        whose entries fit one chunk share one atomic MERGE per chunk (:func:`batch_chunks`: at most
        :data:`LEDGER_CHUNK` entries, :data:`LEDGER_CHUNK_BYTES` as sent, and :data:`MAX_PARTITIONS_PER_JOB`
        day partitions of the ledger each, an interval never split); larger intervals, and a second record of
        an interval already in ``records``, go through :meth:`record_interval` after them (the last record of
        an interval wins, as with one call each). Raises :class:`WorkerError` naming the ledger table; the
        chunks written before a failure stay written.
        """
        batch: dict[datetime, IntervalRecord] = {}
        later: list[IntervalRecord] = []
        for record in records:
            if record.interval_start in batch:
                later.append(record)
            else:
                batch[record.interval_start] = record
        items = list(batch.values())
        figures = [_figures_text(r) for r in items]
        intervals = [IntervalEntries(interval_start=r.interval_start, entries=r.entries, extra_bytes=wire_bytes(f) + 1)
                     for r, f in zip(items, figures, strict=True)]
        # one interval per partition value: bounds the @starts array too (a day holds up to 24 hourly intervals)
        chunks, oversized = batch_chunks(intervals, whole=True, partition=lambda start: start)
        for chunk in chunks:
            group = [items[p] for p in chunk.positions]
            if len(group) == 1:
                self.record(group[0])
                continue
            params = [entries_param(chunk.entries),
                      bigquery.ScalarQueryParameter("intervals", "STRING", "[" + ",".join(figures[p] for p in chunk.positions) + "]"),
                      bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
                      bigquery.ArrayQueryParameter("starts", "TIMESTAMP", [r.interval_start for r in group])]
            self.query(self._batch_merge_sql(), params,
                       action=f"recording {describe_intervals([r.interval_start for r in group])} in the load ledger")
        for record in [*(items[p] for p in oversized), *later]:
            self.record(record)

    def record(self, record: IntervalRecord) -> None:
        """One interval's record: :meth:`record_interval` with the record's fields."""
        self.record_interval(interval_start=record.interval_start, entries=record.entries,
                             interval_rows=record.interval_rows, raw_table=record.raw_table,
                             loaded_at=record.loaded_at, digest=record.digest)

    def _batch_merge_sql(self) -> str:
        """The MERGE of several intervals' entries (:meth:`record_intervals`): ``@entries`` (batch form, each
        entry with its interval start), ``@intervals`` (each interval's figures: :func:`_figures_text`) and
        ``@starts``. The source also carries the rows of deleted objects the entries leave out (so they take
        the new figures, like :meth:`record_interval`'s NOT MATCHED BY SOURCE update); every other row of the
        intervals that the source does not match is removed."""
        table = quote_table(self._table_id)
        columns = ", ".join(_INSERT_COLUMNS)
        figures = ("i.interval_rows, i.raw_table, i.loaded_at, i.digest")
        kept = (  # rows of deleted objects the entries leave out: kept, with the interval's new figures
            f"SELECT k.interval_start, k.object_name, k.generation, MAX(k.size_bytes) AS size_bytes, "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            f"MAX(k.job_id) AS job_id, {figures}, CAST(NULL AS TIMESTAMP) AS sealed_at "
            f"FROM {table} AS k JOIN {_FIGURES_SQL} AS i ON i.interval_start = k.interval_start "
            "WHERE k.asset = @asset AND k.interval_start IN UNNEST(@starts) AND k.deleted_at IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {BATCH_ENTRIES_SQL} AS x WHERE x.interval_start = k.interval_start "
            "AND x.object_name = k.object_name AND x.generation = k.generation) "
            f"GROUP BY k.interval_start, k.object_name, k.generation, {figures}"
        )
        return (
            f"MERGE {table} T USING ("  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            f"SELECT e.interval_start, e.object_name, e.generation, e.size_bytes, e.job_id, {figures}, "
            f"(SELECT MAX(l.sealed_at) FROM {table} AS l WHERE l.asset = @asset "
            "AND l.interval_start = e.interval_start) AS sealed_at "
            f"FROM {BATCH_ENTRIES_SQL} AS e JOIN {_FIGURES_SQL} AS i ON i.interval_start = e.interval_start "
            f"UNION ALL {kept}) S "
            "ON T.asset = @asset AND T.interval_start = S.interval_start AND T.object_name = S.object_name "
            "AND T.generation = S.generation "
            "WHEN MATCHED THEN UPDATE SET interval_rows = S.interval_rows, raw_table = S.raw_table, job_id = S.job_id, "
            "loaded_at = S.loaded_at, digest = S.digest "
            "WHEN NOT MATCHED BY SOURCE AND T.asset = @asset AND T.interval_start IN UNNEST(@starts) "
            "AND T.deleted_at IS NULL THEN DELETE "
            f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES (@asset, S.interval_start, S.object_name, S.generation, "
            "S.size_bytes, S.job_id, S.interval_rows, S.raw_table, S.loaded_at, S.digest, S.sealed_at)"
        )

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
            f"FROM {ENTRIES_SQL} AS e) S "
            "ON T.asset = @asset AND T.interval_start = @interval_start AND T.object_name = S.object_name "
            "AND T.generation = S.generation "
            # job_id too: the same generation may be skipped by one load and loaded by the next (or the reverse)
            "WHEN MATCHED THEN UPDATE SET interval_rows = @interval_rows, raw_table = @raw_table, job_id = S.job_id, "
            "loaded_at = @loaded_at, digest = @digest "
            f"{remove}"
            f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES (@asset, @interval_start, S.object_name, S.generation, "
            "S.size_bytes, S.job_id, @interval_rows, @raw_table, @loaded_at, @digest, S.sealed_at)"
        )

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
        self.query(sql, params, action="sealing intervals before retention deletes")

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
            self.query(sql, params, action="recording deletions in the load ledger")

    def query(self, sql: str, params: list, *, action: str) -> list:
        """Run one statement on the ledger (retried with the run's budget; errors name the ledger table)."""
        return run_query(self._client, sql, params, budget=self._budget, table=self._table_id, action=action,
                         location=self._spec.location)
