"""One worker run: import the intervals of a window, or enforce retention.

This module sequences the phases (match, load, publish, record, retention) and
collects what happened into summaries; the decisions live in :mod:`planning`,
the I/O in :mod:`matching`, :mod:`loading`, :mod:`publishing`, :mod:`ledger` and
:mod:`retention`, the wording for Dagster in :mod:`reporting`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from google.cloud import bigquery, storage

from worker.errors import WorkerError
from worker.ledger import Ledger, LedgerEntry
from worker.loading import ensure_datasets, load_interval
from worker.matching import ObjectInfo, list_objects, match_objects
from worker.planning import LoadedObject, generations_digest, overwrite_target, plan_interval_load
from worker.publishing import publish_incremental, publish_overwrite, published_snapshot
from worker.retention import RetentionOutcome, delete_planned, plan_from_services
from worker.spec import ImportSpec, SourceMode


class Reporter(Protocol):
    """Where progress lines go: the Dagster UI under Pipes, stderr standalone."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...


@dataclass
class IntervalResult:
    """What happened to one requested interval."""

    interval_start: datetime
    #: "loaded", "unchanged" (same generations as recorded: skipped), "no_files" or "failed".
    status: str
    suffix: str
    files: int = 0
    bytes: int = 0
    rows: int = 0
    job_ids: tuple[str, ...] = ()
    reattached_jobs: int = 0
    raw_table: str = ""
    digest: str = ""
    schema_change: str | None = None
    error: str | None = None
    previously_loaded: bool = False


@dataclass
class ImportSummary:
    spec: ImportSpec
    window_start: datetime
    window_end: datetime
    intervals: list[IntervalResult] = field(default_factory=list)
    listed: int = 0
    ignored: int = 0
    outside_window: int = 0
    unparseable: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    published: str | None = None
    publish_job_id: str | None = None

    def with_status(self, *statuses: str) -> list[IntervalResult]:
        return [r for r in self.intervals if r.status in statuses]

    @property
    def data_version(self) -> str:
        """Derived from the loaded object generations of the window: equal data, equal version."""
        hasher = hashlib.sha256()
        for result in sorted(self.intervals, key=lambda r: r.interval_start):
            hasher.update(f"{result.suffix}:{result.digest};".encode())
        return hasher.hexdigest()[:24]


@dataclass
class RetentionSummary:
    spec: ImportSpec
    as_of: datetime
    outcome: RetentionOutcome
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        seconds[phase] = round(seconds.get(phase, 0.0) + time.monotonic() - started, 3)


def run_import(
    *, spec: ImportSpec, window_start: datetime, window_end: datetime, gcs: storage.Client, bq: bigquery.Client,
    reporter: Reporter, retry=None,
) -> ImportSummary:
    """Load every interval in ``[window_start, window_end)`` and publish it.

    Intervals are independent: one that fails does not stop the others, and each
    finished interval is durable (raw table, clean table, ledger). Intervals with
    no files are reported as such, not treated as errors.

    Raises:
        WorkerError: after the whole window was processed, when any interval failed
            (the message lists each failed interval and why).
    """
    summary = ImportSummary(spec=spec, window_start=window_start, window_end=window_end)
    starts = list(spec.interval.starts_between(window_start, window_end))
    if not starts:
        raise WorkerError(f"The window [{window_start.isoformat()}, {window_end.isoformat()}) holds no "
                          f"{spec.interval.value.lower()} interval of {spec.name!r}: pass a later end.")
    prefix = f"gs://{spec.bucket_name}/{spec.object_prefix}"
    reporter.info(f"Listing {prefix} for {len(starts)} interval(s) {starts[0]:%Y-%m-%d %H:%M} .. {starts[-1]:%Y-%m-%d %H:%M}")
    with _timed(summary.seconds, "list"):
        matched = match_objects(
            spec,
            list_objects(gcs, spec, retry=retry, on_page=lambda n: reporter.info(f"Listed {n} objects under {prefix}")),
            intervals=starts,
        )
    summary.listed, summary.ignored = matched.listed, matched.ignored
    summary.outside_window, summary.unparseable = matched.outside_window, matched.unparseable
    reporter.info(
        f"Matched {sum(len(v) for v in matched.by_interval.values())} files in the window; "
        f"{matched.ignored} names ignored, {matched.outside_window} matched other intervals"
    )
    for name in matched.unparseable:
        reporter.warning(f"Skipped gs://{spec.bucket_name}/{name}: its interval_timestamp does not parse with "
                         f"{spec.effective_timestamp_format!r}")

    with _timed(summary.seconds, "load"):
        ensure_datasets(bq, spec, retry=retry)
        ledger = Ledger(bq, spec)
        ledger.ensure()
        recorded_by_interval: dict[datetime, dict[str, int]] = {}
        previous_by_interval: dict[datetime, LoadedObject] = {}
        for obj in ledger.recorded(start=starts[0], end=spec.interval.next_start(starts[-1])):
            recorded_by_interval.setdefault(obj.interval_start, {})[obj.name] = obj.generation
            previous_by_interval[obj.interval_start] = obj  # interval-wide fields are the same on every row

    for position, start in enumerate(starts, 1):
        objects = matched.by_interval.get(start, [])
        result = _import_interval(spec=spec, start=start, objects=objects, recorded=recorded_by_interval.get(start),
                                  previous=previous_by_interval.get(start), bq=bq, ledger=ledger,
                                  summary=summary, reporter=reporter)
        summary.intervals.append(result)
        reporter.info(f"[{position}/{len(starts)}] interval {result.suffix}: {result.status}"
                      + (f", {result.files} files, {result.rows} rows" if result.files else "")
                      + (f" ({result.error})" if result.error else ""))

    if spec.mode is SourceMode.Overwrite:
        with _timed(summary.seconds, "publish"):
            _publish_newest(spec=spec, bq=bq, ledger=ledger, summary=summary, reporter=reporter)

    failed = summary.with_status("failed")
    if failed:
        details = "; ".join(f"{r.suffix}: {r.error}" for r in failed)
        raise WorkerError(f"{len(failed)} of {len(starts)} interval(s) of {spec.name!r} failed to load: {details}")
    return summary


def _import_interval(
    *, spec: ImportSpec, start: datetime, objects: list[ObjectInfo], recorded: dict[str, int] | None,
    previous: LoadedObject | None, bq: bigquery.Client, ledger: Ledger, summary: ImportSummary, reporter: Reporter,
) -> IntervalResult:
    suffix = spec.interval.table_suffix(start)
    if not objects:
        return IntervalResult(interval_start=start, status="no_files", suffix=suffix, previously_loaded=bool(recorded))
    plan = plan_interval_load(spec, interval_start=start, objects=objects, recorded=recorded,
                              previous_load=previous.loaded_at if previous else None,
                              recorded_digest=previous.digest if previous else None)
    result = IntervalResult(interval_start=start, status="unchanged", suffix=suffix, files=len(plan.objects),
                            bytes=plan.total_bytes, raw_table=plan.raw_table_id, digest=plan.digest,
                            previously_loaded=bool(recorded))
    if plan.skip:
        result.rows = previous.interval_rows if previous else 0
        reporter.info(f"Interval {suffix} already holds these {len(plan.objects)} object generations: load skipped")
        return result
    try:
        with _timed(summary.seconds, "load"):
            reporter.info(f"Interval {suffix}: loading {len(plan.objects)} files ({plan.total_bytes} bytes) "
                          f"in {len(plan.batches)} load job(s) into {plan.raw_table_id}")
            done = 0

            def progress(job_id: str, reattached: bool) -> None:
                nonlocal done
                done += 1
                verb = "reattached to" if reattached else "finished"
                reporter.info(f"Interval {suffix}: {verb} load job {done}/{len(plan.batches)} ({job_id})")

            outcome = load_interval(bq, spec, plan, on_job_done=progress)
            result.schema_change = _schema_change(bq, spec, ledger=ledger, start=start, schema=outcome.schema)
        with _timed(summary.seconds, "publish"):
            job_ids = list(outcome.job_ids)
            if spec.mode is SourceMode.Incremental:
                job_ids.append(publish_incremental(bq, spec, raw_table_id=plan.raw_table_id, interval_start=start,
                                                   raw_schema=outcome.schema))
            ledger.record_interval(
                interval_start=start,
                entries=[LedgerEntry(name=o.name, generation=o.generation, size=o.size,
                                     job_id=outcome.job_ids[i // len(plan.batches[0])])
                         for i, o in enumerate(plan.objects)],
                interval_rows=outcome.rows, raw_table=plan.raw_table_id, loaded_at=datetime.now(UTC), digest=plan.digest,
            )
    except WorkerError as exc:
        result.status, result.error = "failed", str(exc)
        return result
    result.status, result.rows, result.job_ids = "loaded", outcome.rows, tuple(job_ids)
    result.reattached_jobs = outcome.reattached
    return result


def _schema_change(bq: bigquery.Client, spec: ImportSpec, *, ledger: Ledger, start: datetime,
                   schema: tuple[bigquery.SchemaField, ...]) -> str | None:
    """How this interval's columns differ from the previous loaded interval's, or None when they match."""
    previous = ledger.previous_interval(start)
    if previous is None:
        return None
    try:
        before = bq.get_table(spec.raw_table_id(previous)).schema
    except Exception:  # the previous raw table was dropped by someone: nothing to compare
        return None
    old = [(f.name, f.field_type, f.mode) for f in before]
    new = [(f.name, f.field_type, f.mode) for f in schema]
    if old == new:
        return None
    added = [n for n, *_ in new if n not in {o[0] for o in old}]
    removed = [n for n, *_ in old if n not in {x[0] for x in new}]
    return (f"columns differ from interval {spec.interval.table_suffix(previous)}: added {added}, removed {removed}, "
            f"before {old}, now {new}")


def _publish_newest(*, spec: ImportSpec, bq: bigquery.Client, ledger: Ledger, summary: ImportSummary,
                    reporter: Reporter) -> None:
    target = overwrite_target(ledger.loaded_intervals())
    if target is None:
        return
    this_run = {r.interval_start: r for r in summary.intervals if r.status in ("loaded", "unchanged")}
    if target in this_run:
        digest = this_run[target].digest
    else:
        recorded = ledger.recorded(start=target, end=spec.interval.next_start(target))
        digest = next((o.digest for o in recorded if o.digest), None) or generations_digest(
            spec, target, [ObjectInfo(name=o.name, generation=o.generation, size=o.size) for o in recorded]
        )
    suffix = spec.interval.table_suffix(target)
    summary.published = suffix
    if published_snapshot(bq, spec) == (suffix, digest):
        reporter.info(f"{spec.clean_table_id} already holds interval {suffix}: nothing to publish")
        return
    newer_than_window = target > summary.intervals[-1].interval_start
    reporter.info(f"Publishing interval {suffix} to {spec.clean_table_id}"
                  + (" (newer than this window: the backfill leaves the snapshot as it is)" if newer_than_window else ""))
    summary.publish_job_id = publish_overwrite(bq, spec, raw_table_id=spec.raw_table_id(target), suffix=suffix,
                                               digest=digest)


def run_retention(
    *, spec: ImportSpec, gcs: storage.Client, bq: bigquery.Client, reporter: Reporter, as_of: datetime,
    dry_run: bool, retry=None,
) -> RetentionSummary:
    """Delete (or with ``dry_run`` only report) loaded objects of intervals past retention."""
    seconds: dict[str, float] = {}
    ledger = Ledger(bq, spec)
    with _timed(seconds, "plan"):
        ensure_datasets(bq, spec, retry=retry)
        ledger.ensure()
        plan = plan_from_services(spec=spec, gcs=gcs, ledger=ledger, as_of=as_of, retry=retry)
    reporter.info(
        f"Retention for {spec.name!r}: intervals ending before {plan.cutoff.isoformat()} are past "
        f"{spec.retention_days} days; {len(plan.to_delete)} loaded objects ({plan.bytes_to_free} bytes) to delete, "
        f"{len(plan.changed_since_load)} changed since load (kept), {len(plan.already_gone)} already gone"
    )
    outcome = RetentionOutcome(plan=plan, dry_run=dry_run, kept_changed=list(plan.changed_since_load))
    if dry_run:
        for obj in plan.to_delete:
            reporter.info(f"[dry run] would delete gs://{spec.bucket_name}/{obj.name} (generation {obj.generation})")
        return RetentionSummary(spec=spec, as_of=as_of, outcome=outcome, seconds=seconds)
    with _timed(seconds, "retention"):
        deleted, kept = delete_planned(
            spec=spec, gcs=gcs, plan=plan,
            on_batch=lambda done, total: reporter.info(f"Deleted {done}/{total} objects"),
        )
        outcome.deleted = deleted
        outcome.kept_changed.extend(kept)
        ledger.mark_deleted([*deleted, *plan.already_gone], deleted_at=datetime.now(UTC))
    return RetentionSummary(spec=spec, as_of=as_of, outcome=outcome, seconds=seconds)
