"""One worker run: import the intervals of a window, or enforce retention.

This module sequences the phases of a run (list and match, read the ledger, import the intervals side by
side in rounds (:mod:`worker.interval_rounds`), publish the Overwrite snapshot once every interval settled,
report the failures) and of retention; what happens to one interval is
:class:`worker.interval_import.IntervalImport`, the decisions live in :mod:`planning`, the I/O in
:mod:`loading`, :mod:`publishing`, :mod:`ledger` and :mod:`retention`, the wording for Dagster in
:mod:`reporting`, the results in :mod:`results`.
"""

from __future__ import annotations

import dataclasses
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from google.cloud import bigquery, storage

from worker.archive_decisions import ArchiveResult, plan_moves
from worker.archiving import archive_before_delete
from worker.bigquery_datasets import ensure_datasets, repair_table_expiry
from worker.checkpoints import checkpoint
from worker.core.contract import PRESENT, IntervalStatus
from worker.core.errors import ServiceUnreachable, TransientError, WorkerError
from worker.core.gcs import list_ranges
from worker.core.listing_ranges import plan_listing_ranges
from worker.core.matching import MatchResult, match_objects
from worker.core.records import LedgerEntry, PendingKey, RecordedInterval
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec, SourceMode
from worker.interval_import import IntervalImport, timed
from worker.interval_rounds import import_in_rounds
from worker.ledger import Ledger
from worker.planning import RetentionPlan, overwrite_target, recorded_digest
from worker.publishing import describe_clean_table, publish_overwrite, published_snapshot
from worker.reporting import Reporter, ThreadSafeReporter
from worker.results import (
    ArchiveProgress,
    DeleteProgress,
    ImportSummary,
    IntervalResult,
    RetentionOutcome,
    RetentionSummary,
)
from worker.retention import delete_planned, plan_from_services, read_bucket_retention
from worker.side_by_side import side_by_side


def _repair_expiry(spec: ImportSpec, *, bq: bigquery.Client, ledger: Ledger, reporter: Reporter,
                   budget: RetryBudget) -> None:
    """Tables an earlier release created that inherited their dataset's default expiry lose it now (a warning
    names each): the ledger and pending loads (:meth:`Ledger.ensure`), raw tables and the clean table."""
    for note in [*ledger.expiry_repaired, *repair_table_expiry(bq, spec, budget=budget)]:
        reporter.warning(note)


def window_starts(spec: ImportSpec, window_start: datetime, window_end: datetime) -> list[datetime]:
    """The interval starts in ``[window_start, window_end)``; raises WorkerError when there is none."""
    starts = list(spec.interval.starts_between(window_start, window_end))
    if not starts:
        raise WorkerError(f"The window [{window_start.isoformat()}, {window_end.isoformat()}) holds no "
                          f"{spec.interval.value.lower()} interval of {spec.name!r}: pass a later end.")
    return starts


def run_import(
    *, spec: ImportSpec, window_start: datetime, window_end: datetime, gcs: storage.Client, bq: bigquery.Client,
    reporter: Reporter, budget: RetryBudget | None = None, load_incomplete: bool = False,
) -> ImportSummary:
    """Load every interval in ``[window_start, window_end)`` and publish it.

    With ``complete_when``, an interval the gate finds incomplete is not loaded (INCOMPLETE, with the reason)
    unless ``load_incomplete``; it fails the run like a failed interval, never as transient.

    Intervals are independent: one that fails does not stop the others, and each
    finished interval is durable (raw table, clean table, ledger). Up to
    ``spec.max_concurrent_intervals`` intervals are imported side by side
    (:func:`worker.interval_rounds.import_in_rounds`); with 1, one after another. Intervals with
    no files are reported as such, not treated as errors. What happens to each
    interval is decided by :func:`worker.planning.decide_interval`. The bucket is
    listed *before* the ledger is read, so a retention that seals an interval after
    the read cannot have deleted anything the listing missed.

    Raises:
        WorkerError: after the whole window was processed, when any interval failed
            (the message lists each failed interval and why).
        ServiceUnreachable: a service stayed unreachable; the run stopped at that interval (once the
            intervals imported beside it finished).
    """
    budget = budget or RetryBudget()
    reporter = ThreadSafeReporter(reporter)  # the intervals of a round report from their threads
    summary = ImportSummary(spec=spec, window_start=window_start, window_end=window_end)
    starts = window_starts(spec, window_start, window_end)
    # BigQuery's setup runs while the bucket is listed; the ledger is read only after the listing
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="setup") as setup:
        prepared = setup.submit(_prepare_bigquery, spec, bq=bq, reporter=reporter, budget=budget)
        matched = _list_and_match(spec, starts=starts, gcs=gcs, summary=summary, reporter=reporter, budget=budget)
    with timed(summary.seconds, "load"):
        ledger = prepared.result()
        records, pending = _read_ledger(ledger, starts=starts)

    interval_import = IntervalImport(spec=spec, bq=bq, ledger=ledger, budget=budget, reporter=reporter,
                                     attempt_token=secrets.token_hex(4), summary=summary,
                                     load_incomplete=load_incomplete)
    results = import_in_rounds(interval_import, starts=starts, objects=matched.by_interval, records=records,
                               pending=pending, concurrency=spec.max_concurrent_intervals,
                               markers=matched.markers_by_interval)
    try:
        for position, result in enumerate(results, 1):
            summary.add_interval(result)
            reporter.info(f"[{position}/{len(starts)}] interval {result.suffix}: {result.status}"
                          + (f", {result.files} files, {result.rows} rows" if result.files else "")
                          + (f" ({result.error})" if result.error else ""))
    except ServiceUnreachable as unreachable:
        # Every later interval would wait out the same deadline: stop the window here.
        done = len(summary.intervals)
        raise ServiceUnreachable(f"{unreachable} The run stopped at interval {done + 1} of {len(starts)} of "
                                 f"{spec.name!r}; the {done} interval(s) before it are durable and are skipped on the re-run.") from None

    if spec.mode is SourceMode.Overwrite:
        with timed(summary.seconds, "publish"):
            try:
                _publish_newest(spec=spec, bq=bq, ledger=ledger, summary=summary, reporter=reporter, budget=budget)
            except WorkerError as exc:
                summary.publish_error = str(exc)

    if any(r.status in PRESENT for r in summary.intervals):
        summary.clean_table = describe_clean_table(bq, spec, budget=budget)
    _raise_failures(spec, summary=summary, intervals=len(starts))
    return summary


def _list_and_match(spec: ImportSpec, *, starts: list[datetime], gcs: storage.Client, summary: ImportSummary,
                    reporter: Reporter, budget: RetryBudget) -> MatchResult:
    """List the key ranges of ``starts`` (the whole prefix when the layout does not sort like time: the log
    says why, once) and match the objects to ``starts``; the counts (of the listed range) go to ``summary``,
    a warning names each object whose interval timestamp does not parse."""
    prefix = f"gs://{spec.bucket_name}/{spec.object_prefix}"
    reporter.info(f"Listing {prefix} for {len(starts)} interval(s) {starts[0]:%Y-%m-%d %H:%M} .. {starts[-1]:%Y-%m-%d %H:%M}")
    ranges = plan_listing_ranges(spec, interval_starts=starts)
    reporter.info(ranges.describe())
    with timed(summary.seconds, "list"):
        matched = match_objects(
            spec,
            list_ranges(gcs, spec, ranges=ranges, retry=budget.retry,
                        on_page=lambda n: reporter.info(f"Listed {n} objects under {prefix}")),
            intervals=starts,
        )
    checkpoint("import.listed")
    summary.listed, summary.ignored = matched.listed, matched.ignored
    summary.outside_window, summary.unparseable = matched.outside_window, matched.unparseable
    reporter.info(
        f"Matched {sum(len(v) for v in matched.by_interval.values())} files in the window; "
        f"{matched.ignored} names ignored, {matched.outside_window} matched other intervals"
        + (f"; {sum(len(v) for v in matched.markers_by_interval.values())} completeness markers (never loaded)"
           if spec.complete_when is not None and spec.complete_when.marker_match is not None else "")
    )
    for name in matched.unparseable:
        reporter.warning(f"Skipped gs://{spec.bucket_name}/{name}: its interval_timestamp does not parse with "
                         f"{spec.effective_timestamp_format!r}")
    return matched


def _prepare_bigquery(spec: ImportSpec, *, bq: bigquery.Client, reporter: Reporter, budget: RetryBudget) -> Ledger:
    """Ensure the datasets, then the ledger's tables beside the expiry repairs of the raw and clean tables
    (different tables: side by side); the ledger."""
    ensure_datasets(bq, spec, budget=budget)
    ledger = Ledger(bq, spec, budget=budget)
    _, repaired = side_by_side(ledger.ensure, lambda: repair_table_expiry(bq, spec, budget=budget))
    for note in [*ledger.expiry_repaired, *repaired]:
        reporter.warning(note)
    if not ledger.partitioned:
        reporter.warning(f"{ledger.table_id} is unpartitioned (written by an earlier release): it works, but "
                         "concurrent imports conflict more often; migrate it with `python -m worker migrate-ledger`")
    return ledger


def _read_ledger(ledger: Ledger, *, starts: list[datetime]) -> tuple[dict[datetime, RecordedInterval],
                                                                     dict[datetime, dict[PendingKey, list[LedgerEntry]]]]:
    """The window's ledger records and pending loads (two reads, side by side)."""
    start, end = starts[0], ledger.spec.interval.next_start(starts[-1])
    records, pending = side_by_side(lambda: ledger.recorded_intervals(start=start, end=end),
                                    lambda: ledger.pending_loads.read(start=start, end=end))
    return records, pending


def _raise_failures(spec: ImportSpec, *, summary: ImportSummary, intervals: int) -> None:
    """Raise when an interval or the publish failed: TransientError when every failure was transient (the
    orchestrator then retries the step), WorkerError otherwise (an INCOMPLETE interval is never transient:
    only its producer completes it); the message lists each failure."""
    failed = summary.with_status(IntervalStatus.FAILED, IntervalStatus.INCOMPLETE)
    if failed or summary.publish_error:
        details = "; ".join([*(f"{r.suffix}: {r.error}" for r in failed), *([summary.publish_error] if summary.publish_error else [])])
        # Transient when every failure was: the orchestrator then retries the step.
        error_cls = TransientError if all(r.transient for r in failed) and not summary.publish_error else WorkerError
        raise error_cls(f"{len(failed)} of {intervals} interval(s) of {spec.name!r} failed to load"
                        + (" and publishing failed" if summary.publish_error else "") + f": {details}")


#: Publish rounds before giving up on a snapshot that concurrent runs keep moving.
_MAX_PUBLISH_ROUNDS = 5


def _publish_newest(*, spec: ImportSpec, bq: bigquery.Client, ledger: Ledger, summary: ImportSummary,
                    reporter: Reporter, budget: RetryBudget) -> None:
    """Make the Overwrite clean table hold the newest loaded interval that has rows.

    After each copy the ledger is read again: a concurrent run may have recorded a newer
    interval while this one copied an older one, and then this run publishes the newer one
    too. The table therefore ends on the newest interval whichever run finishes last.
    """
    this_run = {r.interval_start: r for r in summary.intervals if r.status in PRESENT}
    for _ in range(_MAX_PUBLISH_ROUNDS):
        target = overwrite_target(ledger.snapshot_candidates(), allow_empty=spec.allow_empty_snapshot)
        if target is None:
            return
        if target in this_run and this_run[target].status is not IntervalStatus.RETAINED:
            digest = this_run[target].digest
        else:
            records = ledger.recorded_intervals(start=target, end=spec.interval.next_start(target))
            digest = recorded_digest(spec, records[target])
        suffix = spec.interval.table_suffix(target)
        summary.published = suffix
        current = published_snapshot(bq, spec, budget=budget)
        if current == (suffix, digest):
            reporter.info(f"{spec.clean_table_id} holds interval {suffix}: nothing (more) to publish")
            _queryable(this_run.get(target), at=datetime.now(UTC))
            return
        newer_than_window = target > summary.intervals[-1].interval_start
        reporter.info(f"Publishing interval {suffix} to {spec.clean_table_id}"
                      + (" (newer than this window: the backfill leaves the snapshot as it is)" if newer_than_window else ""))
        checkpoint("import.before_publish")
        job_id = publish_overwrite(bq, spec, raw_table_id=spec.raw_table_id(target), suffix=suffix, digest=digest,
                                   budget=budget, previous=current)
        if job_id is None:  # the table changed after this copy: a concurrent publish labelled it; check again
            reporter.info(f"{spec.clean_table_id} changed after this run's copy of interval {suffix} (a concurrent "
                          "publish): its labels are left as they are; checking the newest interval again")
            continue
        summary.publish_job_id = job_id
        _queryable(this_run.get(target), at=datetime.now(UTC))
        checkpoint("import.published")
    reporter.warning(f"{spec.clean_table_id}: concurrent runs kept recording newer intervals; the next run re-checks")


def _queryable(result: IntervalResult | None, *, at: datetime) -> None:
    """The Overwrite snapshot holds ``result``'s interval from ``at``: when this run loaded it, that ends its
    ``arrival_to_queryable_seconds`` (an interval this run did not load has no arrival to measure). The first
    publish counts: the round after it finds the table holding the interval and must not move the time."""
    if result is not None and result.status in (IntervalStatus.LOADED, IntervalStatus.ADDED) and result.queryable_at is None:
        result.queryable_at = at


def run_retention(
    *, spec: ImportSpec, gcs: storage.Client, bq: bigquery.Client, reporter: Reporter, as_of: datetime,
    dry_run: bool, budget: RetryBudget | None = None,
) -> RetentionSummary:
    """Delete (or with ``dry_run`` only report) loaded objects of intervals past retention; with
    ``retention_action: archive`` each is first copied to the archive bucket and verified
    (:mod:`worker.archiving`), and only verified objects are deleted.

    Order: plan (ledger, then listing) → seal the intervals it deletes from → [archive: rewrite, verify, record
    the copies in the ledger] → delete in batches → stamp ``deleted_at``. A crash at any point leaves the interval
    sealed, so no import can rebuild it from what is left; the next retention finishes the deletes (and verifies
    the copies an interrupted archive left).
    """
    budget = budget or RetryBudget()
    seconds: dict[str, float] = {}
    ledger = Ledger(bq, spec, budget=budget)
    with timed(seconds, "plan"):
        ensure_datasets(bq, spec, budget=budget)
        ledger.ensure()
        _repair_expiry(spec, bq=bq, ledger=ledger, reporter=reporter, budget=budget)
        plan = plan_from_services(spec=spec, gcs=gcs, ledger=ledger, as_of=as_of, budget=budget,
                                  on_listing=lambda listing: reporter.info(listing.describe()))
    target = spec.archive_target
    verb = "delete" if target is None else f"archive to gs://{target.bucket}/{target.prefix}, then delete"
    reporter.info(
        f"Retention for {spec.name!r}: intervals ending before {plan.cutoff.isoformat()} are past "
        f"{spec.retention_days} days; {len(plan.to_delete)} loaded objects ({plan.bytes_to_free} bytes) to {verb}, "
        f"{len(plan.changed_since_load)} changed since load (kept), {len(plan.already_gone)} already gone"
    )
    outcome = RetentionOutcome(plan=plan, dry_run=dry_run, kept_changed=list(plan.changed_since_load),
                               archive=ArchiveProgress() if target is not None else None)
    if dry_run:
        _report_dry_run(spec, plan, reporter)
        return RetentionSummary(spec=spec, as_of=as_of, outcome=outcome, seconds=seconds)
    checkpoint("retention.planned")
    with timed(seconds, "retention"):
        ledger.seal(plan.intervals, sealed_at=datetime.now(UTC))
        checkpoint("retention.sealed")
        planned = plan  # the markers wait for every planned object, archived or kept (an unverified copy keeps one)
        if outcome.archive is not None:
            plan = _archive(spec=spec, gcs=gcs, ledger=ledger, plan=plan, budget=budget, outcome=outcome,
                            progress=outcome.archive, reporter=reporter)
        progress = DeleteProgress()
        try:
            delete_planned(spec=spec, gcs=gcs, plan=plan, budget=budget, progress=progress,
                           on_batch=lambda done, total: reporter.info(f"Deleted {done}/{total} objects"))
        finally:
            # Record what was deleted even when a later batch failed (the ledger must know).
            outcome.deleted = progress.deleted
            outcome.kept_changed.extend(progress.kept)
            checkpoint("retention.deleted")
            ledger.mark_deleted([*progress.deleted, *plan.already_gone], deleted_at=datetime.now(UTC))
        _delete_markers(spec=spec, gcs=gcs, ledger=ledger, plan=planned, outcome=outcome, budget=budget,
                        reporter=reporter)
        if outcome.deleted:  # soft delete / versioning: are the deleted bytes really freed?
            outcome.bucket = read_bucket_retention(spec=spec, gcs=gcs, budget=budget)
            if outcome.freed_note:
                reporter.info(f"{outcome.bytes_deleted} bytes deleted, freed: {outcome.freed_note}")
    return RetentionSummary(spec=spec, as_of=as_of, outcome=outcome, seconds=seconds)


def _report_dry_run(spec: ImportSpec, plan: RetentionPlan, reporter: Reporter) -> None:
    """What retention would do, one line per object (``source -> destination`` when it archives)."""
    target = spec.archive_target
    for marker in plan.markers:  # complete_when.marker_match: deleted after their intervals' data, never archived
        reporter.info(f"[dry run] would delete gs://{spec.bucket_name}/{marker.name} (generation {marker.generation}) "
                      "(completeness marker)")
    if target is None:
        for obj in plan.to_delete:
            reporter.info(f"[dry run] would delete gs://{spec.bucket_name}/{obj.name} (generation {obj.generation})")
        return
    moves = plan_moves(plan.to_delete, bucket=spec.bucket_name, target=target)
    for move in moves:
        reporter.info(f"[dry run] would archive {move.source_uri} -> {move.target_uri} ({move.size} bytes), "
                      "then delete the original")
    reporter.info(f"[dry run] {len(moves)} objects ({sum(m.size for m in moves)} bytes) would move to "
                  f"gs://{target.bucket}/{target.prefix}")


def _archive(*, spec: ImportSpec, gcs: storage.Client, ledger: Ledger, plan: RetentionPlan, budget: RetryBudget,
             outcome: RetentionOutcome, progress: ArchiveProgress, reporter: Reporter) -> RetentionPlan:
    """Archive the plan's objects (:func:`worker.archiving.archive_before_delete`) into ``progress`` (the
    outcome's); the plan narrowed to the verified ones. Untrusted copies are warned about (one line each),
    changed sources kept."""

    def said(result: ArchiveResult) -> None:
        if result.note:
            reporter.warning(result.note)

    try:
        return archive_before_delete(spec=spec, gcs=gcs, ledger=ledger, plan=plan, budget=budget, progress=progress,
                                     on_result=said)
    finally:
        outcome.kept_changed.extend(progress.source_changed)
        reporter.info(f"Archived {len(progress.trusted)}/{len(plan.to_delete)} objects "
                      f"({sum(r.obj.size for r in progress.trusted)} bytes) to gs://{spec.archive_bucket}/"
                      f"{spec.archive_prefix}; {len(progress.untrusted)} kept (archive copy differs), "
                      f"{len(progress.source_changed)} changed since load (kept)")


def _delete_markers(*, spec: ImportSpec, gcs: storage.Client, ledger: Ledger, plan: RetentionPlan,
                    outcome: RetentionOutcome, budget: RetryBudget, reporter: Reporter) -> None:
    """Delete the completeness markers of the intervals whose last loaded files this retention deleted (after
    them, never before: :meth:`~worker.planning.RetentionPlan.markers_after`), generation-conditioned like the
    data, and record them deleted (with the recorded markers already gone)."""
    markers = plan.markers_after([*outcome.deleted, *plan.already_gone])
    progress = DeleteProgress()
    try:
        if markers:
            delete_planned(spec=spec, gcs=gcs, plan=dataclasses.replace(plan, to_delete=markers), budget=budget,
                           progress=progress)
            reporter.info(f"Deleted {len(progress.deleted)} completeness marker(s) after their intervals' last files")
    finally:
        outcome.markers_deleted = progress.deleted
        if progress.deleted or plan.markers_gone:
            ledger.mark_deleted([*progress.deleted, *plan.markers_gone], deleted_at=datetime.now(UTC))
