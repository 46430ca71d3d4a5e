"""The pending loads: intents of loads whose copy may reach a raw table before the ledger records them.

A worker writes its load's objects here (keyed by a :class:`~worker.core.records.PendingKey`: its copy job
and its private staging table) before the copy, and deletes them after its ledger write; a worker that died
in between leaves them, and the next import of the interval records exactly those objects if that copy ran
(:meth:`worker.interval_import.IntervalImport.recover_pending`), so the ledger always catches up with what
the raw table holds: never a row loaded twice, never a file deleted that the ledger missed. The table is
``spec.pending_table_id``, created beside the ledger by :meth:`worker.ledger.Ledger.ensure`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from google.cloud import bigquery

from worker.bigquery_queries import run_query
from worker.core.records import SKIPPED_JOB_ID, LedgerEntry, PendingKey, PendingWrite
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
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
)
from worker.sql import quote_table

PENDING_SCHEMA = (
    bigquery.SchemaField("asset", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("interval_start", "TIMESTAMP", mode="REQUIRED"),
    # PendingKey.stored(): read back only with PendingKey.from_stored()
    bigquery.SchemaField("pending_key", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("object_name", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("generation", "INT64", mode="REQUIRED"),
    bigquery.SchemaField("size_bytes", "INT64"),
    bigquery.SchemaField("created_at", "TIMESTAMP"),
    # The load skipped the object (on_bad_file: skip): a recovery must record it as skipped, never as
    # loaded (retention would then delete a file BigQuery never read).
    bigquery.SchemaField("skipped", "BOOL"),
)


class PendingLoads:
    """Reads and writes one spec's rows of the pending-load table.

    Every statement is retried with the run's :class:`RetryBudget` (and re-run on BigQuery's documented
    concurrent-update errors); failures raise :class:`WorkerError` naming the ledger table.
    """

    def __init__(self, client: bigquery.Client, spec: ImportSpec, *, budget: RetryBudget) -> None:
        self._client = client
        self._spec = spec
        self._pending_id = spec.pending_table_id
        self._asset = asset_id(spec)
        self._budget = budget

    def write(self, *, interval_start: datetime, key: PendingKey, entries: Sequence[LedgerEntry],
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
                   f"e.generation, e.size_bytes, @created_at, e.job_id = @skipped_id FROM {ENTRIES_SQL} AS e "
                   f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.asset = @asset "
                   "AND p.interval_start = @interval_start AND p.pending_key = @key "
                   "AND p.object_name = e.object_name AND p.generation = e.generation)")
            self._query(sql, [entries_param(chunk), *self._key_params(interval_start, key),
                              bigquery.ScalarQueryParameter("created_at", "TIMESTAMP", created_at),
                              bigquery.ScalarQueryParameter("skipped_id", "STRING", SKIPPED_JOB_ID)],
                        action=f"recording a pending load of interval {interval_start.isoformat()}")

    def write_many(self, writes: Sequence[PendingWrite], *, created_at: datetime) -> None:
        """Write the pending loads of several intervals (one round of a run) with as few statements as the
        request limits allow: one idempotent ``INSERT ... SELECT ... WHERE NOT EXISTS`` per chunk
        (:func:`batch_chunks`: at most :data:`LEDGER_CHUNK` entries and :data:`LEDGER_CHUNK_BYTES` each,
        an interval's entries cut across chunks when large), each entry carrying its interval and pending key.
        Same rows, and the same idempotence, as one :meth:`write` per item (an object repeated in ``writes``
        under the same interval and key is written once). Raises :class:`WorkerError` naming the ledger table;
        chunks written before a failure stay (writing them again inserts nothing twice).
        """
        seen: set[tuple[datetime, PendingKey, str, int]] = set()
        intervals = []
        for item in writes:
            entries = [e for e in item.entries if (item.interval_start, item.key, e.name, e.generation) not in seen]
            seen.update((item.interval_start, item.key, e.name, e.generation) for e in entries)
            if entries:
                intervals.append(IntervalEntries(interval_start=item.interval_start, entries=entries,
                                                 pending_key=item.key.stored()))
        if not intervals:
            return
        table = quote_table(self._pending_id)
        sql = (f"INSERT INTO {table} (asset, interval_start, pending_key, object_name, "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
               "generation, size_bytes, created_at, skipped) SELECT @asset, e.interval_start, e.pending_key, "
               f"e.object_name, e.generation, e.size_bytes, @created_at, e.job_id = @skipped_id FROM {BATCH_ENTRIES_SQL} "
               f"AS e WHERE NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.asset = @asset "
               "AND p.interval_start = e.interval_start AND p.pending_key = e.pending_key "
               "AND p.object_name = e.object_name AND p.generation = e.generation)")
        chunks, _ = batch_chunks(intervals, whole=False)
        for chunk in chunks:
            starts = [intervals[p].interval_start for p in chunk.positions]
            self._query(sql, [entries_param(chunk.entries), bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
                              bigquery.ScalarQueryParameter("created_at", "TIMESTAMP", created_at),
                              bigquery.ScalarQueryParameter("skipped_id", "STRING", SKIPPED_JOB_ID)],
                        action=f"recording the pending loads of {describe_intervals(starts)}")

    def drop_many(self, keys: Sequence[tuple[datetime, PendingKey]]) -> None:
        """Forget several intervals' pending loads (after their ledger write): one ``DELETE`` per chunk of
        ``(interval start, pending key)`` pairs (bounded like the entries: :func:`bounded_chunks`); the same
        rows go as with one :meth:`drop` each. Raises :class:`WorkerError` naming the ledger table."""
        pairs = sorted({(micros(start), key.stored()) for start, key in keys})
        texts = [json.dumps(list(pair), ensure_ascii=False, separators=(",", ":")) for pair in pairs]
        sql = (f"DELETE FROM {quote_table(self._pending_id)} AS p WHERE p.asset = @asset AND EXISTS (SELECT 1 "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
               "FROM UNNEST(JSON_QUERY_ARRAY(PARSE_JSON(@entries))) AS j "
               "WHERE TIMESTAMP_MICROS(CAST(JSON_VALUE(j, '$[0]') AS INT64)) = p.interval_start "
               "AND JSON_VALUE(j, '$[1]') = p.pending_key)")
        for chunk in bounded_chunks(texts, separator_bytes=1) if texts else []:
            self._query(sql, [entries_param("[" + ",".join(chunk) + "]"),
                              bigquery.ScalarQueryParameter("asset", "STRING", self._asset)],
                        action=f"clearing {len(chunk)} pending load(s)")

    def read(self, *, start: datetime, end: datetime) -> dict[datetime, dict[PendingKey, list[LedgerEntry]]]:
        """{interval start: {pending key: objects}} of this asset's pending loads in ``[start, end)``. An object
        the load skipped reads with job id :data:`SKIPPED_JOB_ID`, any other with the key's copy job id base."""
        sql = (f"SELECT interval_start, pending_key, object_name, generation, size_bytes, skipped "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
               f"FROM {quote_table(self._pending_id)} "
               "WHERE asset = @asset AND interval_start >= @start AND interval_start < @end")
        rows = self._query(sql, [bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
                                 bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
                                 bigquery.ScalarQueryParameter("end", "TIMESTAMP", end)],
                           action="reading pending loads")
        out: dict[datetime, dict[PendingKey, list[LedgerEntry]]] = {}
        for row in rows:
            key = PendingKey.from_stored(row["pending_key"])
            entry = LedgerEntry(name=row["object_name"], generation=int(row["generation"]),
                                size=int(row["size_bytes"] or 0),
                                job_id=SKIPPED_JOB_ID if row["skipped"] else key.copy_job_base)
            out.setdefault(row["interval_start"], {}).setdefault(key, []).append(entry)
        return out

    def drop(self, *, interval_start: datetime, key: PendingKey) -> None:
        """Forget one pending load (after its ledger write, or when another attempt's copy won)."""
        self._query(f"DELETE FROM {quote_table(self._pending_id)} WHERE asset = @asset AND "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
                    "interval_start = @interval_start AND pending_key = @key", self._key_params(interval_start, key),
                    action="clearing a pending load")

    def _key_params(self, interval_start: datetime, key: PendingKey) -> list:
        return [bigquery.ScalarQueryParameter("asset", "STRING", self._asset),
                bigquery.ScalarQueryParameter("interval_start", "TIMESTAMP", interval_start),
                bigquery.ScalarQueryParameter("key", "STRING", key.stored())]

    def _query(self, sql: str, params: list, *, action: str) -> list:
        # errors name the ledger table, as they always did (the pending table lives beside it)
        return run_query(self._client, sql, params, budget=self._budget, table=self._spec.ledger_table_id,
                         action=action, location=self._spec.location)

