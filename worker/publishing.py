"""Publishing: move a loaded interval from its raw table into the clean table.

- ``Overwrite``: the clean table is a copy (atomic copy job) of the newest interval
  ever loaded; labels on the clean table say which interval and which object
  generations it holds, so a backfill of an older interval never replaces it and
  an interrupted run re-publishes on the next run.
- ``Incremental``: the clean table holds every interval plus the interval column.
  One MERGE statement deletes the interval's old rows and inserts the new ones,
  so re-loading an interval replaces exactly that interval (atomic in BigQuery).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import requests
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_jobs import wait_for
from worker.bigquery_queries import count_rows, with_dml_retries
from worker.checkpoints import checkpoint
from worker.core.errors import WorkerError, explain_bigquery_error
from worker.core.intervals import Interval
from worker.core.retries import DEFAULT_BUDGET, RetryBudget
from worker.core.spec import ImportSpec, SourceMode
from worker.ledger.entries import MAX_PARTITIONS_PER_JOB
from worker.results import CleanTableState, TableColumn
from worker.schema_changes import (
    Column,
    ColumnChange,
    EvolutionPlan,
    plan_clean_table_evolution,
    widen_table,
    widened_schema,
)
from worker.sql import quote_column, quote_table
from worker.table_expiry import NEVER_PARTITION_MS, expiry_changes

LABEL_INTERVAL = "gcs_import_interval"
LABEL_DIGEST = "gcs_import_digest"

_NO_MATCH = "_gcs_import_no_match"
_PARTITION_UNIT = {Interval.Hourly: "DAY", Interval.Daily: "DAY", Interval.Weekly: "DAY", Interval.Monthly: "MONTH"}


def clean_table_definition(spec: ImportSpec, raw_schema: Sequence[bigquery.SchemaField]) -> bigquery.Table:
    """The Incremental clean table to create (pure): the raw columns (with the spec's column descriptions)
    plus the interval column, partitioned by it, with the spec's clustering, partition filter and description."""
    descriptions = {f.name: f.description for f in spec.schema or () if f.description}
    schema = [
        bigquery.SchemaField(f.name, f.field_type, mode=f.mode, description=descriptions.get(f.name, f.description),
                             fields=f.fields)
        for f in raw_schema
    ]
    schema.append(bigquery.SchemaField(spec.interval_column, "TIMESTAMP", description="Start of the file drop's interval (UTC)."))
    table = bigquery.Table(spec.clean_table_id, schema=schema)
    # partitions never expire, whatever the dataset's default (worker.table_expiry)
    table.time_partitioning = bigquery.TimePartitioning(type_=_PARTITION_UNIT[spec.interval], field=spec.interval_column,
                                                        expiration_ms=NEVER_PARTITION_MS)
    if spec.clustering_fields:
        table.clustering_fields = list(spec.clustering_fields)
    if spec.require_partition_filter:
        table.require_partition_filter = True
    if spec.table_description:
        table.description = spec.table_description
    return table


def layout_changes(spec: ImportSpec, table: bigquery.Table) -> tuple[list[str], str | None]:
    """``(fields to update, refusal)`` to bring an existing clean table to the spec's layout (pure; sets the
    values on ``table``). Clustering, the partition filter and the description can be changed in place;
    partitioning cannot: a clean table partitioned otherwise is refused with the fix."""
    if spec.mode is SourceMode.Incremental:
        want = (_PARTITION_UNIT[spec.interval], spec.interval_column)
        have = (table.time_partitioning.type_, table.time_partitioning.field) if table.time_partitioning else None
        if have is not None and have != want:
            return [], (
                f"{spec.clean_table_id} is partitioned by {have[1] or 'ingestion time'} ({have[0]}), but the spec needs "
                f"{want[1]} ({want[0]}): BigQuery cannot change a table's partitioning. Nothing was published; copy the "
                "table into a new one partitioned as needed, or set destination_table to a new name."
            )
    fields = []
    clustering = list(spec.clustering_fields) if spec.clustering_fields else None
    if clustering is not None and (table.clustering_fields or None) != clustering:
        table.clustering_fields = clustering
        fields.append("clustering_fields")
    if spec.mode is SourceMode.Incremental and bool(table.require_partition_filter) != spec.require_partition_filter:
        table.require_partition_filter = spec.require_partition_filter
        fields.append("require_partition_filter")
    if spec.table_description and table.description != spec.table_description:
        table.description = spec.table_description
        fields.append("description")
    # Never expires, nor do its partitions: a table a copy or an insert created took the dataset's default
    # expiry, if any, and an insert or a copy cannot say "never" (worker.table_expiry).
    fields += expiry_changes(table, expires=None)
    return fields, None


def apply_layout(client: bigquery.Client, spec: ImportSpec, table: bigquery.Table, *, budget: RetryBudget) -> None:
    """Update the clean table's clustering, partition filter and description where they differ from the spec.

    Raises:
        WorkerError: the table's partitioning differs (BigQuery cannot change it); nothing is changed.
    """
    fields, refusal = layout_changes(spec, table)
    if refusal:
        raise WorkerError(refusal)
    if fields:
        client.update_table(table, fields, retry=budget.retry, timeout=budget.request_timeout)


def published_snapshot(client: bigquery.Client, spec: ImportSpec, *,
                       budget: RetryBudget = DEFAULT_BUDGET) -> tuple[str, str] | None:
    """``(interval suffix, digest)`` an Overwrite clean table holds, or None if it has none."""
    try:
        table = client.get_table(spec.clean_table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return None
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=spec.clean_table_id, action="reading the published snapshot") from exc
    return _snapshot_labelled(table)


def _snapshot_labelled(table: bigquery.Table) -> tuple[str, str] | None:
    """``(interval suffix, digest)`` the clean table's labels name, or None."""
    labels = table.labels or {}
    if LABEL_INTERVAL not in labels:
        return None
    return labels[LABEL_INTERVAL], labels.get(LABEL_DIGEST, "")


def describe_clean_table(client: bigquery.Client, spec: ImportSpec, *,
                         budget: RetryBudget = DEFAULT_BUDGET) -> CleanTableState | None:
    """Row count and columns of the clean table, None when it does not exist.

    Raises:
        WorkerError: BigQuery refused the read (the message names the table).
    """
    try:
        table = client.get_table(spec.clean_table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return None
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=spec.clean_table_id, action="reading the clean table's size") from exc
    columns = tuple(
        TableColumn(name=f.name, type=f.field_type, mode=f.mode or "NULLABLE", description=f.description)
        for f in table.schema
    )
    # COUNT(*) is free (table metadata), but refused on a table that requires a partition filter, and a
    # filter would scan the partition column of every row: such a table reports BigQuery's numRows.
    rows = (int(table.num_rows or 0) if table.require_partition_filter
            else count_rows(client, spec.clean_table_id, budget=budget, location=spec.location))
    return CleanTableState(table_id=spec.clean_table_id, rows=rows, columns=columns)


def publish_overwrite(client: bigquery.Client, spec: ImportSpec, *, raw_table_id: str, suffix: str, digest: str,
                      budget: RetryBudget, previous: tuple[str, str] | None = None) -> str | None:
    """Replace the clean table with ``raw_table_id`` (copy job), then label it; returns the copy job id, or
    None when the table changed between this copy and its labels (see below).

    The copy always runs (it is idempotent: the same source gives the same table) rather than
    reattaching to an earlier one, because the clean table may have been dropped or rewritten
    since; the labels, not job history, say what the table holds.

    The labels are written with the ETag read after the copy (``If-Match``). BigQuery answers 412 when the
    table changed since (https://cloud.google.com/bigquery/docs/reference/rest/v2/tables/patch): a
    concurrent run published (and labelled) another snapshot after this copy. Its labels describe the
    table; this run writes none and returns None, and the caller checks again which interval is newest.
    Restoring anything then could copy an older snapshot over the newer one.

    A WRITE_TRUNCATE copy is atomic in BigQuery: when it fails the table is as it was. Where a
    failed copy leaves the destination empty (bqemulator does, for a changed schema), the
    ``previous`` snapshot ``(suffix, digest)`` is copied back from its raw table (raw tables are
    kept), so a failed publish never leaves a worse clean table than before, unless the labels show
    that another snapshot was published since ``previous`` was read (then nothing is restored over it).

    Raises:
        WorkerError: the copy or the labels failed (the message says which snapshot the clean table holds).
    """
    action = f"publishing interval {suffix}"
    try:
        job = _copy(client, spec, raw_table_id=raw_table_id, suffix=suffix, digest=digest, budget=budget)
    except gexc.GoogleAPIError as exc:
        kept = "the clean table is unchanged"
        if previous is not None:
            kept = _restore(client, spec, previous, budget=budget)
        raise WorkerError(
            f"{explain_bigquery_error(exc, table=spec.clean_table_id, action=action).args[0]} "
            f"({kept}). If the interval's columns changed, drop {spec.clean_table_id} to let the next run publish "
            "the new schema, or fix the files."
        ) from exc
    checkpoint("publish.copied")
    try:
        labelled = _label(client, spec, suffix=suffix, digest=digest, copied=job, budget=budget)
    except gexc.GoogleAPIError as exc:
        raise WorkerError(
            f"{explain_bigquery_error(exc, table=spec.clean_table_id, action=f'labelling interval {suffix}').args[0]} "
            f"(the clean table holds interval {suffix}'s rows under older labels: the next run labels it again)."
        ) from exc
    return job.job_id if labelled else None


def _restore(client: bigquery.Client, spec: ImportSpec, previous: tuple[str, str], *, budget: RetryBudget) -> str:
    """Copy the ``previous`` snapshot back after a failed copy, only where the failure emptied the clean table.

    BigQuery's copy is one atomic update ("Creation, truncation and append actions occur as one atomic
    update upon job completion", JobConfigurationTableCopy): a failed copy leaves the table as it was,
    and restoring then could only copy ``previous`` over a snapshot a concurrent run published meanwhile.
    So nothing is restored over a table that has rows, another snapshot's labels, or labels that
    cannot be read; only an emptied or dropped table (as bqemulator leaves one) gets ``previous`` back.
    """
    try:
        table = client.get_table(spec.clean_table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        table = None
    except gexc.GoogleAPIError:
        return "the clean table was left as it is (it could not be read): re-run to publish again"
    now = _snapshot_labelled(table) if table is not None else None
    if now is not None and now != previous:
        return f"the clean table holds interval {now[0]}, published by a concurrent run: nothing restored over it"
    if table is not None and (table.num_rows or 0) > 0:
        return f"the clean table still holds interval {previous[0]}"
    try:
        _copy(client, spec, raw_table_id=spec.raw_table_for_suffix(previous[0]), suffix=previous[0],
              digest=previous[1], budget=budget)
        _label(client, spec, suffix=previous[0], digest=previous[1], budget=budget)
    except gexc.GoogleAPIError:
        return f"restoring interval {previous[0]} failed too: re-run to publish it again"
    return f"the clean table still holds interval {previous[0]}"


def _copy(client: bigquery.Client, spec: ImportSpec, *, raw_table_id: str, suffix: str, digest: str,
          budget: RetryBudget) -> bigquery.CopyJob:
    _match_destination_clustering(client, spec, raw_table_id=raw_table_id, budget=budget)

    def copy() -> bigquery.CopyJob:
        job = client.copy_table(
            raw_table_id, spec.clean_table_id, location=spec.location,
            job_id_prefix=f"gcs_import_{spec.name}_{suffix}_{digest}_publish_",
            job_config=bigquery.CopyJobConfig(write_disposition="WRITE_TRUNCATE"),
            retry=budget.retry, timeout=budget.request_timeout,
        )
        return wait_for(job, budget=budget)

    # a copy that failed on the table update rate (rateLimitExceeded) runs again, as a new job, after a backoff
    return with_dml_retries(budget, copy)


def _match_destination_clustering(client: bigquery.Client, spec: ImportSpec, *, raw_table_id: str,
                                  budget: RetryBudget) -> None:
    """Give the raw table the clean table's clustering before copying it over the clean table.

    BigQuery refuses a copy onto an existing table whose partitioning or clustering differs from the
    source's ("Incompatible table partitioning specification", for WRITE_TRUNCATE too:
    https://cloud.google.com/bigquery/docs/managing-partitioned-tables#copy_partitioned_tables), and the
    raw tables are loaded unclustered while the clean table has ``clustering_fields``. Clustering can be
    changed in place (https://cloud.google.com/bigquery/docs/manage-clustered-tables); partitioning cannot,
    so an Overwrite clean table partitioned by hand still fails the copy, with BigQuery's message.
    """
    try:
        clean = client.get_table(spec.clean_table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return  # the copy creates it with the raw table's layout
    raw = client.get_table(raw_table_id, retry=budget.retry, timeout=budget.request_timeout)
    if (raw.clustering_fields or None) != (clean.clustering_fields or None):
        raw.clustering_fields = clean.clustering_fields or None
        client.update_table(raw, ["clustering_fields"], retry=budget.retry, timeout=budget.request_timeout)


def _label(client: bigquery.Client, spec: ImportSpec, *, suffix: str, digest: str, budget: RetryBudget,
           copied: bigquery.CopyJob | None = None) -> bool:
    """Label the clean table as holding ``suffix``/``digest``, conditional on the ETag read here (just after
    this run's copy); False (nothing written) when the table changed after the ``copied`` job ended (another
    run's copy or labels landed before this read: its ``lastModifiedTime`` is later than the copy's end) or
    between the read and the patch (412). Labelling then could name this interval over another's rows."""
    table = client.get_table(spec.clean_table_id, retry=budget.retry, timeout=budget.request_timeout)
    if copied is not None and copied.ended is not None and table.modified is not None and table.modified > copied.ended:
        return False
    table.labels = {**(table.labels or {}), LABEL_INTERVAL: suffix, LABEL_DIGEST: digest}
    # the copy gave the table the raw table's definition: the spec's clustering and description again
    fields, _ = layout_changes(spec, table)
    checkpoint("publish.before_labels")
    try:
        client.update_table(table, ["labels", *fields], retry=budget.retry, timeout=budget.request_timeout)
    except gexc.PreconditionFailed:
        return False
    return True


@dataclass(frozen=True)
class IncrementalPublish:
    """What publishing one Incremental interval did: the MERGE's job id and the clean table's column changes."""

    job_id: str
    changes: tuple[ColumnChange, ...] = ()


def evolved_schema(schema: Sequence[bigquery.SchemaField], raw_schema: Sequence[bigquery.SchemaField],
                   plan: EvolutionPlan) -> list[bigquery.SchemaField] | None:
    """The clean table's schema after ``plan`` (pure): its columns, the relaxed ones NULLABLE, then the
    interval's new columns as NULLABLE (REPEATED ones stay REPEATED), with their types as the raw table has
    them. None when the plan changes nothing. Sent as one ``tables.patch`` (:func:`worker.schema_changes.widen_table`)."""
    return widened_schema(schema, add=_added_fields(raw_schema, plan), relax=plan.relax)


def _added_fields(raw_schema: Sequence[bigquery.SchemaField], plan: EvolutionPlan) -> list[bigquery.SchemaField]:
    """The columns to add, as the raw table declares them (a RECORD with its sub-fields), NULLABLE unless REPEATED."""
    raw = {f.name.lower(): f for f in raw_schema}
    added = []
    for c in plan.add:
        resource = raw[c.name.lower()].to_api_repr()
        resource["mode"] = c.mode if c.mode == "REPEATED" else "NULLABLE"
        added.append(bigquery.SchemaField.from_api_repr(resource))
    return added


@dataclass(frozen=True)
class IntervalToPublish:
    """One Incremental interval whose raw table is ready to replace its rows of the clean table."""

    interval_start: datetime
    raw_table_id: str
    raw_schema: tuple[bigquery.SchemaField, ...]


def publish_incremental_many(client: bigquery.Client, spec: ImportSpec, intervals: Sequence[IntervalToPublish], *,
                             budget: RetryBudget) -> list[IncrementalPublish | Exception]:
    """Publish several intervals (one round of a run) with as few statements as BigQuery's limits allow; each
    interval's outcome or its error (a :class:`WorkerError`, or the client's error as raised), in order, so a
    failing interval never fails the others.

    Each interval's own checks come first, against the clean table as the intervals before it in ``intervals``
    leave it (reserved column names, :func:`worker.schema_changes.plan_clean_table_evolution`): one that fails
    gets its :class:`WorkerError` (the same as :func:`publish_incremental`'s) and is left out. The column
    changes of all the others are applied with **one** table patch (:func:`worker.schema_changes.widen_table`:
    a table takes 5 updates per 10 s), then one MERGE per chunk (:func:`merge_chunks`: at most
    :data:`MAX_PARTITIONS_PER_JOB` intervals, in as many partitions, and :data:`MERGE_SQL_CHARS` of SQL)
    replaces the rows of all its intervals at once (atomic). When a batch step fails, its intervals are
    published again one at a time (:func:`publish_incremental`), so a failing interval fails alone; so are an
    interval whose columns cannot join the others' (a STRUCT or REPEATED column it lacks) and a second entry
    of an interval (after the first: the last one's rows stay, as with one call each).
    """
    outcomes: list[IncrementalPublish | Exception | None] = [None] * len(intervals)
    planned: dict[int, tuple[ColumnChange, ...]] = {}
    firsts: dict[datetime, int] = {}
    for position, item in enumerate(intervals):
        firsts.setdefault(item.interval_start, position)
    if len(firsts) > 1:
        # on a failed read or patch of the clean table, the intervals without an outcome go one at a time below
        with contextlib.suppress(gexc.GoogleAPIError, requests.exceptions.RequestException):
            _publish_batch(client, spec, intervals, sorted(firsts.values()), outcomes=outcomes, planned=planned,
                           budget=budget)
    for position, item in enumerate(intervals):
        if outcomes[position] is not None:
            continue
        try:
            done = publish_incremental(client, spec, raw_table_id=item.raw_table_id, interval_start=item.interval_start,
                                       raw_schema=item.raw_schema, budget=budget)
            # the batch's table patch may have made this interval's column changes already
            outcomes[position] = IncrementalPublish(job_id=done.job_id, changes=done.changes or planned.get(position, ()))
        except (WorkerError, gexc.GoogleAPIError, requests.exceptions.RequestException) as exc:
            outcomes[position] = exc  # the caller words a client error for its interval
    return [outcome for outcome in outcomes if outcome is not None]


#: SQL characters of one batch MERGE at most: BigQuery's limit on a query's text is 1,024K characters
#: (https://cloud.google.com/bigquery/quotas#query_jobs, "Maximum query length").
MERGE_SQL_CHARS = 900_000


def _publish_batch(client: bigquery.Client, spec: ImportSpec, intervals: Sequence[IntervalToPublish],
                   positions: list[int], *, outcomes: list, planned: dict[int, tuple[ColumnChange, ...]],
                   budget: RetryBudget) -> None:
    """:func:`publish_incremental_many`'s batch: fills ``outcomes`` (and ``planned`` column changes) at the
    ``positions`` it settles; leaves None where an interval is to be published alone.

    Raises:
        google.api_core.exceptions.GoogleAPIError: reading, creating or patching the clean table failed.
    """
    checked = []
    for position in positions:
        item = intervals[position]
        try:
            _check_reserved(spec, raw_table_id=item.raw_table_id, raw_columns=[f.name for f in item.raw_schema])
            checked.append(position)
        except WorkerError as exc:
            outcomes[position] = exc
    if not checked:
        return
    try:
        clean_table = _clean_table(client, spec, raw_schema=intervals[checked[0]].raw_schema, budget=budget)
    except WorkerError as exc:  # a clean table partitioned otherwise: no interval can be published
        for position in checked:
            outcomes[position] = exc
        return
    schema, add, relax, accepted = list(clean_table.schema), [], [], []
    for position in checked:
        item = intervals[position]
        plan = _plan(spec, schema, item.raw_schema, interval_start=item.interval_start, raw_table_id=item.raw_table_id)
        if plan.refusal:
            outcomes[position] = WorkerError(plan.refusal)
            continue
        added = _added_fields(item.raw_schema, plan)
        schema = widened_schema(schema, add=added, relax=plan.relax) or schema
        add += added
        relax += plan.relax
        planned[position] = plan.changes
        accepted.append(position)
    if add or relax:
        widen_table(client, spec.clean_table_id, add=add, relax=relax, budget=budget)
    union = _union_columns(schema, [intervals[p] for p in accepted])
    mergeable = [p for p in accepted if _alignable(union, intervals[p].raw_schema)]
    for chunk in merge_chunks(spec, [intervals[p] for p in mergeable], schema=schema):
        chosen = [mergeable[i] for i in chunk]
        try:
            job = _run_merge(client, spec, _batch_merge_sql(spec, [intervals[p] for p in chosen], schema=schema),
                             [bigquery.ScalarQueryParameter(f"interval_start_{n}", "TIMESTAMP",
                                                            intervals[p].interval_start)
                              for n, p in enumerate(chosen)], budget=budget)
        except gexc.GoogleAPIError:
            continue  # published one at a time: a failing interval fails alone
        for position in chosen:
            outcomes[position] = IncrementalPublish(job_id=job.job_id, changes=planned[position])


#: A typed NULL for a column an interval lacks, by the clean column's type (a STRUCT has no short spelling).
_NULL_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", **{t: t for t in (
    "STRING", "BYTES", "INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC", "BOOL", "TIMESTAMP", "DATE", "TIME", "DATETIME",
    "GEOGRAPHY", "JSON", "INTERVAL")}}


def _union_columns(schema: Sequence[bigquery.SchemaField],
                   items: Sequence[IntervalToPublish]) -> list[bigquery.SchemaField]:
    """The clean columns any of ``items`` has, in the clean table's order."""
    names = {f.name.lower() for item in items for f in item.raw_schema}
    return [f for f in schema if f.name.lower() in names]


def _alignable(columns: Sequence[bigquery.SchemaField], raw_schema: Sequence[bigquery.SchemaField]) -> bool:
    """Whether every one of the batch's ``columns`` this interval lacks can be a typed NULL in its SELECT."""
    have = {f.name.lower() for f in raw_schema}
    return all(f.mode != "REPEATED" and f.field_type in _NULL_TYPES for f in columns if f.name.lower() not in have)


def merge_chunks(spec: ImportSpec, items: Sequence[IntervalToPublish], *,
                 schema: Sequence[bigquery.SchemaField]) -> list[list[int]]:
    """Positions of ``items`` cut, in order, into batch MERGEs (pure): each of at most
    :data:`MAX_PARTITIONS_PER_JOB` intervals (so as many clean-table partitions at most, and as many query
    parameters) and :data:`MERGE_SQL_CHARS` of SQL (as :func:`_batch_merge_sql` writes it)."""
    chunks: list[list[int]] = []
    size = 0
    columns = _union_columns(schema, items)  # a chunk's own columns are as many or fewer
    for position, item in enumerate(items):
        length = len(_select_of(spec, item, index=position, columns=columns))
        if not chunks or len(chunks[-1]) >= MAX_PARTITIONS_PER_JOB or size + length > MERGE_SQL_CHARS:
            chunks.append([])
            size = 1_000  # the statement around the SELECTs
        chunks[-1].append(position)
        size += length
    return chunks


def _select_of(spec: ImportSpec, item: IntervalToPublish, *, index: int,
               columns: Sequence[bigquery.SchemaField]) -> str:
    """One interval's SELECT of the batch source: the ``columns`` (its own, or a typed NULL) and its start."""
    raw = {f.name.lower(): f.name for f in item.raw_schema}
    values = [f"{quote_column(raw[f.name.lower()])} AS {quote_column(f.name)}" if f.name.lower() in raw
              else f"CAST(NULL AS {_NULL_TYPES[f.field_type]}) AS {quote_column(f.name)}" for f in columns]
    return (f"SELECT {', '.join([*values, f'@interval_start_{index} AS {quote_column(spec.interval_column)}'])} "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            f"FROM {quote_table(item.raw_table_id)}")


def _batch_merge_sql(spec: ImportSpec, items: Sequence[IntervalToPublish], *,
                     schema: Sequence[bigquery.SchemaField]) -> str:
    """One MERGE replacing the clean rows of every interval of ``items`` with their raw tables' rows
    (``@interval_start_<n>`` is the n-th interval's start). The partition filter (``IN (@...)``) is in the ON
    condition and the NOT MATCHED BY SOURCE clause, as :func:`publish_incremental`'s (require_partition_filter)."""
    column = quote_column(spec.interval_column)
    columns = _union_columns(schema, items)
    source = " UNION ALL ".join(_select_of(spec, item, index=n, columns=columns) for n, item in enumerate(items))
    starts = ", ".join(f"@interval_start_{n}" for n in range(len(items)))
    names = [*(quote_column(f.name) for f in columns), column]
    return (
        f"MERGE {quote_table(spec.clean_table_id)} T USING (SELECT *, CAST(NULL AS TIMESTAMP) AS {_NO_MATCH} "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
        f"FROM ({source})) S ON T.{column} = S.{_NO_MATCH} AND T.{column} IN ({starts}) "
        f"WHEN NOT MATCHED BY SOURCE AND T.{column} IN ({starts}) THEN DELETE "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) VALUES ({', '.join(f'S.{n}' for n in names)})"
    )


def _check_reserved(spec: ImportSpec, *, raw_table_id: str, raw_columns: Sequence[str]) -> None:
    """Raises WorkerError when the raw table has a column named like the interval column or the publish's own."""
    if _NO_MATCH in raw_columns:
        raise WorkerError(f"{raw_table_id} has a column named {_NO_MATCH!r}, which the publish statement reserves.")
    if spec.interval_column in raw_columns:
        raise WorkerError(
            f"{raw_table_id} already has a column {spec.interval_column!r}, which {spec.clean_table_id} uses for the "
            "interval: set interval_column in the spec to another name."
        )


def _clean_table(client: bigquery.Client, spec: ImportSpec, *, raw_schema: Sequence[bigquery.SchemaField],
                 budget: RetryBudget) -> bigquery.Table:
    """The clean table, created from ``raw_schema`` if missing, with the spec's layout applied."""
    retry, timeout = budget.retry, budget.request_timeout
    try:
        clean_table = client.get_table(spec.clean_table_id, retry=retry, timeout=timeout)
    except gexc.NotFound:
        # exists_ok: partitions of one asset may create it at once
        client.create_table(clean_table_definition(spec, raw_schema), exists_ok=True, retry=retry, timeout=timeout)
        clean_table = client.get_table(spec.clean_table_id, retry=retry, timeout=timeout)
    apply_layout(client, spec, clean_table, budget=budget)
    return clean_table


def _plan(spec: ImportSpec, schema: Sequence[bigquery.SchemaField], raw_schema: Sequence[bigquery.SchemaField], *,
          interval_start: datetime, raw_table_id: str) -> EvolutionPlan:
    return plan_clean_table_evolution(
        clean=[Column.of(f) for f in schema], interval=[Column.of(f) for f in raw_schema],
        mode=spec.schema_evolution, interval_label=f"{interval_start.isoformat()} ({raw_table_id})",
        clean_table=spec.clean_table_id, reserved=(spec.interval_column,),
    )


def _run_merge(client: bigquery.Client, spec: ImportSpec, sql: str, params: list, *,
               budget: RetryBudget) -> bigquery.QueryJob:
    """Run one publish MERGE (re-run as a new job on BigQuery's concurrent-DML errors: partitions of one
    asset may publish at once)."""
    def merge() -> bigquery.QueryJob:
        job = client.query(sql, location=spec.location, job_config=bigquery.QueryJobConfig(query_parameters=params),
                           retry=budget.retry, timeout=budget.request_timeout, job_retry=None)
        wait_for(job, budget=budget, job_retry=None)
        return job

    return with_dml_retries(budget, merge)


def publish_incremental(client: bigquery.Client, spec: ImportSpec, *, raw_table_id: str, interval_start: datetime,
                        raw_schema: Sequence[bigquery.SchemaField], budget: RetryBudget) -> IncrementalPublish:
    """Replace the interval's rows of the clean table with the raw table's rows.

    The clean table's columns follow the interval's as ``spec.schema_evolution`` allows
    (:func:`worker.schema_changes.plan_clean_table_evolution`): new columns are added as NULLABLE
    and, with ``add_and_relax``, REQUIRED columns the interval leaves out are relaxed, before the MERGE.

    Raises:
        WorkerError: the interval's columns cannot reach the clean table (a type change, new columns
            under ``fail``, a column named like the interval column); the clean table is left unchanged.
    """
    column = spec.interval_column
    raw_columns = [field.name for field in raw_schema]
    _check_reserved(spec, raw_table_id=raw_table_id, raw_columns=raw_columns)
    try:
        clean_table = _clean_table(client, spec, raw_schema=raw_schema, budget=budget)
        plan = _plan(spec, clean_table.schema, raw_schema, interval_start=interval_start, raw_table_id=raw_table_id)
        if plan.refusal:
            raise WorkerError(plan.refusal)
        if plan.add or plan.relax:
            # One table update for every column of the change, not one ALTER TABLE each: a table takes 5
            # updates per 10 s (a 403 rateLimitExceeded on the patch is retried by the budget's retry).
            widen_table(client, spec.clean_table_id, add=_added_fields(raw_schema, plan), relax=plan.relax,
                        budget=budget)
        insert_columns = ", ".join(quote_column(name) for name in [*raw_columns, column])
        values = ", ".join([*(f"S.{quote_column(name)}" for name in raw_columns), "@interval_start"])
        # ``ON T.col = NULL`` never matches, like ``ON FALSE``, but lets engines use a hash join
        # (bqemulator's DuckDB turns ``ON FALSE`` into a nested loop: ~50 s for 40k x 800k rows).
        # ``AND T.col = @interval_start`` in the ON condition too: with the same filter in the NOT MATCHED BY
        # SOURCE clause, every target row the statement may touch is in the interval's partition, so BigQuery
        # can eliminate the others, as ``require_partition_filter`` demands, without folding the NULL column
        # (https://cloud.google.com/bigquery/docs/using-dml-with-partitioned-tables).
        sql = (
            f"MERGE {quote_table(spec.clean_table_id)} T USING (SELECT *, CAST(NULL AS TIMESTAMP) AS {_NO_MATCH} "  # nosec B608 # identifiers via quote_table()/quote_column() (checked, backtick-quoted); values are @query parameters
            f"FROM {quote_table(raw_table_id)}) S "
            f"ON T.{quote_column(column)} = S.{_NO_MATCH} AND T.{quote_column(column)} = @interval_start "
            f"WHEN NOT MATCHED BY SOURCE AND T.{quote_column(column)} = @interval_start THEN DELETE "
            f"WHEN NOT MATCHED THEN INSERT ({insert_columns}) VALUES ({values})"
        )
        job = _run_merge(client, spec, sql, [bigquery.ScalarQueryParameter("interval_start", "TIMESTAMP", interval_start)],
                         budget=budget)
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(
            exc, table=spec.clean_table_id, action=f"publishing interval {interval_start.isoformat()}"
        ) from exc
    return IncrementalPublish(job_id=job.job_id, changes=plan.changes)
