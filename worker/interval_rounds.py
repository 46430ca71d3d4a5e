"""The intervals of a run side by side, in phase-synchronous rounds, at most ``max_concurrent_intervals`` at once.

A round: record the pending loads that reached a raw table without their ledger write (per interval, as
:meth:`~worker.interval_import.IntervalImport.recover_pending` always did); decide every interval (pure) and do
the non-load actions (skip, keep, refuse, no files); run the loads' jobs in a pool of ``max_concurrent_intervals``
threads, in waves of that many: a wave's pending loads are written by ONE
:meth:`~worker.ledger.PendingLoads.write_many` before any of its copies (a :class:`~worker.group_commit.GroupCommit`),
then its copies run while the next wave loads; once every load of the round is copied, ONE Incremental
:func:`~worker.publishing.publish_incremental_many`, ONE :meth:`~worker.ledger.Ledger.record_intervals` and ONE
:meth:`~worker.ledger.PendingLoads.drop_many` for the whole round. So DML statements grow with waves and rounds,
not with intervals (20 fresh intervals at the default 8: 3 pending writes + 3). An interval whose copy lost to
another attempt's (same copy id) is decided again in the next round (at most :data:`MAX_INTERVAL_ROUNDS`).
With ``max_concurrent_intervals`` 1 each interval is its own group of rounds: exactly one interval after another.

A failing interval never fails the others: its result is FAILED with the error; a batch call that raises is
repeated one interval at a time, so only the intervals whose own call fails are FAILED.
:class:`ServiceUnreachable` stops the run: loads not yet started are not started, the in-flight ones finish,
the results before the first interval it stopped are yielded, then it is raised.

A wave's threads all start before any of them can wait on its group commit: the pool runs submissions in
order, and the wave before it never waits on a later one, so its threads end and free their places.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import requests
from google.api_core import exceptions as gexc

from worker.checkpoints import checkpoint
from worker.core.contract import IntervalStatus
from worker.core.errors import ServiceUnreachable, TransientError, WorkerError, explain_bigquery_error
from worker.core.records import LedgerEntry, ObjectInfo, PendingKey, PendingWrite, RecordedInterval
from worker.core.spec import SourceMode
from worker.group_commit import GroupCommit, Member
from worker.interval_import import IntervalImport, IntervalLoad, timed
from worker.publishing import IntervalToPublish, publish_incremental_many
from worker.results import IntervalResult

#: Decide-and-load rounds for one interval: when another attempt's copy won this one's, the
#: interval is decided again once that attempt's load is recorded.
MAX_INTERVAL_ROUNDS = 3

#: What an interval's failure may raise (anything else is a bug, or a test's simulated crash: it propagates).
INTERVAL_ERRORS = (WorkerError, gexc.GoogleAPIError, requests.exceptions.RequestException)

T = TypeVar("T")


def import_in_rounds(importer: IntervalImport, *, starts: Sequence[datetime],
                     objects: dict[datetime, list[ObjectInfo]], records: dict[datetime, RecordedInterval],
                     pending: dict[datetime, dict[PendingKey, list[LedgerEntry]]],
                     concurrency: int, markers: dict[datetime, list[ObjectInfo]] | None = None,
                     ) -> Iterator[IntervalResult]:
    """Import ``starts``, at most ``concurrency`` at once (see the module docstring); yield each interval's
    result in interval order once all are done. ``markers``: each interval's listed completeness markers
    (the gate reads them; a load records them).

    Raises:
        ServiceUnreachable: a service stayed unreachable; the results before the first interval it stopped
            were yielded (the in-flight intervals finished: each is durable, or FAILED).
    """
    # With 1, each interval is its own group: exactly one interval after another (recorded before the next).
    groups = [list(starts)] if concurrency > 1 else [[start] for start in starts]
    for group in groups:
        intervals = [_Interval(start=s, objects=objects.get(s, []), recorded=records.get(s),
                               pending=pending.get(s, {}), markers=(markers or {}).get(s, []),
                               result=IntervalResult(interval_start=s, status=IntervalStatus.NO_FILES,
                                                     suffix=importer.spec.interval.table_suffix(s)))
                     for s in group]
        _Rounds(importer=importer, intervals=intervals, concurrency=concurrency).run()
        for interval in intervals:
            if interval.unreachable is not None:
                raise interval.unreachable
            yield interval.result


@dataclass
class _Interval:
    """One interval of a group: what the run knows of it, its result, and whether it is done."""

    start: datetime
    objects: list[ObjectInfo]
    recorded: RecordedInterval | None
    pending: dict[PendingKey, list[LedgerEntry]]
    result: IntervalResult
    #: Its listed completeness markers (``complete_when.marker_match``): never data.
    markers: list[ObjectInfo] = field(default_factory=list)
    #: The status of a load this run recorded by recovering it (reported instead of unchanged or retained).
    recovered: IntervalStatus | None = None
    done: bool = False
    #: The run stops here (once the group's in-flight intervals finished).
    unreachable: ServiceUnreachable | None = None


@dataclass
class _Rounds:
    """The rounds of a run's intervals, at most ``concurrency`` loading at once."""

    importer: IntervalImport
    intervals: list[_Interval]
    concurrency: int = 1

    def run(self) -> None:
        """Round after round until every interval is done (or the run must stop); an interval still deciding
        after :data:`MAX_INTERVAL_ROUNDS` fails (concurrent runs kept changing it)."""
        for _ in range(MAX_INTERVAL_ROUNDS):
            active = self._active()
            if not active or self._stopping():
                break
            self._recover(active)
            loads = self._decide(self._active())
            if loads:
                self._load(loads)
                self._publish_and_record([load for load in loads if load.outcome is not None
                                          and not self._of(load).done])
            lost = self._active()
            if lost and not self._stopping():  # another attempt's copy won: decide again once it is recorded
                self._reread(lost, pending=True)
        stop = self._stopping()
        for interval in self._active():
            if stop is not None:
                interval.unreachable = stop  # not finished: the run stops at it
            else:
                suffix = interval.result.suffix
                self._fail(interval, WorkerError(f"interval {suffix} kept changing while it was imported "
                                                 "(concurrent runs): re-run."))

    def _active(self) -> list[_Interval]:
        return [i for i in self.intervals if not i.done]

    def _stopping(self) -> ServiceUnreachable | None:
        return next((i.unreachable for i in self.intervals if i.unreachable is not None), None)

    def _of(self, load: IntervalLoad) -> _Interval:
        return next(i for i in self.intervals if i.start == load.start)

    # -- the phases of a round -------------------------------------------------------------------------------

    def _recover(self, active: list[_Interval]) -> None:
        """Record each pending load whose copy reached the raw table; re-read the records of the intervals that
        had one (one ledger read), so they are decided from the ledger as it is now."""
        recovered = []
        for interval in (i for i in active if i.pending):
            found = self._attempt(interval, lambda i=interval: self.importer.recover_pending(
                start=i.start, pending=i.pending, recorded=i.recorded))
            if found is not None:
                interval.recovered = found
                recovered.append(interval)
        if recovered:
            self._reread(recovered, pending=False)

    def _reread(self, intervals: list[_Interval], *, pending: bool) -> None:
        """Read the ledger records (and with ``pending`` the pending loads) of ``intervals``, one read each."""
        ledger, spec = self.importer.ledger, self.importer.spec
        start, end = intervals[0].start, spec.interval.next_start(intervals[-1].start)
        read = self._attempt_all(intervals, lambda: (ledger.recorded_intervals(start=start, end=end),
                                                     ledger.pending_loads.read(start=start, end=end) if pending else {}))
        if read is not None:
            for interval in intervals:
                interval.recorded = read[0].get(interval.start)
                if pending:
                    interval.pending = read[1].get(interval.start, {})

    def _decide(self, active: list[_Interval]) -> list[IntervalLoad]:
        """Decide each interval and do its non-load action; the planned loads."""
        loads = []
        for interval in active:
            decision = self._attempt(interval, lambda i=interval: self.importer.decide(
                start=i.start, objects=i.objects, recorded=i.recorded, result=i.result, markers=i.markers))
            if interval.done:
                continue
            if decision is None:
                self._settle(interval)
                continue
            load = self._attempt(interval, lambda i=interval, d=decision: self.importer.plan_load(
                start=i.start, decision=d, recorded=i.recorded, result=i.result, markers=i.markers))
            if load is None:
                interval.done = True  # refused (FAILED) or failed
            else:
                loads.append(load)
        return loads

    def _load(self, loads: list[IntervalLoad]) -> None:
        """Each load's jobs and copy, side by side in a pool of ``concurrency`` threads (a single load runs in this
        thread), in waves of ``concurrency``: a wave's pending loads are written by one group commit before any
        of its copies."""
        with timed(self.importer.summary.seconds, "load"):
            if len(loads) == 1:
                group: GroupCommit[PendingWrite] = GroupCommit(members=1, commit=self._write_pending)
                self._load_one(loads[0], group.member())
                return
            workers = max(1, min(self.concurrency, len(loads)))
            futures = []
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interval") as pool:
                for first in range(0, len(loads), workers):
                    wave = loads[first:first + workers]
                    group = GroupCommit(members=len(wave), commit=self._write_pending)
                    futures += [pool.submit(self._load_one, load, group.member()) for load in wave]
            for future in futures:
                future.result()  # re-raises what no interval handler caught (a bug, a test's simulated crash)

    def _load_one(self, load: IntervalLoad, member: Member[PendingWrite]) -> None:
        """One interval's load (in its thread): it leaves the group commit when it ends without joining it; once
        the run must stop (a service unreachable), a load not yet started is not started."""
        with member:
            stop = self._stopping()
            if stop is not None:
                self._of(load).unreachable = stop
                return
            self._attempt(self._of(load), lambda: self.importer.load_raw(load, write_pending=member.join))

    def _write_pending(self, writes: Sequence[PendingWrite]) -> list[BaseException | None]:
        """The group commit: the round's pending loads in one call (each interval's error, in order)."""
        pending, created_at = self.importer.ledger.pending_loads, datetime.now(UTC)
        return _batched(writes, lambda items: pending.write_many(items, created_at=created_at),
                        lambda w: pending.write(interval_start=w.interval_start, key=w.key, entries=w.entries,
                                                created_at=created_at))

    def _publish_and_record(self, loads: list[IntervalLoad]) -> None:
        """Publish the round's loaded raw tables (Incremental), record them, drop their pending loads: one call
        each for the round (a failing call is repeated per interval); then each interval is done."""
        if not loads:
            return
        importer = self.importer
        ledger = importer.ledger
        # the schema_unchanged comparison, once the round's loads are all copied (one ledger read for the round)
        self._attempt_all([self._of(load) for load in loads], lambda: importer.compare_schemas(loads))
        loads = [load for load in loads if not self._of(load).done]  # a failed comparison fails its intervals
        if not loads:
            return
        with timed(importer.summary.seconds, "publish"):
            if importer.spec.mode is SourceMode.Incremental:
                loads = self._publish(loads)
            loaded_at = datetime.now(UTC)
            records = [load.record(loaded_at=loaded_at) for load in loads]
            loads = self._keep_succeeded(loads, _batched(records, ledger.record_intervals, ledger.record),
                                         passed="import.recorded")
            keys = [(load.start, load.key) for load in loads]
            loads = self._keep_succeeded(loads, _batched(keys, ledger.pending_loads.drop_many, _drop_one(ledger)))
        for load in loads:
            load.finish()
            self._settle(self._of(load))

    def _publish(self, loads: list[IntervalLoad]) -> list[IntervalLoad]:
        """The round's Incremental publish: the loads whose publish succeeded (each passing ``import.published``)."""
        importer = self.importer
        items = [IntervalToPublish(interval_start=load.start, raw_table_id=load.plan.raw_table_id,
                                   raw_schema=tuple(load.outcome.schema)) for load in loads if load.outcome]
        # each interval's outcome or error: publish_incremental_many isolates a failing interval itself
        outcomes = publish_incremental_many(importer.bq, importer.spec, items, budget=importer.budget)
        published_at = datetime.now(UTC)  # the round's MERGE committed: its rows are queryable from now
        published = []
        for load, outcome in zip(loads, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._attempt(self._of(load), _raiser(outcome))
                continue
            importer.published(load, published=outcome, at=published_at)
            checkpoint("import.published")
            published.append(load)
        return published

    def _keep_succeeded(self, loads: list[IntervalLoad], errors: Sequence[BaseException | None], *,
                        passed: str | None = None) -> list[IntervalLoad]:
        """The loads whose step succeeded (each passing checkpoint ``passed``); the others' intervals fail (or
        stop the run)."""
        kept = []
        for load, error in zip(loads, errors, strict=True):
            if error is not None:
                self._attempt(self._of(load), _raiser(error))
                continue
            if passed:
                checkpoint(passed)
            kept.append(load)
        return kept

    # -- outcomes of one interval --------------------------------------------------------------------------

    def _settle(self, interval: _Interval) -> None:
        """The interval is done; when this run recorded its load by recovering it, it reports that load."""
        if interval.recovered is not None and interval.result.status in (IntervalStatus.UNCHANGED,
                                                                         IntervalStatus.RETAINED):
            interval.result.status = interval.recovered  # this run recorded the interval's load
        interval.done = True

    def _attempt(self, interval: _Interval, action: Callable[[], T]) -> T | None:
        """``action()``, or None when it raised an interval's error: the interval is then FAILED (or, for
        :class:`ServiceUnreachable`, the run stops at it)."""
        try:
            return action()
        except ServiceUnreachable as exc:
            interval.unreachable, interval.done = exc, True
        except INTERVAL_ERRORS as exc:
            self._fail(interval, exc)
        return None

    def _attempt_all(self, intervals: list[_Interval], action: Callable[[], T]) -> T | None:
        """``action()`` for several intervals at once: its error is each one's."""
        try:
            return action()
        except INTERVAL_ERRORS as exc:
            for interval in intervals:
                self._attempt(interval, _raiser(exc))
        return None

    def _fail(self, interval: _Interval, exc: BaseException) -> None:
        spec, result = self.importer.spec, interval.result
        error = exc if isinstance(exc, WorkerError) else explain_bigquery_error(
            exc, table=spec.raw_table_id(interval.start), action=f"importing interval {result.suffix}")
        result.status, result.error, result.transient = IntervalStatus.FAILED, str(error), isinstance(error, TransientError)
        interval.done = True


def _batched(items: Sequence[T], batch: Callable[[list[T]], None],
             single: Callable[[T], None]) -> list[BaseException | None]:
    """``batch(items)`` in one call; when it raises an interval's error, ``single(item)`` for each (so one
    failing item never fails the others). Each item's error (or None), in order. :class:`ServiceUnreachable`
    is not repeated per item: it is every item's error (the run stops)."""
    if not items:
        return []
    try:
        batch(list(items))
        return [None] * len(items)
    except ServiceUnreachable as exc:
        return [exc] * len(items)
    except INTERVAL_ERRORS:
        pass
    errors: list[BaseException | None] = []
    for item in items:
        try:
            single(item)
            errors.append(None)
        except INTERVAL_ERRORS as exc:
            errors.append(exc)
    return errors


def _drop_one(ledger) -> Callable[[tuple[datetime, PendingKey]], None]:
    return lambda k: ledger.pending_loads.drop(interval_start=k[0], key=k[1])


def _raiser(exc: BaseException) -> Callable[[], None]:
    def raise_it() -> None:
        raise exc
    return raise_it
