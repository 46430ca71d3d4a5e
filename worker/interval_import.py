"""One interval of an import: decide what it needs (:func:`worker.planning.decide_interval`) and do that.

:class:`IntervalImport` holds what every interval of a run shares (the spec, the BigQuery client, the
ledger, the retry budget, the reporter, the attempt's token and the run's summary) and has one method per
decided :class:`~worker.planning.IntervalAction` (a load is planned, then loaded into the raw table as an
:class:`IntervalLoad`), plus :meth:`IntervalImport.recover_pending`, which records a load that reached the
raw table without its ledger write. :mod:`worker.interval_rounds` runs the intervals of a run side by side
(publishing and recording each round's loads together); :mod:`worker.run` sequences the run.

Every method here may run in several threads at once, one interval each: the BigQuery client is shared
(google-cloud-bigquery documents its client as safe to share across threads:
https://github.com/googleapis/python-bigquery/blob/main/docs/index.rst), the reporter must be thread-safe
(:class:`worker.reporting.ThreadSafeReporter`), and each interval writes only its own result.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.cloud import bigquery

from worker.bigquery_jobs import find_succeeded
from worker.core.contract import IntervalStatus
from worker.core.errors import WorkerError
from worker.core.records import (
    MARKER_JOB_ID,
    SKIPPED_JOB_ID,
    IntervalRecord,
    LedgerEntry,
    LoadedObject,
    ObjectInfo,
    PendingKey,
    PendingWrite,
    RecordedInterval,
)
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec, OnBadFile, SourceMode
from worker.ledger import Ledger
from worker.loading import copy_source, load_interval
from worker.planning import (
    IntervalAction,
    IntervalDecision,
    IntervalLoadPlan,
    decide_interval,
    gate_interval,
    generations_digest,
    markers_changed,
    plan_interval_load,
    recorded_digest,
)
from worker.publishing import IncrementalPublish, publish_incremental
from worker.raw_tables import raw_table_contents, table_exists
from worker.reporting import Reporter
from worker.results import ImportSummary, IntervalResult, LoadOutcome
from worker.schema_changes import schema_change_from_previous

#: Serialises :func:`timed`'s additions (the intervals of a run time their phases from several threads).
_TIMED_LOCK = threading.Lock()


@contextmanager
def timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``seconds[phase]`` (also when it raises); thread-safe."""
    started = time.monotonic()
    try:
        yield
    finally:
        with _TIMED_LOCK:
            seconds[phase] = round(seconds.get(phase, 0.0) + time.monotonic() - started, 3)


@dataclass
class IntervalLoad:
    """One LOAD or ADD interval of a round, through its phases: planned (:meth:`IntervalImport.plan_load`),
    loaded (:meth:`IntervalImport.load_raw`: ``outcome``, or ``lost``), published, recorded."""

    start: datetime
    plan: IntervalLoadPlan
    key: PendingKey
    recorded: RecordedInterval | None
    result: IntervalResult
    #: The load into the raw table (None until loaded, or when it failed or was lost).
    outcome: LoadOutcome | None = None
    #: Names of the files the load skipped (``on_bad_file: skip``).
    skipped: frozenset[str] = frozenset()
    #: Another attempt's copy (same copy id) wrote the raw table: the interval is decided again next round.
    lost: bool = False
    #: The publish job's id (Incremental), after the load's.
    job_ids: list[str] = field(default_factory=list)
    #: The interval's listed completeness markers: recorded with the load (job id :data:`MARKER_JOB_ID`), never loaded.
    markers: tuple[ObjectInfo, ...] = ()

    def record(self, *, loaded_at: datetime) -> IntervalRecord:
        """What the ledger records for the loaded interval: each object with the job that loaded it (skipped
        ones marked), plus, for an append, the recorded objects it did not renew."""
        assert self.outcome is not None  # nosec B101 # only a loaded interval is recorded
        plan, outcome = self.plan, self.outcome
        by_name = plan.job_ids_by_name(outcome.job_ids)
        loaded = _with_skips([LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=by_name[o.name])
                              for o in plan.objects], tuple(self.skipped))
        entries = [*_interval_entries(loaded, self.recorded, append=plan.append), *marker_entries(self.markers)]
        return IntervalRecord(interval_start=self.start, entries=tuple(entries),
                              interval_rows=outcome.rows, raw_table=plan.raw_table_id, loaded_at=loaded_at,
                              digest=plan.digest)

    def finish(self) -> None:
        """The interval is recorded and its pending load dropped: LOADED (ADDED for an append), with its rows
        and jobs."""
        assert self.outcome is not None  # nosec B101 # only a loaded interval finishes
        result = self.result
        result.status = IntervalStatus.ADDED if self.plan.append else IntervalStatus.LOADED
        result.rows, result.reattached_jobs = self.outcome.rows, self.outcome.reattached
        result.job_ids = (*self.outcome.job_ids, *self.job_ids)
        # the start of arrival_to_queryable_seconds: the newest object whose rows this load holds (skipped ones hold none)
        result.newest_updated = max((o.updated for o in self.plan.objects if o.updated is not None
                                     and o.name not in self.skipped), default=None)


@dataclass
class IntervalImport:
    """What the intervals of one import run share; :meth:`run` imports one interval."""

    spec: ImportSpec
    bq: bigquery.Client
    ledger: Ledger
    budget: RetryBudget
    reporter: Reporter
    #: This run's token in its private staging tables' names (:func:`worker.planning.plan_interval_load`).
    attempt_token: str
    summary: ImportSummary
    #: Load intervals the completeness gate finds incomplete (warned about) instead of reporting them INCOMPLETE.
    load_incomplete: bool = False
    #: The gate's clock (``quiet_for``).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def decide(self, *, start: datetime, objects: list[ObjectInfo], recorded: RecordedInterval | None,
               result: IntervalResult, markers: list[ObjectInfo] | None = None) -> IntervalDecision | None:
        """Decide the interval (:func:`worker.planning.decide_interval`) and fill ``result``; do what a non-load
        decision takes (skip, keep, refuse, no files, incomplete: :meth:`gate`). Returns the decision when it is
        a load (LOAD or ADD) of a complete interval (or ``load_incomplete``), which :meth:`plan_load` and
        :mod:`worker.interval_rounds` carry out; None when the interval is done."""
        markers = markers or []
        decision = decide_interval(self.spec, interval_start=start, listed=objects, recorded=recorded)
        result.digest, result.previously_loaded = decision.digest, recorded is not None
        if recorded is not None:
            result.rows, result.raw_table = recorded.interval_rows, self.spec.raw_table_id(start)
            # still unloaded from an earlier run: the check keeps saying so until a new generation loads
            result.skipped_files = tuple(sorted(o.name for o in recorded.objects if o.skipped and not o.deleted))
        action = decision.action
        if action is IntervalAction.NO_FILES:
            return None  # the result as it starts: NO_FILES
        if action is IntervalAction.SKIP:
            self.skip(objects=objects, result=result)
            if recorded is not None and markers_changed(markers, recorded):
                self.record_markers(start=start, recorded=recorded, markers=markers)
        elif action is IntervalAction.KEEP:
            assert recorded is not None  # nosec B101 # type narrowing: decide_interval returns KEEP only for a recorded interval
            self.keep(decision=decision, recorded=recorded, result=result)
        elif action is IntervalAction.REFUSE:
            self.refuse(decision=decision, result=result)
        elif self.gate(start=start, decision=decision, objects=objects, markers=markers, recorded=recorded,
                       result=result):
            return decision
        return None

    def gate(self, *, start: datetime, decision: IntervalDecision, objects: list[ObjectInfo],
             markers: list[ObjectInfo], recorded: RecordedInterval | None, result: IntervalResult) -> bool:
        """Whether the LOAD or ADD ``decision`` goes ahead: the interval is complete (``complete_when``:
        :func:`worker.planning.gate_interval`), or the run says ``load_incomplete`` (a warning gives the
        reason). Otherwise the interval is INCOMPLETE, its error the reason in one line (not transient)."""
        verdict = gate_interval(self.spec, decision=decision, listed=objects, markers=markers, recorded=recorded,
                                now=self.clock())
        if verdict.complete:
            return True
        if self.load_incomplete:
            self.reporter.warning(f"Interval {result.suffix} is incomplete ({verdict.reason}): loaded anyway, "
                                  "as the run says load_incomplete")
            return True
        result.status = IntervalStatus.INCOMPLETE
        result.error = (f"incomplete ({verdict.reason}): not loaded; it loads once complete_when holds, "
                        "or run it with load_incomplete")
        result.files, result.bytes = len(objects), sum(o.size for o in objects)
        return False

    def record_markers(self, *, start: datetime, recorded: RecordedInterval, markers: list[ObjectInfo]) -> None:
        """Record the listed ``markers`` of an unchanged, open interval (loaded before they arrived, or recorded by
        a pending-load recovery), keeping every other figure as recorded: retention then deletes them after the
        interval's last loaded file. One ledger statement; nothing is loaded."""
        entries = [*(LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=o.job_id or "")
                     for o in recorded.objects), *marker_entries(markers)]
        self.ledger.record_interval(interval_start=start, entries=entries, interval_rows=recorded.interval_rows,
                                    raw_table=self.spec.raw_table_id(start),
                                    loaded_at=recorded.loaded_at or self.clock(),
                                    digest=recorded_digest(self.spec, recorded))
        self.reporter.info(f"Interval {self.spec.interval.table_suffix(start)}: recorded {len(markers)} completeness "
                           "marker(s) in the ledger")

    def skip(self, *, objects: list[ObjectInfo], result: IntervalResult) -> None:
        """SKIP: the interval already holds these object generations, loaded with these settings (UNCHANGED)."""
        result.status, result.files, result.bytes = IntervalStatus.UNCHANGED, len(objects), sum(o.size for o in objects)
        self.reporter.info(f"Interval {result.suffix} already holds these {len(objects)} object generations: load skipped")

    def keep(self, *, decision: IntervalDecision, recorded: RecordedInterval, result: IntervalResult) -> None:
        """KEEP: a sealed interval with nothing new, or one whose files are gone, stays as loaded (RETAINED);
        when its load settings changed since, a note and a warning say it is not reloaded with them."""
        suffix = result.suffix
        result.status, result.files = IntervalStatus.RETAINED, len(recorded.objects)
        result.bytes = sum(o.size for o in recorded.objects)
        why = (f"sealed by retention ({len(recorded.deleted_names)} of its {len(recorded.objects)} files deleted)"
               if recorded.sealed else "its files are gone")
        self.reporter.info(f"Interval {suffix} was loaded before and is {why}: its {recorded.interval_rows} rows stay as loaded")
        if decision.settings_changed:
            deleted = recorded.deleted_names
            shown = ", ".join(f"gs://{self.spec.bucket_name}/{n}" for n in deleted[:5]) + (" ..." if len(deleted) > 5 else "")
            result.note = (
                f"the load settings changed since interval {suffix} was loaded, but it is not reloaded with them: "
                f"retention deleted {len(deleted)} of its files ({shown}), so its {recorded.interval_rows} rows stay as "
                "loaded with the earlier settings. To apply the new settings, upload the files again under new names."
            )
            self.reporter.warning(f"Interval {suffix}: {result.note}")

    def refuse(self, *, decision: IntervalDecision, result: IntervalResult) -> None:
        """REFUSE: a sealed interval's loaded objects were re-uploaded; nothing changes (FAILED, naming them)."""
        names = ", ".join(f"gs://{self.spec.bucket_name}/{o.name} (generation {o.generation})"
                          for o in decision.conflicts[:5])
        result.status = IntervalStatus.FAILED
        result.error = (
            f"interval {result.suffix} is sealed (retention deleted or is deleting its loaded files, so BigQuery holds the "
            f"only copy of their rows) and {len(decision.conflicts)} of its loaded objects were re-uploaded since: "
            f"{names}. Nothing was changed. To load the new content, upload it under a new object name (it is then "
            "loaded in addition to the interval's rows); to keep the interval as loaded, delete the re-uploaded objects."
        )

    def plan_load(self, *, start: datetime, decision: IntervalDecision, recorded: RecordedInterval | None,
                  result: IntervalResult, markers: list[ObjectInfo] | None = None) -> IntervalLoad | None:
        """LOAD (LOADED) or ADD to a sealed interval (ADDED): plan loading the decided objects into the raw table
        (:meth:`load_raw` runs it; :mod:`worker.interval_rounds` then publishes and records it).

        An ADD whose raw table is gone is refused (FAILED, None) before anything is written: publishing a raw
        table of the new rows only would replace the interval's clean rows with those.
        """
        spec, suffix = self.spec, result.suffix
        append = decision.action is IntervalAction.ADD
        if append and not table_exists(self.bq, spec.raw_table_id(start), budget=self.budget):
            result.status = IntervalStatus.FAILED
            result.error = (
                f"interval {suffix} is sealed and has {len(decision.to_load)} new file(s) to add, but its raw table "
                f"{spec.raw_table_id(start)} is gone (expired or dropped), and BigQuery holds its earlier rows only in "
                f"{spec.clean_table_id}: nothing was loaded. Restore the raw table (e.g. from the clean table's rows of "
                "this interval), or load the new files into an interval of their own."
            )
            return None
        plan = plan_interval_load(spec, interval_start=start, objects=decision.to_load, digest=decision.digest,
                                  previous_load=recorded.loaded_at if recorded else None, append=append,
                                  attempt_token=self.attempt_token)
        key = PendingKey(copy_job_base=plan.copy_job_base(spec=spec), staging_table_id=plan.staging_table_id,
                         append=append)
        result.files, result.bytes, result.raw_table = len(plan.objects), plan.total_bytes, plan.raw_table_id
        return IntervalLoad(start=start, plan=plan, key=key, recorded=recorded, result=result,
                            markers=tuple(markers or ()))

    def load_raw(self, load: IntervalLoad, *, write_pending: Callable[[PendingWrite], None]) -> None:
        """Run the load's jobs and copy, ``write_pending`` (the pending load, durable before the copy: a group
        commit of the round) in between; sets ``load.outcome`` and ``load.skipped``, or ``load.lost`` when another
        attempt's copy wrote the raw table (this attempt's pending load is dropped: that attempt's says what the
        table holds). Safe to run for several intervals at once (each its own thread).

        Raises:
            WorkerError, GoogleAPIError: the interval failed (ServiceUnreachable: the run stops).
        """
        spec, reporter, suffix, plan = self.spec, self.reporter, load.result.suffix, load.plan
        new_entries = [LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=plan.copy_job_base(spec=spec))
                       for o in plan.objects]
        verb = "adding" if plan.append else "loading"
        reporter.info(f"Interval {suffix}: {verb} {len(plan.objects)} files ({plan.total_bytes} bytes) "
                      f"in {len(plan.batches)} load job(s) into {plan.raw_table_id}"
                      + (" (sealed interval: loaded in addition to its recorded rows)" if plan.append else ""))
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
            write_pending(PendingWrite(interval_start=load.start, key=load.key, entries=tuple(written)))

        outcome = load_interval(self.bq, spec, plan, budget=self.budget, on_job_done=progress, before_copy=before_copy)
        if outcome.copied_from is not None and outcome.copied_from != plan.staging_table_id:
            # Another attempt's copy (same copy id) wrote the raw table: its pending load says what it holds.
            reporter.info(f"Interval {suffix}: another attempt's copy ({outcome.job_ids[-1]}) wrote "
                          f"{plan.raw_table_id}; recording its load instead")
            self.ledger.pending_loads.drop(interval_start=load.start, key=load.key)
            load.lost = True
            return
        load.outcome, load.skipped = outcome, self._skipped(load, outcome=outcome, reattached_own=not written)

    def _skipped(self, load: IntervalLoad, *, outcome: LoadOutcome, reattached_own: bool) -> frozenset[str]:
        """The files the load skipped (warned about)."""
        spec, reporter, suffix, start = self.spec, self.reporter, load.result.suffix, load.start
        skipped = set(outcome.skipped)
        if reattached_own and spec.on_bad_file is OnBadFile.skip:
            # this attempt reattached to its own finished copy: the pending load it wrote says what was skipped
            found = self.ledger.pending_loads.read(start=start, end=spec.interval.next_start(start)).get(start, {}).get(load.key)
            if found is None:
                raise WorkerError(f"Interval {suffix}: a finished load of {load.plan.raw_table_id} has no pending record "
                                  "of the files it skipped; nothing was recorded or deleted: re-run.")
            skipped = {e.name for e in found if e.job_id == SKIPPED_JOB_ID}
        load.result.skipped_files = tuple(sorted(skipped))
        for warning in outcome.warnings:  # unloadable object names, Avro raw types kept
            reporter.warning(f"Interval {suffix}: {warning}")
        if skipped:
            reporter.warning(f"Interval {suffix}: skipped {len(skipped)} file(s) BigQuery could not read: "
                             + ", ".join(f"gs://{spec.bucket_name}/{n}" for n in sorted(skipped)[:5]))
        return frozenset(skipped)

    def compare_schemas(self, loads: list[IntervalLoad]) -> None:
        """Each copied load's columns against the interval loaded before it (the ``schema_unchanged`` check): the
        newest of the ledger's intervals (read once) and this round's loads before it, whose columns are known."""
        copied = sorted((load for load in loads if load.outcome is not None), key=lambda load: load.start)
        if not copied:
            return
        recorded = self.ledger.loaded_intervals()
        this_round = {load.start: tuple(load.outcome.schema) for load in copied if load.outcome is not None}
        for load in copied:
            assert load.outcome is not None  # nosec B101 # type narrowing: filtered above
            previous = max((s for s in [*recorded, *this_round] if s < load.start), default=None)
            load.result.schema_change, load.result.column_changes = schema_change_from_previous(
                self.bq, self.spec, previous=previous, schema=load.outcome.schema, budget=self.budget,
                previous_schema=this_round.get(previous) if previous is not None else None)

    def published(self, load: IntervalLoad, *, published: IncrementalPublish, at: datetime) -> None:
        """Note an Incremental publish of the load that ended ``at`` (its rows queryable from then): its job id,
        and a warning naming the clean table's column changes."""
        load.job_ids.append(published.job_id)
        load.result.queryable_at = at
        if published.changes:
            result = load.result
            result.column_changes = (*result.column_changes, *published.changes)
            self.reporter.warning(f"Interval {result.suffix}: {self.spec.clean_table_id} columns changed: "
                                  + ", ".join(f"{c.column} {c.change}" for c in published.changes))

    def recover_pending(self, *, start: datetime, pending: dict[PendingKey, list[LedgerEntry]],
                        recorded: RecordedInterval | None) -> IntervalStatus | None:
        """Record the pending load whose copy wrote the raw table after the ledger's last record, if any.

        A pending load's copy job id is derived from the ledger's state when it was planned, so only a
        load planned from the current record can be the raw table's latest write; its copy must have
        read that attempt's own staging table. Such a load is recorded exactly (its objects and
        generations, as planned) and published (Incremental). Pending loads planned from an older record
        are dropped. Returns the status of the load recorded (LOADED or ADDED), or None.
        """
        spec, bq, budget = self.spec, self.bq, self.budget
        for key, entries in pending.items():
            # Planned from the current record? (The copy id hashes the record it was planned from.)
            replanned = plan_interval_load(
                spec, interval_start=start, previous_load=recorded.loaded_at if recorded else None, append=key.append,
                objects=[e.as_listed() for e in entries],
            )
            if key.copy_job_base != replanned.copy_job_base(spec=spec):
                # Planned from an older record: recorded since (its worker died before clearing it) or
                # overtaken by a later load. It can never become the truth: forget it.
                self.ledger.pending_loads.drop(interval_start=start, key=key)
                continue
            job = find_succeeded(bq, key.copy_job_base, budget=budget)
            if job is None or copy_source(job) != key.staging_table_id:
                continue  # its copy never ran, or another attempt's did (that one has its own pending load)
            everything = _interval_entries(entries, recorded, append=key.append)
            if recorded is not None:  # a pending load knows no markers: the recorded ones stay recorded
                everything += marker_entries(o for o in recorded.markers if not o.deleted)
            raw_table_id = spec.raw_table_id(start)
            rows, schema = raw_table_contents(bq, raw_table_id, budget=budget)
            self.reporter.info(f"Interval {spec.interval.table_suffix(start)}: a load ({job.job_id}, {len(entries)} "
                               "files) reached the raw table without its ledger write; recording it now")
            if spec.mode is SourceMode.Incremental:
                publish_incremental(bq, spec, raw_table_id=raw_table_id, interval_start=start,
                                    raw_schema=schema, budget=budget)
            digest_objects = [e.as_listed() for e in everything if e.job_id != MARKER_JOB_ID]  # markers are never data
            self.ledger.record_interval(interval_start=start, entries=everything, interval_rows=rows,
                                        raw_table=raw_table_id, loaded_at=datetime.now(UTC),
                                        digest=generations_digest(spec, start, digest_objects))
            self.ledger.pending_loads.drop(interval_start=start, key=key)
            return IntervalStatus.ADDED if key.append else IntervalStatus.LOADED
        return None


def marker_entries(markers: Iterable[ObjectInfo | LoadedObject]) -> list[LedgerEntry]:
    """The ledger entries of completeness markers (job id :data:`MARKER_JOB_ID`: no rows, never data)."""
    return [LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=MARKER_JOB_ID) for o in markers]


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
