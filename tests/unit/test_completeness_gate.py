"""The completeness gate's pure parts (issue 20, part 2): the worker's gate per interval, markers in the ledger's
records, retention of markers, the listing sensor's waiting set in its cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from orchestrator.factories.new_files_cursor import (
    IntervalChange,
    NewFilesCursor,
    WaitingInterval,
    gate_candidates,
    settle_gate,
)
from tests.unit.test_spec import BASE
from worker.core.completeness import Completeness
from worker.core.records import MARKER_JOB_ID, SKIPPED_JOB_ID, LoadedObject, ObjectInfo, RecordedInterval
from worker.core.spec import ImportSpec
from worker.planning import (
    IntervalAction,
    IntervalDecision,
    decide_interval,
    gate_interval,
    markers_changed,
    plan_retention,
)

MARKER = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/_SUCCESS"
GATED = ImportSpec(**{**BASE, "complete_when": {"marker_match": MARKER, "min_files": 2}})
QUIET = ImportSpec(**{**BASE, "complete_when": {"quiet_for": "30m"}})
DAY = datetime(2024, 1, 5, tzinfo=UTC)
NOW = datetime(2024, 1, 6, 12, tzinfo=UTC)


def data(n: int, *, updated: datetime | None = None) -> list[ObjectInfo]:
    return [ObjectInfo(name=f"passport/2024-01-05/part-{i}.parquet", generation=10 + i, size=100, updated=updated or NOW)
            for i in range(n)]


def marker(generation: int = 7) -> ObjectInfo:
    return ObjectInfo(name="passport/2024-01-05/_SUCCESS", generation=generation, size=0)


def row(obj: ObjectInfo, *, job_id: str = "job", deleted: bool = False, sealed: bool = False,
        start: datetime = DAY) -> LoadedObject:
    return LoadedObject(interval_start=start, name=obj.name, generation=obj.generation, size=obj.size, deleted=deleted,
                        interval_rows=5, loaded_at=datetime(2024, 1, 6, tzinfo=UTC), digest=None, sealed=sealed,
                        job_id=job_id)


def gate(spec: ImportSpec, listed: list[ObjectInfo], markers: list[ObjectInfo],
         recorded: RecordedInterval | None = None, now: datetime = NOW) -> Completeness:
    decision = decide_interval(spec, interval_start=DAY, listed=listed, recorded=recorded)
    return gate_interval(spec, decision=decision, listed=listed, markers=markers, recorded=recorded, now=now)


def test_a_new_interval_is_gated_on_its_listing() -> None:
    assert gate(GATED, data(2), []) == Completeness(complete=False, reason="marker missing")
    assert gate(GATED, data(1), [marker()]).reason == "1 of 2 files"
    assert gate(GATED, data(2), [marker()]).complete
    assert gate(ImportSpec(**BASE), data(1), []).complete, "no complete_when: nothing is gated"


def test_only_a_load_is_gated() -> None:
    recorded = RecordedInterval.from_rows([row(o) for o in data(2)])
    skip = IntervalDecision(IntervalAction.SKIP)
    assert gate_interval(GATED, decision=skip, listed=data(2), markers=[], recorded=recorded, now=NOW).complete


def test_a_marker_once_recorded_closes_the_interval_for_good() -> None:
    """A sealed interval whose marker retention deleted, and whose files are gone, gets one more file: it is
    added to (its recorded files count for min_files, the recorded marker for marker_match)."""
    old = data(2)
    recorded = RecordedInterval.from_rows([*(row(o, deleted=True, sealed=True) for o in old),
                                           row(marker(), job_id=MARKER_JOB_ID, deleted=True, sealed=True)])
    late = [ObjectInfo(name="passport/2024-01-05/late.parquet", generation=99, size=1, updated=NOW - timedelta(hours=1))]
    decision = decide_interval(GATED, interval_start=DAY, listed=late, recorded=recorded)
    assert decision.action is IntervalAction.ADD
    assert gate(GATED, late, [], recorded).complete


def test_quiet_for_counts_recorded_files_of_an_addition_as_updated_at_their_load() -> None:
    recorded = RecordedInterval.from_rows([row(o, deleted=True, sealed=True) for o in data(1)])
    fresh = [ObjectInfo(name="passport/2024-01-05/late.parquet", generation=99, size=1, updated=NOW - timedelta(minutes=5))]
    waiting = gate(QUIET, fresh, [], recorded)
    assert waiting.reason == "newest file 5 minutes old, 30 minutes required"
    assert waiting.recheck_at == NOW + timedelta(minutes=25)
    assert gate(QUIET, fresh, [], recorded, now=NOW + timedelta(minutes=25)).complete


def test_markers_are_recorded_apart_from_data() -> None:
    rows = [*(row(o) for o in data(2)), row(marker(), job_id=MARKER_JOB_ID)]
    recorded = RecordedInterval.from_rows(rows)
    assert [o.name for o in recorded.objects] == [o.name for o in data(2)]
    assert [o.name for o in recorded.markers] == [marker().name]
    assert recorded.generations == {o.name: o.generation for o in data(2)}, "a marker is never data"
    assert decide_interval(GATED, interval_start=DAY, listed=data(2), recorded=recorded).action is IntervalAction.SKIP
    assert not markers_changed([marker()], recorded)
    assert markers_changed([marker(generation=8)], recorded), "a re-uploaded marker is recorded again"
    assert markers_changed([marker()], RecordedInterval.from_rows([row(o) for o in data(2)]))


def retention(rows: list[LoadedObject], current: dict[str, int]):
    return plan_retention(GATED, as_of=datetime(2024, 3, 1, tzinfo=UTC), recorded=rows, current_generations=current)


def test_retention_deletes_a_marker_only_after_every_loaded_file_of_its_interval() -> None:
    files, mark = data(2), marker()
    rows = [*(row(o) for o in files), row(mark, job_id=MARKER_JOB_ID)]
    current = {o.name: o.generation for o in [*files, mark]}
    plan = retention(rows, current)
    assert [o.name for o in plan.to_delete] == [o.name for o in files], "the marker is never data"
    assert [o.name for o in plan.markers] == [mark.name]
    assert plan.markers_after([]) == (), "nothing deleted yet: the marker stays"
    assert plan.markers_after(plan.to_delete[:1]) == (), "one loaded file still present: the marker stays"
    assert [o.name for o in plan.markers_after(plan.to_delete)] == [mark.name]


def test_retention_keeps_a_marker_while_a_loaded_file_of_it_stays() -> None:
    files, mark = data(2), marker()
    rows = [*(row(o) for o in files), row(mark, job_id=MARKER_JOB_ID)]
    reuploaded = {files[0].name: 55, files[1].name: files[1].generation, mark.name: mark.generation}
    assert retention(rows, reuploaded).markers == (), "a file changed since its load is still there"
    only_marker = retention([row(mark, job_id=MARKER_JOB_ID)], {mark.name: mark.generation})
    assert only_marker.markers == (), "an interval neither sealed nor deleted from keeps its marker"
    sealed = retention([row(mark, job_id=MARKER_JOB_ID, sealed=True)], {mark.name: mark.generation})
    assert [o.name for o in sealed.markers] == [mark.name], "every loaded file was deleted by an earlier retention"
    skipped = [row(files[0], job_id=SKIPPED_JOB_ID), row(files[1]), row(mark, job_id=MARKER_JOB_ID)]
    plan = retention(skipped, {o.name: o.generation for o in [*files, mark]})
    assert [o.name for o in plan.to_delete] == [files[1].name], "a skipped file holds no rows: never deleted"
    assert [o.name for o in plan.markers_after(plan.to_delete)] == [mark.name], "a skipped file is not loaded data"
    gone = retention([*(row(o) for o in files), row(mark, job_id=MARKER_JOB_ID)], {o.name: o.generation for o in files})
    assert [o.name for o in gone.markers_gone] == [mark.name] and gone.markers == ()
    regenerated = retention([*(row(o) for o in files), row(mark, job_id=MARKER_JOB_ID)],
                            {**{o.name: o.generation for o in files}, mark.name: 8})
    assert regenerated.markers == () and regenerated.markers_gone == (), "a re-uploaded marker is not the recorded one"


# -- the listing sensor's waiting set ------------------------------------------------------------------------------


def change(day: int, digest: str = "d") -> IntervalChange:
    return IntervalChange(datetime(2024, 1, day, tzinfo=UTC), digest, 100 + day, 1)


def test_incomplete_intervals_wait_and_complete_ones_are_requested() -> None:
    cursor = NewFilesCursor(digests={"x": "y"})
    candidates = gate_candidates(cursor, [change(5), change(6)], now=NOW)
    verdicts = {change(5).interval_start: Completeness(complete=True),
                change(6).interval_start: Completeness(complete=False, reason="marker missing")}
    requested, cursor = settle_gate(cursor, candidates, verdicts)
    assert requested == [change(5)]
    assert cursor.waiting == {change(6).interval_start.isoformat(): WaitingInterval("d", 106, 1, None)}
    assert cursor.digests == {"x": "y"}

    # a later tick with nothing new: the waiting interval is a candidate again, and leaves once requested
    again = gate_candidates(cursor, [], now=NOW)
    assert again == [change(6)]
    requested, cursor = settle_gate(cursor, again, {change(6).interval_start: Completeness(complete=True)})
    assert requested == [change(6)] and cursor.waiting == {}


def test_a_quiet_period_is_rechecked_once_it_may_have_passed() -> None:
    recheck = NOW + timedelta(minutes=20)
    _, cursor = settle_gate(NewFilesCursor(), [change(6)],
                            {change(6).interval_start: Completeness(False, "newest file 10 minutes old, 30 minutes required",
                                                                    recheck_at=recheck)})
    assert gate_candidates(cursor, [], now=NOW) == [], "nothing to list before the quiet period can end"
    assert gate_candidates(cursor, [], now=recheck) == [change(6)]
    newer = change(6, digest="e")
    assert gate_candidates(cursor, [newer], now=NOW) == [newer], "a new file: decided again at once, with its digest"


def test_the_cursor_without_waiting_intervals_keeps_its_format() -> None:
    plain = NewFilesCursor(digests={"2024-01-05T00:00:00+00:00": "abc"}, newest="2024-01-05T00:00:00+00:00")
    assert "waiting" not in json.loads(plain.to_json()), "a spec without complete_when writes the cursor as before"
    assert NewFilesCursor.from_json(plain.to_json()) == plain
    waiting = NewFilesCursor(waiting={"2024-01-06T00:00:00+00:00": WaitingInterval("d", 3, 2, NOW.isoformat())})
    assert NewFilesCursor.from_json(waiting.to_json()) == waiting
