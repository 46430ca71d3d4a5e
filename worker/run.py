"""One worker run: import the intervals of a window, or enforce retention.

This module sequences the phases (match, load, publish, record, retention) and
collects what happened into summaries; the decisions live in :mod:`planning`,
the I/O in :mod:`matching`, :mod:`loading`, :mod:`publishing`, :mod:`ledger` and
:mod:`retention`, the wording for Dagster in :mod:`reporting`.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol

import requests
from google.api_core import exceptions as gexc
from google.cloud import bigquery, storage

from worker.bigquery_datasets import ensure_datasets, repair_table_expiry
from worker.bigquery_jobs import find_succeeded
from worker.checkpoints import checkpoint
from worker.core.contract import PRESENT, IntervalStatus
from worker.core.errors import ServiceUnreachable, TransientError, WorkerError, explain_bigquery_error
from worker.core.gcs import list_objects
from worker.core.matching import match_objects
from worker.core.records import SKIPPED_JOB_ID, LedgerEntry, ObjectInfo, RecordedInterval
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec, OnBadFile, SourceMode
from worker.ledger import Ledger, pending_key
from worker.loading import copy_source, load_interval
from worker.planning import IntervalAction, decide_interval, generations_digest, overwrite_target, plan_interval_load, recorded_digest
from worker.publishing import describe_clean_table, publish_incremental, publish_overwrite, published_snapshot
from worker.raw_tables import raw_table_contents, table_exists
from worker.retention import (
    DeleteProgress,
    RetentionOutcome,
    delete_planned,
    plan_from_services,
    read_bucket_retention,
)
from worker.schema_changes import schema_change_from_previous
from worker.summaries import ImportSummary, IntervalResult, RetentionSummary


class Reporter(Protocol):
    """Where progress lines go: the Dagster UI under Pipes, stderr standalone."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...


@contextmanager
def _timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        seconds[phase] = round(seconds.get(phase, 0.0) + time.monotonic() - started, 3)


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
    reporter: Reporter, budget: RetryBudget | None = None,
) -> ImportSummary:
    """Load every interval in ``[window_start, window_end)`` and publish it.

    Intervals are independent: one that fails does not stop the others, and each
    finished interval is durable (raw table, clean table, ledger). Intervals with
    no files are reported as such, not treated as errors. What happens to each
    interval is decided by :func:`worker.planning.decide_interval`. The bucket is
    listed *before* the ledger is read, so a retention that seals an interval after
    the read cannot have deleted anything the listing missed.

    Raises:
        WorkerError: after the whole window was processed, when any interval failed
            (the message lists each failed interval and why).
    """
    budget = budget or RetryBudget()
    summary = ImportSummary(spec=spec, window_start=window_start, window_end=window_end)
    starts = window_starts(spec, window_start, window_end)
    prefix = f"gs://{spec.bucket_name}/{spec.object_prefix}"
    reporter.info(f"Listing {prefix} for {len(starts)} interval(s) {starts[0]:%Y-%m-%d %H:%M} .. {starts[-1]:%Y-%m-%d %H:%M}")
    with _timed(summary.seconds, "list"):
        matched = match_objects(
            spec,
            list_objects(gcs, spec, retry=budget.retry,
                         on_page=lambda n: reporter.info(f"Listed {n} objects under {prefix}")),
            intervals=starts,
        )
    checkpoint("import.listed")
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
        ensure_datasets(bq, spec, budget=budget)
        ledger = Ledger(bq, spec, budget=budget)
        ledger.ensure()
        _repair_expiry(spec, bq=bq, ledger=ledger, reporter=reporter, budget=budget)
        if not ledger.partitioned:
            reporter.warning(f"{ledger.table_id} is unpartitioned (written by an earlier release): it works, but "
                             "concurrent imports conflict more often; migrate it with `python -m worker migrate-ledger`")
        records = ledger.recorded_intervals(start=starts[0], end=spec.interval.next_start(starts[-1]))
        pending = ledger.pending(start=starts[0], end=spec.interval.next_start(starts[-1]))

    attempt_token = secrets.token_hex(4)
    unreachable: ServiceUnreachable | None = None
    for position, start in enumerate(starts, 1):
        try:
            result = _import_interval(spec=spec, start=start, objects=matched.by_interval.get(start, []),
                                      recorded=records.get(start), pending=pending.get(start, {}), bq=bq,
                                      ledger=ledger, summary=summary, reporter=reporter, budget=budget,
                                      attempt_token=attempt_token)
        except ServiceUnreachable as exc:
            # Every later interval would wait out the same deadline: stop the window here.
            unreachable = exc
            break
        summary.intervals.append(result)
        reporter.info(f"[{position}/{len(starts)}] interval {result.suffix}: {result.status}"
                      + (f", {result.files} files, {result.rows} rows" if result.files else "")
                      + (f" ({result.error})" if result.error else ""))
    if unreachable is not None:
        done = len(summary.intervals)
        raise ServiceUnreachable(f"{unreachable} The run stopped at interval {done + 1} of {len(starts)} of "
                                 f"{spec.name!r}; the {done} interval(s) before it are durable and are skipped on the re-run.")

    if spec.mode is SourceMode.Overwrite:
        with _timed(summary.seconds, "publish"):
            try:
                _publish_newest(spec=spec, bq=bq, ledger=ledger, summary=summary, reporter=reporter, budget=budget)
            except WorkerError as exc:
                summary.publish_error = str(exc)

    if any(r.status in PRESENT for r in summary.intervals):
        summary.clean_table = describe_clean_table(bq, spec, budget=budget)

    failed = summary.with_status(IntervalStatus.FAILED)
    if failed or summary.publish_error:
        details = "; ".join([*(f"{r.suffix}: {r.error}" for r in failed), *([summary.publish_error] if summary.publish_error else [])])
        # Transient when every failure was: the orchestrator then retries the step.
        error_cls = TransientError if all(r.transient for r in failed) and not summary.publish_error else WorkerError
        raise error_cls(f"{len(failed)} of {len(starts)} interval(s) of {spec.name!r} failed to load"
                        + (" and publishing failed" if summary.publish_error else "") + f": {details}")
    return summary


#: Decide-and-load rounds for one interval: when another attempt's copy won this one's, the
#: interval is decided again once that attempt's load is recorded.
_MAX_INTERVAL_ROUNDS = 3


def _import_interval(
    *, spec: ImportSpec, start: datetime, objects: list[ObjectInfo], recorded: RecordedInterval | None,
    pending: dict[str, list[LedgerEntry]], bq: bigquery.Client, ledger: Ledger, summary: ImportSummary,
    reporter: Reporter, budget: RetryBudget, attempt_token: str,
) -> IntervalResult:
    suffix = spec.interval.table_suffix(start)
    result = IntervalResult(interval_start=start, status=IntervalStatus.NO_FILES, suffix=suffix)
    try:
        recovered: IntervalStatus | None = None
        for _ in range(_MAX_INTERVAL_ROUNDS):
            # The ledger first catches up with the raw table: a load that reached it without its ledger
            # write (a worker died in between, or a concurrent worker's copy won) is recorded now.
            found = _record_pending_loads(spec, start=start, pending=pending, recorded=recorded, bq=bq, ledger=ledger,
                                          reporter=reporter, budget=budget) if pending else None
            if found is not None:
                recovered = found
                recorded = ledger.recorded_intervals(start=start, end=spec.interval.next_start(start)).get(start)
            if _import_round(spec=spec, start=start, objects=objects, recorded=recorded, bq=bq, ledger=ledger,
                             summary=summary, reporter=reporter, budget=budget, attempt_token=attempt_token,
                             result=result):
                if recovered is not None and result.status in (IntervalStatus.UNCHANGED, IntervalStatus.RETAINED):
                    result.status = recovered  # this run recorded the interval's load
                return result
            # Another attempt's copy won ours: decide again once its load is recorded.
            pending = ledger.pending(start=start, end=spec.interval.next_start(start)).get(start, {})
            recorded = ledger.recorded_intervals(start=start, end=spec.interval.next_start(start)).get(start)
        raise WorkerError(f"interval {suffix} kept changing while it was imported (concurrent runs): re-run.")
    except ServiceUnreachable:
        raise
    except (WorkerError, gexc.GoogleAPIError, requests.exceptions.RequestException) as exc:
        error = exc if isinstance(exc, WorkerError) else explain_bigquery_error(
            exc, table=spec.raw_table_id(start), action=f"importing interval {suffix}")
        result.status, result.error, result.transient = IntervalStatus.FAILED, str(error), isinstance(error, TransientError)
        return result


def _import_round(
    *, spec: ImportSpec, start: datetime, objects: list[ObjectInfo], recorded: RecordedInterval | None,
    bq: bigquery.Client, ledger: Ledger, summary: ImportSummary, reporter: Reporter, budget: RetryBudget,
    attempt_token: str, result: IntervalResult,
) -> bool:
    """One decision and what it takes; fills ``result``. False when another attempt's copy won this one's
    (the caller records that load and decides again)."""
    suffix = result.suffix
    decision = decide_interval(spec, interval_start=start, listed=objects, recorded=recorded)
    result.digest, result.previously_loaded = decision.digest, recorded is not None
    if recorded is not None:
        result.rows, result.raw_table = recorded.interval_rows, spec.raw_table_id(start)
        # still unloaded from an earlier run: the check keeps saying so until a new generation loads
        result.skipped_files = tuple(sorted(o.name for o in recorded.objects if o.skipped and not o.deleted))
    action = decision.action
    if action is IntervalAction.NO_FILES:
        return True
    if action is IntervalAction.SKIP:
        result.status, result.files, result.bytes = IntervalStatus.UNCHANGED, len(objects), sum(o.size for o in objects)
        reporter.info(f"Interval {suffix} already holds these {len(objects)} object generations: load skipped")
        return True
    if action is IntervalAction.KEEP:
        assert recorded is not None  # nosec B101 # type narrowing: decide_interval returns KEEP only for a recorded interval
        result.status, result.files = IntervalStatus.RETAINED, len(recorded.objects)
        result.bytes = sum(o.size for o in recorded.objects)
        why = (f"sealed by retention ({len(recorded.deleted_names)} of its {len(recorded.objects)} files deleted)"
               if recorded.sealed else "its files are gone")
        reporter.info(f"Interval {suffix} was loaded before and is {why}: its {recorded.interval_rows} rows stay as loaded")
        if decision.settings_changed:
            deleted = recorded.deleted_names
            shown = ", ".join(f"gs://{spec.bucket_name}/{n}" for n in deleted[:5]) + (" ..." if len(deleted) > 5 else "")
            result.note = (
                f"the load settings changed since interval {suffix} was loaded, but it is not reloaded with them: "
                f"retention deleted {len(deleted)} of its files ({shown}), so its {recorded.interval_rows} rows stay as "
                "loaded with the earlier settings. To apply the new settings, upload the files again under new names."
            )
            reporter.warning(f"Interval {suffix}: {result.note}")
        return True
    if action is IntervalAction.REFUSE:
        names = ", ".join(f"gs://{spec.bucket_name}/{o.name} (generation {o.generation})" for o in decision.conflicts[:5])
        result.status = IntervalStatus.FAILED
        result.error = (
            f"interval {suffix} is sealed (retention deleted or is deleting its loaded files, so BigQuery holds the "
            f"only copy of their rows) and {len(decision.conflicts)} of its loaded objects were re-uploaded since: "
            f"{names}. Nothing was changed. To load the new content, upload it under a new object name (it is then "
            "loaded in addition to the interval's rows); to keep the interval as loaded, delete the re-uploaded objects."
        )
        return True
    append = action is IntervalAction.ADD
    if append and not table_exists(bq, spec.raw_table_id(start), budget=budget):
        # The append would create a raw table of the new rows only, and publishing it would replace the
        # interval's clean rows with those: refuse before anything is written.
        result.status = IntervalStatus.FAILED
        result.error = (
            f"interval {suffix} is sealed and has {len(decision.to_load)} new file(s) to add, but its raw table "
            f"{spec.raw_table_id(start)} is gone (expired or dropped), and BigQuery holds its earlier rows only in "
            f"{spec.clean_table_id}: nothing was loaded. Restore the raw table (e.g. from the clean table's rows of "
            "this interval), or load the new files into an interval of their own."
        )
        return True
    plan = plan_interval_load(spec, interval_start=start, objects=decision.to_load, digest=decision.digest,
                              previous_load=recorded.loaded_at if recorded else None, append=append,
                              attempt_token=attempt_token)
    key = pending_key(copy_job_base=plan.copy_job_base(spec=spec), staging_table_id=plan.staging_table_id)
    new_entries = [LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=plan.copy_job_base(spec=spec))
                   for o in plan.objects]
    result.files, result.bytes, result.raw_table = len(plan.objects), plan.total_bytes, plan.raw_table_id
    with _timed(summary.seconds, "load"):
        verb = "adding" if append else "loading"
        reporter.info(f"Interval {suffix}: {verb} {len(plan.objects)} files ({plan.total_bytes} bytes) "
                      f"in {len(plan.batches)} load job(s) into {plan.raw_table_id}"
                      + (" (sealed interval: loaded in addition to its recorded rows)" if append else ""))
        done = 0

        def progress(job_id: str, reattached: bool) -> None:
            nonlocal done
            done += 1
            verb = "reattached to" if reattached else "finished"
            reporter.info(f"Interval {suffix}: {verb} job {done}/{len(plan.batches)} ({job_id})")

        written: list[LedgerEntry] = []

        def before_copy(skipped: tuple[str, ...]) -> None:
            # the pending load says which files were skipped: a recovery must never record them as loaded
            written[:] = _with_skips(new_entries, skipped)
            ledger.write_pending(interval_start=start, key=key, entries=written, created_at=datetime.now(UTC))

        outcome = load_interval(bq, spec, plan, budget=budget, on_job_done=progress, before_copy=before_copy)
        if outcome.copied_from is not None and outcome.copied_from != plan.staging_table_id:
            # Another attempt's copy (same copy id) wrote the raw table: its pending load says what it holds.
            reporter.info(f"Interval {suffix}: another attempt's copy ({outcome.job_ids[-1]}) wrote "
                          f"{plan.raw_table_id}; recording its load instead")
            ledger.drop_pending(interval_start=start, key=key)
            return False
        skipped = set(outcome.skipped)
        if not written and spec.on_bad_file is OnBadFile.skip:
            # this attempt reattached to its own finished copy: the pending load it wrote says what was skipped
            found = ledger.pending(start=start, end=spec.interval.next_start(start)).get(start, {}).get(key)
            if found is None:
                raise WorkerError(f"Interval {suffix}: a finished load of {plan.raw_table_id} has no pending record "
                                  "of the files it skipped; nothing was recorded or deleted: re-run.")
            skipped = {e.name for e in found if e.job_id == SKIPPED_JOB_ID}
        result.skipped_files = tuple(sorted(skipped))
        for warning in outcome.warnings:  # unloadable object names, Avro raw types kept
            reporter.warning(f"Interval {suffix}: {warning}")
        if skipped:
            reporter.warning(f"Interval {suffix}: skipped {len(skipped)} file(s) BigQuery could not read: "
                             + ", ".join(f"gs://{spec.bucket_name}/{n}" for n in sorted(skipped)[:5]))
        result.schema_change, result.column_changes = schema_change_from_previous(
            bq, spec, ledger=ledger, start=start, schema=outcome.schema, budget=budget)
    with _timed(summary.seconds, "publish"):
        job_ids = list(outcome.job_ids)
        if spec.mode is SourceMode.Incremental:
            published = publish_incremental(bq, spec, raw_table_id=plan.raw_table_id, interval_start=start,
                                            raw_schema=outcome.schema, budget=budget)
            job_ids.append(published.job_id)
            if published.changes:
                result.column_changes = (*result.column_changes, *published.changes)
                reporter.warning(f"Interval {suffix}: {spec.clean_table_id} columns changed: "
                                 + ", ".join(f"{c.column} {c.change}" for c in published.changes))
            checkpoint("import.published")
        by_name = plan.job_ids_by_name(outcome.job_ids)
        loaded = _with_skips([LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=by_name[o.name])
                              for o in plan.objects], tuple(skipped))
        entries = _interval_entries(loaded, recorded, append=append)
        ledger.record_interval(interval_start=start, entries=entries, interval_rows=outcome.rows,
                               raw_table=plan.raw_table_id, loaded_at=datetime.now(UTC), digest=plan.digest)
        checkpoint("import.recorded")
        ledger.drop_pending(interval_start=start, key=key)
    result.status = IntervalStatus.ADDED if append else IntervalStatus.LOADED
    result.rows, result.job_ids, result.reattached_jobs = outcome.rows, tuple(job_ids), outcome.reattached
    return True


def _with_skips(entries: list[LedgerEntry], skipped: tuple[str, ...]) -> list[LedgerEntry]:
    """``entries`` with the skipped objects marked (job id :data:`SKIPPED_JOB_ID`: no rows, never deleted)."""
    names = set(skipped)
    return [dataclasses.replace(e, job_id=SKIPPED_JOB_ID) if e.name in names else e for e in entries]


def _interval_entries(loaded: list[LedgerEntry], recorded: RecordedInterval | None, *,
                      append: bool) -> list[LedgerEntry]:
    """What the ledger records for an interval after a load: the load's objects, plus, for an append to a
    recorded interval, the recorded objects it did not renew (a skipped file uploaded again replaces its
    skipped row)."""
    if not append or recorded is None:
        return list(loaded)
    renewed = {e.name for e in loaded}
    return [*loaded, *(LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=o.job_id or "")
                       for o in recorded.objects if o.name not in renewed)]


def _record_pending_loads(spec: ImportSpec, *, start: datetime, pending: dict[str, list[LedgerEntry]],
                          recorded: RecordedInterval | None, bq: bigquery.Client, ledger: Ledger, reporter: Reporter,
                          budget: RetryBudget) -> IntervalStatus | None:
    """Record the pending load whose copy wrote the raw table after the ledger's last record, if any.

    A pending load's copy job id is derived from the ledger's state when it was planned, so only a
    load planned from the current record can be the raw table's latest write; its copy must have
    read that attempt's own staging table. Such a load is recorded exactly (its objects and
    generations, as planned) and published (Incremental). Returns the status of the load recorded
    (LOADED or ADDED), or None.
    """
    for key, entries in pending.items():
        copy_base, staging = key.split("|", 1)
        append = copy_base.endswith("_append")
        # Planned from the current record? (The copy id hashes the record it was planned from.)
        replanned = plan_interval_load(
            spec, interval_start=start, previous_load=recorded.loaded_at if recorded else None, append=append,
            objects=[ObjectInfo(name=e.name, generation=e.generation, size=e.size) for e in entries],
        )
        if copy_base != replanned.copy_job_base(spec=spec):
            # Planned from an older record: recorded since (its worker died before clearing it) or
            # overtaken by a later load. It can never become the truth: forget it.
            ledger.drop_pending(interval_start=start, key=key)
            continue
        job = find_succeeded(bq, copy_base, budget=budget)
        if job is None or copy_source(job) != staging:
            continue  # its copy never ran, or another attempt's did (that one has its own pending load)
        everything = _interval_entries(entries, recorded, append=append)
        raw_table_id = spec.raw_table_id(start)
        rows, schema = raw_table_contents(bq, raw_table_id, budget=budget)
        reporter.info(f"Interval {spec.interval.table_suffix(start)}: a load ({job.job_id}, {len(entries)} files) "
                      "reached the raw table without its ledger write; recording it now")
        if spec.mode is SourceMode.Incremental:
            publish_incremental(bq, spec, raw_table_id=raw_table_id, interval_start=start,
                                raw_schema=schema, budget=budget)
        digest_objects = [ObjectInfo(name=e.name, generation=e.generation, size=e.size) for e in everything]
        ledger.record_interval(interval_start=start, entries=everything, interval_rows=rows,
                               raw_table=raw_table_id, loaded_at=datetime.now(UTC),
                               digest=generations_digest(spec, start, digest_objects))
        ledger.drop_pending(interval_start=start, key=key)
        return IntervalStatus.ADDED if append else IntervalStatus.LOADED
    return None


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
        checkpoint("import.published")
    reporter.warning(f"{spec.clean_table_id}: concurrent runs kept recording newer intervals; the next run re-checks")


def run_retention(
    *, spec: ImportSpec, gcs: storage.Client, bq: bigquery.Client, reporter: Reporter, as_of: datetime,
    dry_run: bool, budget: RetryBudget | None = None,
) -> RetentionSummary:
    """Delete (or with ``dry_run`` only report) loaded objects of intervals past retention.

    Order: plan (ledger, then listing) → seal the intervals it deletes from → delete in
    batches → stamp ``deleted_at``. A crash at any point leaves the interval sealed, so no
    import can rebuild it from what is left; the next retention finishes the deletes.
    """
    budget = budget or RetryBudget()
    seconds: dict[str, float] = {}
    ledger = Ledger(bq, spec, budget=budget)
    with _timed(seconds, "plan"):
        ensure_datasets(bq, spec, budget=budget)
        ledger.ensure()
        _repair_expiry(spec, bq=bq, ledger=ledger, reporter=reporter, budget=budget)
        plan = plan_from_services(spec=spec, gcs=gcs, ledger=ledger, as_of=as_of, budget=budget)
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
    checkpoint("retention.planned")
    with _timed(seconds, "retention"):
        ledger.seal(plan.intervals, sealed_at=datetime.now(UTC))
        checkpoint("retention.sealed")
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
        if outcome.deleted:  # soft delete / versioning: are the deleted bytes really freed?
            outcome.bucket = read_bucket_retention(spec=spec, gcs=gcs, budget=budget)
            if outcome.freed_note:
                reporter.info(f"{outcome.bytes_deleted} bytes deleted, freed: {outcome.freed_note}")
    return RetentionSummary(spec=spec, as_of=as_of, outcome=outcome, seconds=seconds)
