"""One interval of an import: decide what it needs (:func:`worker.planning.decide_interval`) and do that.

:class:`IntervalImport` holds what every interval of a run shares (the spec, the BigQuery client, the
ledger, the retry budget, the reporter, the attempt's token and the run's summary) and has one method per
decided :class:`~worker.planning.IntervalAction`, plus :meth:`IntervalImport.recover_pending`, which records
a load that reached the raw table without its ledger write. :mod:`worker.run` sequences the intervals.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_jobs import find_succeeded
from worker.checkpoints import checkpoint
from worker.core.contract import IntervalStatus
from worker.core.errors import ServiceUnreachable, TransientError, WorkerError, explain_bigquery_error
from worker.core.records import SKIPPED_JOB_ID, LedgerEntry, ObjectInfo, PendingKey, RecordedInterval
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec, OnBadFile, SourceMode
from worker.ledger import Ledger
from worker.loading import copy_source, load_interval
from worker.planning import (
    IntervalAction,
    IntervalDecision,
    IntervalLoadPlan,
    decide_interval,
    generations_digest,
    plan_interval_load,
)
from worker.publishing import publish_incremental
from worker.raw_tables import raw_table_contents, table_exists
from worker.reporting import Reporter
from worker.results import ImportSummary, IntervalResult, LoadOutcome
from worker.schema_changes import schema_change_from_previous

#: Decide-and-load rounds for one interval: when another attempt's copy won this one's, the
#: interval is decided again once that attempt's load is recorded.
_MAX_INTERVAL_ROUNDS = 3


@contextmanager
def timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``seconds[phase]`` (also when it raises)."""
    started = time.monotonic()
    try:
        yield
    finally:
        seconds[phase] = round(seconds.get(phase, 0.0) + time.monotonic() - started, 3)


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

    def run(self, *, start: datetime, objects: list[ObjectInfo], recorded: RecordedInterval | None,
            pending: dict[PendingKey, list[LedgerEntry]]) -> IntervalResult:
        """Import the interval starting at ``start`` from its listed ``objects``, given its ledger record and
        its pending loads as read before. A failure of the interval is its result (FAILED, with the error);
        only :class:`ServiceUnreachable` is raised (every later interval would wait out the same deadline)."""
        spec = self.spec
        suffix = spec.interval.table_suffix(start)
        result = IntervalResult(interval_start=start, status=IntervalStatus.NO_FILES, suffix=suffix)
        try:
            recovered: IntervalStatus | None = None
            for _ in range(_MAX_INTERVAL_ROUNDS):
                # The ledger first catches up with the raw table: a load that reached it without its ledger
                # write (a worker died in between, or a concurrent worker's copy won) is recorded now.
                found = self.recover_pending(start=start, pending=pending, recorded=recorded) if pending else None
                if found is not None:
                    recovered = found
                    recorded = self._recorded(start)
                if self._round(start=start, objects=objects, recorded=recorded, result=result):
                    if recovered is not None and result.status in (IntervalStatus.UNCHANGED, IntervalStatus.RETAINED):
                        result.status = recovered  # this run recorded the interval's load
                    return result
                # Another attempt's copy won ours: decide again once its load is recorded.
                pending = self.ledger.pending_loads.read(start=start, end=spec.interval.next_start(start)).get(start, {})
                recorded = self._recorded(start)
            raise WorkerError(f"interval {suffix} kept changing while it was imported (concurrent runs): re-run.")
        except ServiceUnreachable:
            raise
        except (WorkerError, gexc.GoogleAPIError, requests.exceptions.RequestException) as exc:
            error = exc if isinstance(exc, WorkerError) else explain_bigquery_error(
                exc, table=spec.raw_table_id(start), action=f"importing interval {suffix}")
            result.status, result.error, result.transient = IntervalStatus.FAILED, str(error), isinstance(error, TransientError)
            return result

    def _recorded(self, start: datetime) -> RecordedInterval | None:
        return self.ledger.recorded_intervals(start=start, end=self.spec.interval.next_start(start)).get(start)

    def _round(self, *, start: datetime, objects: list[ObjectInfo], recorded: RecordedInterval | None,
               result: IntervalResult) -> bool:
        """One decision and what it takes; fills ``result``. False when another attempt's copy won this one's
        (the caller records that load and decides again)."""
        decision = decide_interval(self.spec, interval_start=start, listed=objects, recorded=recorded)
        result.digest, result.previously_loaded = decision.digest, recorded is not None
        if recorded is not None:
            result.rows, result.raw_table = recorded.interval_rows, self.spec.raw_table_id(start)
            # still unloaded from an earlier run: the check keeps saying so until a new generation loads
            result.skipped_files = tuple(sorted(o.name for o in recorded.objects if o.skipped and not o.deleted))
        action = decision.action
        if action is IntervalAction.NO_FILES:
            return True  # the result as it starts: NO_FILES
        if action is IntervalAction.SKIP:
            self.skip(objects=objects, result=result)
        elif action is IntervalAction.KEEP:
            assert recorded is not None  # nosec B101 # type narrowing: decide_interval returns KEEP only for a recorded interval
            self.keep(decision=decision, recorded=recorded, result=result)
        elif action is IntervalAction.REFUSE:
            self.refuse(decision=decision, result=result)
        else:
            return self.load(start=start, decision=decision, recorded=recorded, result=result)
        return True

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

    def load(self, *, start: datetime, decision: IntervalDecision, recorded: RecordedInterval | None,
             result: IntervalResult) -> bool:
        """LOAD (LOADED) or ADD to a sealed interval (ADDED): load the decided objects into the raw table, publish
        it (Incremental), record it. False when another attempt's copy won this one's (nothing recorded).

        An ADD whose raw table is gone is refused (FAILED) before anything is written: publishing a raw table
        of the new rows only would replace the interval's clean rows with those.
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
            return True
        plan = plan_interval_load(spec, interval_start=start, objects=decision.to_load, digest=decision.digest,
                                  previous_load=recorded.loaded_at if recorded else None, append=append,
                                  attempt_token=self.attempt_token)
        key = PendingKey(copy_job_base=plan.copy_job_base(spec=spec), staging_table_id=plan.staging_table_id,
                         append=append)
        result.files, result.bytes, result.raw_table = len(plan.objects), plan.total_bytes, plan.raw_table_id
        with timed(self.summary.seconds, "load"):
            loaded = self._load_raw(start=start, plan=plan, key=key, result=result)
            if loaded is None:
                return False
            outcome, skipped = loaded
        with timed(self.summary.seconds, "publish"):
            job_ids = self._publish_and_record(start=start, plan=plan, key=key, outcome=outcome, skipped=skipped,
                                               recorded=recorded, result=result)
        result.status = IntervalStatus.ADDED if append else IntervalStatus.LOADED
        result.rows, result.job_ids, result.reattached_jobs = outcome.rows, tuple(job_ids), outcome.reattached
        return True

    def _load_raw(self, *, start: datetime, plan: IntervalLoadPlan, key: PendingKey,
                  result: IntervalResult) -> tuple[LoadOutcome, set[str]] | None:
        """Run the plan's load jobs and copy (its pending load written before the copy); the outcome and the
        names of the files it skipped, or None when another attempt's copy wrote the raw table (this attempt's
        pending load is dropped: that attempt's says what the table holds)."""
        spec, reporter, suffix = self.spec, self.reporter, result.suffix
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
            self.ledger.pending_loads.write(interval_start=start, key=key, entries=written, created_at=datetime.now(UTC))

        outcome = load_interval(self.bq, spec, plan, budget=self.budget, on_job_done=progress, before_copy=before_copy)
        if outcome.copied_from is not None and outcome.copied_from != plan.staging_table_id:
            # Another attempt's copy (same copy id) wrote the raw table: its pending load says what it holds.
            reporter.info(f"Interval {suffix}: another attempt's copy ({outcome.job_ids[-1]}) wrote "
                          f"{plan.raw_table_id}; recording its load instead")
            self.ledger.pending_loads.drop(interval_start=start, key=key)
            return None
        skipped = set(outcome.skipped)
        if not written and spec.on_bad_file is OnBadFile.skip:
            # this attempt reattached to its own finished copy: the pending load it wrote says what was skipped
            found = self.ledger.pending_loads.read(start=start, end=spec.interval.next_start(start)).get(start, {}).get(key)
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
            self.bq, spec, ledger=self.ledger, start=start, schema=outcome.schema, budget=self.budget)
        return outcome, skipped

    def _publish_and_record(self, *, start: datetime, plan: IntervalLoadPlan, key: PendingKey, outcome: LoadOutcome,
                            skipped: set[str], recorded: RecordedInterval | None, result: IntervalResult) -> list[str]:
        """Publish the loaded raw table (Incremental), record the interval in the ledger, then drop the pending
        load. Returns the load's job ids and the publish job's."""
        spec, suffix = self.spec, result.suffix
        job_ids = list(outcome.job_ids)
        if spec.mode is SourceMode.Incremental:
            published = publish_incremental(self.bq, spec, raw_table_id=plan.raw_table_id, interval_start=start,
                                            raw_schema=outcome.schema, budget=self.budget)
            job_ids.append(published.job_id)
            if published.changes:
                result.column_changes = (*result.column_changes, *published.changes)
                self.reporter.warning(f"Interval {suffix}: {spec.clean_table_id} columns changed: "
                                      + ", ".join(f"{c.column} {c.change}" for c in published.changes))
            checkpoint("import.published")
        by_name = plan.job_ids_by_name(outcome.job_ids)
        loaded = _with_skips([LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id=by_name[o.name])
                              for o in plan.objects], tuple(skipped))
        entries = _interval_entries(loaded, recorded, append=plan.append)
        self.ledger.record_interval(interval_start=start, entries=entries, interval_rows=outcome.rows,
                                    raw_table=plan.raw_table_id, loaded_at=datetime.now(UTC), digest=plan.digest)
        checkpoint("import.recorded")
        self.ledger.pending_loads.drop(interval_start=start, key=key)
        return job_ids

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
                objects=[ObjectInfo(name=e.name, generation=e.generation, size=e.size) for e in entries],
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
            raw_table_id = spec.raw_table_id(start)
            rows, schema = raw_table_contents(bq, raw_table_id, budget=budget)
            self.reporter.info(f"Interval {spec.interval.table_suffix(start)}: a load ({job.job_id}, {len(entries)} "
                               "files) reached the raw table without its ledger write; recording it now")
            if spec.mode is SourceMode.Incremental:
                publish_incremental(bq, spec, raw_table_id=raw_table_id, interval_start=start,
                                    raw_schema=schema, budget=budget)
            digest_objects = [ObjectInfo(name=e.name, generation=e.generation, size=e.size) for e in everything]
            self.ledger.record_interval(interval_start=start, entries=everything, interval_rows=rows,
                                        raw_table=raw_table_id, loaded_at=datetime.now(UTC),
                                        digest=generations_digest(spec, start, digest_objects))
            self.ledger.pending_loads.drop(interval_start=start, key=key)
            return IntervalStatus.ADDED if key.append else IntervalStatus.LOADED
        return None


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
