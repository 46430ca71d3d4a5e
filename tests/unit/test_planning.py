"""Load and retention planning (pure): batches, deterministic job ids, skip decisions, what retention may delete."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.test_spec import BASE
from worker.core.records import LoadedObject, ObjectInfo, RecordedInterval, SnapshotCandidate
from worker.core.spec import ImportSpec
from worker.planning import (
    IntervalAction,
    batch_uris,
    decide_interval,
    generations_digest,
    overwrite_target,
    plan_interval_load,
    plan_retention,
)

SPEC = ImportSpec(**BASE)
DAY = datetime(2024, 1, 5, tzinfo=UTC)


def objs(n: int, generation: int = 1) -> list[ObjectInfo]:
    return [ObjectInfo(name=f"passport/2024-01-05/part-{i:05d}.parquet", generation=generation, size=100) for i in range(n)]


@pytest.mark.parametrize("count", [1, 9_999, 10_000, 10_001, 25_000])
def test_uris_batch_at_ten_thousand(count: int) -> None:
    batches = batch_uris("bkt", objs(count))
    assert len(batches) == math.ceil(count / 10_000)
    assert all(len(b) <= 10_000 for b in batches)
    assert sum(len(b) for b in batches) == count
    assert batches[0][0] == "gs://bkt/passport/2024-01-05/part-00000.parquet"


def test_job_ids_are_deterministic_and_depend_on_generations() -> None:
    first = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3))
    again = plan_interval_load(SPEC, interval_start=DAY, objects=list(reversed(objs(3))))
    reuploaded = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3, generation=2))
    assert first.load_job_base(0, spec=SPEC) == again.load_job_base(0, spec=SPEC)
    assert first.digest != reuploaded.digest
    assert first.load_job_base(0, spec=SPEC) != reuploaded.load_job_base(0, spec=SPEC)
    assert first.raw_table_id.endswith(".oso_raw_sources.passport_scores__20240105")
    assert first.staging_table_id == f"{first.raw_table_id}__staging_{first.load_key}_t0"


def test_attempts_get_private_staging_tables_and_load_jobs_but_share_the_copy() -> None:
    """Concurrent or retried attempts never share (or drop) a staging table; the copy id is the same for all,
    so only one attempt ever writes the raw table for one load."""
    a = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), attempt_token="aaaa")
    b = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), attempt_token="bbbb")
    assert a.staging_table_id != b.staging_table_id
    assert a.load_job_base(0, spec=SPEC) != b.load_job_base(0, spec=SPEC)
    assert a.copy_job_base(spec=SPEC) == b.copy_job_base(spec=SPEC)
    added = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), attempt_token="aaaa", append=True)
    assert added.copy_job_base(spec=SPEC).endswith("_append") and added.load_key != a.load_key


def test_load_key_changes_with_the_previous_load_but_digest_does_not() -> None:
    """The same files loaded again after the interval held other files get new job ids (no stale reattach)."""
    earlier = datetime(2024, 1, 6, 8, tzinfo=UTC)
    later = datetime(2024, 1, 6, 9, tzinfo=UTC)
    a = plan_interval_load(SPEC, interval_start=DAY, objects=objs(2), previous_load=earlier)
    b = plan_interval_load(SPEC, interval_start=DAY, objects=objs(2), previous_load=later)
    again = plan_interval_load(SPEC, interval_start=DAY, objects=objs(2), previous_load=earlier)
    assert a.digest == b.digest
    assert a.load_key != b.load_key
    assert a.load_job_base(0, spec=SPEC) != b.load_job_base(0, spec=SPEC)
    assert a.load_key == again.load_key, "a retry of the same load keeps its ids"


def record(objects: list[ObjectInfo], *, sealed: bool = False, deleted: set[str] = frozenset(), rows: int = 30,
           spec: ImportSpec = SPEC) -> RecordedInterval:
    rows_ = [LoadedObject(interval_start=DAY, name=o.name, generation=o.generation, size=o.size, deleted=o.name in deleted,
                          interval_rows=rows, loaded_at=datetime(2024, 1, 6, tzinfo=UTC),
                          digest=generations_digest(spec, DAY, objects), sealed=sealed)
             for o in objects]
    return RecordedInterval.from_rows(rows_)


def decide(objects: list[ObjectInfo], recorded: RecordedInterval | None, spec: ImportSpec = SPEC):
    return decide_interval(spec, interval_start=DAY, listed=objects, recorded=recorded)


def test_open_interval_skips_only_when_recorded_generations_and_settings_are_identical() -> None:
    recorded = record(objs(3))
    assert decide(objs(3), recorded).action is IntervalAction.SKIP
    assert decide(objs(3), None).action is IntervalAction.LOAD
    assert decide([], None).action is IntervalAction.NO_FILES
    assert decide(objs(3, generation=2), recorded).action is IntervalAction.LOAD, "re-uploaded"
    assert decide(objs(4), recorded).action is IntervalAction.LOAD, "new file"
    removed = decide(objs(2), recorded)
    assert removed.action is IntervalAction.LOAD and len(removed.to_load) == 2, "file removed: the interval is rebuilt"
    changed_settings = ImportSpec(**{**BASE, "load_options": {"enable_list_inference": True}})
    assert decide(objs(3), recorded, changed_settings).action is IntervalAction.LOAD, "load settings changed since the load"


def test_open_interval_whose_files_are_all_gone_keeps_its_rows() -> None:
    """Never replace loaded rows with nothing: a recorded interval without files is kept (and counts as loaded)."""
    recorded = record(objs(3))
    decision = decide([], recorded)
    assert decision.action is IntervalAction.KEEP
    assert decision.digest == recorded.digest, "the data version stays the one it was loaded with"


@pytest.mark.parametrize("deleted", [set(), {objs(103)[0].name}, {o.name for o in objs(103)[:100]}])
def test_sealed_interval_is_never_rebuilt_from_fewer_objects(deleted: set[str]) -> None:
    """Issue 8.1: 103 files loaded, retention sealed the interval and deleted some (or none yet): the 3 (or 102,
    or 103) files left never replace the interval."""
    everything = objs(103)
    recorded = record(everything, sealed=True, deleted=deleted)
    left = [o for o in everything if o.name not in deleted]
    decision = decide(left, recorded)
    assert decision.action is IntervalAction.KEEP and decision.to_load == ()
    assert decision.digest == recorded.digest


def test_rows_deleted_by_an_older_release_seal_the_interval() -> None:
    """Ledgers written before seals existed: a deleted_at stamp alone seals the interval."""
    recorded = record(objs(5), deleted={objs(5)[0].name})
    assert recorded.sealed
    assert decide(objs(5)[1:], recorded).action is IntervalAction.KEEP


def test_sealed_interval_adds_new_names_and_refuses_reuploads() -> None:
    everything = objs(4)
    recorded = record(everything[:3], sealed=True, deleted={everything[0].name})
    added = decide(everything[1:], recorded)  # 1 and 2 recorded, 3 is new
    assert added.action is IntervalAction.ADD
    assert [o.name for o in added.to_load] == [everything[3].name]
    assert added.digest == generations_digest(SPEC, DAY, everything), "digest covers every object in BigQuery"
    reuploaded = [everything[1], ObjectInfo(name=everything[2].name, generation=7, size=100)]
    refused = decide(reuploaded, recorded)
    assert refused.action is IntervalAction.REFUSE
    assert [(o.name, o.generation) for o in refused.conflicts] == [(everything[2].name, 7)]
    changed_settings = ImportSpec(**{**BASE, "load_options": {"enable_list_inference": True}})
    assert decide(everything[1:3], record(everything[:3], sealed=True, spec=SPEC), changed_settings).action \
        is IntervalAction.KEEP, "a settings change never reloads a sealed interval"


def test_overwrite_target_is_newest_ever_loaded_with_rows() -> None:
    later = datetime(2024, 1, 7, tzinfo=UTC)
    assert overwrite_target([]) is None
    assert overwrite_target([SnapshotCandidate(later, 4), SnapshotCandidate(DAY, 3)]) == later
    empty_newest = [SnapshotCandidate(later, 0), SnapshotCandidate(DAY, 3)]
    assert overwrite_target(empty_newest) == DAY, "an empty interval never replaces a good snapshot"
    assert overwrite_target(empty_newest, allow_empty=True) == later
    assert overwrite_target([SnapshotCandidate(DAY, 0)]) is None


def loaded(day: int, name: str, generation: int = 1, deleted: bool = False) -> LoadedObject:
    return LoadedObject(interval_start=datetime(2024, 1, day, tzinfo=UTC), name=name, generation=generation,
                        size=10, deleted=deleted)


def test_retention_deletes_only_recorded_unchanged_objects_past_the_cutoff() -> None:
    spec = ImportSpec(**{**BASE, "retention_days": 10})
    as_of = datetime(2024, 1, 20, tzinfo=UTC)  # cutoff 2024-01-10: intervals ending on or before it are old
    recorded = [
        loaded(1, "a"),  # old, unchanged -> delete
        loaded(2, "b", generation=1),  # old, re-uploaded since (generation 2 now) -> keep
        loaded(3, "c"),  # old, already gone -> nothing to do
        loaded(4, "d", deleted=True),  # deleted by an earlier run -> ignored
        loaded(9, "e"),  # ends 01-10, exactly the cutoff -> delete
        loaded(10, "f"),  # ends 01-11, inside retention -> keep
    ]
    current = {"a": 1, "b": 2, "d": 1, "e": 1, "f": 1, "never-loaded": 1}
    plan = plan_retention(spec, as_of=as_of, recorded=recorded, current_generations=current)
    assert [o.name for o in plan.to_delete] == ["a", "e"]
    assert [o.name for o in plan.changed_since_load] == ["b"]
    assert [o.name for o in plan.already_gone] == ["c"]
    assert plan.bytes_to_free == 20


def test_retention_batches_deletes_by_hundred() -> None:
    spec = ImportSpec(**{**BASE, "retention_days": 0})
    recorded = [loaded(1, f"o{i}") for i in range(250)]
    plan = plan_retention(spec, as_of=datetime(2024, 2, 1, tzinfo=UTC), recorded=recorded,
                          current_generations={f"o{i}": 1 for i in range(250)})
    assert [len(b) for b in plan.delete_batches()] == [100, 100, 50]


def test_every_object_of_a_large_interval_gets_a_job_id_also_when_reattached() -> None:
    """Issue 9.4: reattaching to a finished copy leaves one job id; an interval of more than 10,000 files
    used to index one id per batch and raise IndexError outside the per-interval error handling."""
    from worker.planning import job_id_for_object

    plan = plan_interval_load(SPEC, interval_start=DAY, objects=objs(25_000))
    loaded = ["load0", "load1", "load2", "copy"]
    assert [job_id_for_object(i, loaded) for i in (0, 9_999, 10_000, 24_999)] == ["load0", "load0", "load1", "load2"]
    assert {job_id_for_object(i, ["copy"]) for i in range(len(plan.objects))} == {"copy"}


def test_a_settings_change_on_a_sealed_interval_is_refused_and_said_so() -> None:
    """Issue 11: a changed load option cannot reload a sealed interval (its files are deleted): KEEP, flagged."""
    everything = objs(3)
    recorded = record(everything, sealed=True, deleted={everything[0].name}, spec=SPEC)
    same = decide(everything[1:], recorded)
    assert same.action is IntervalAction.KEEP and not same.settings_changed
    changed = ImportSpec(**{**BASE, "load_options": {"enable_list_inference": True}})
    refused = decide(everything[1:], recorded, changed)
    assert refused.action is IntervalAction.KEEP and refused.settings_changed
    assert refused.digest == recorded.digest  # the data version stays what BigQuery holds
    # an open interval with the same change reloads instead
    open_interval = record(everything, spec=SPEC)
    assert decide(everything, open_interval, changed).action is IntervalAction.LOAD


def test_skipped_objects_are_never_deleted_and_a_fixed_upload_is_added_to_a_sealed_interval() -> None:
    """on_bad_file: skip records an unreadable object with job id 'skipped': it holds no rows."""
    from worker.core.records import SKIPPED_JOB_ID
    from worker.planning import plan_retention

    good, bad = objs(2)
    rows = [LoadedObject(interval_start=DAY, name=o.name, generation=o.generation, size=o.size, interval_rows=5,
                         loaded_at=DAY, digest=generations_digest(SPEC, DAY, [good, bad]), sealed=True,
                         job_id=SKIPPED_JOB_ID if o is bad else "job_load0_a0") for o in (good, bad)]
    recorded = RecordedInterval.from_rows(rows)
    # the same (still bad) generation: nothing to do
    assert decide([good, bad], recorded).action is IntervalAction.KEEP
    # a new generation of the skipped object is new data, not a conflicting re-upload
    fixed = ObjectInfo(name=bad.name, generation=bad.generation + 1, size=bad.size)
    added = decide([good, fixed], recorded)
    assert added.action is IntervalAction.ADD and added.to_load == (fixed,)
    plan = plan_retention(SPEC, as_of=DAY + timedelta(days=400), recorded=rows,
                          current_generations={good.name: good.generation, bad.name: bad.generation})
    assert [o.name for o in plan.to_delete] == [good.name]


def test_the_file_a_load_error_names_is_read_from_its_message_with_its_bucket() -> None:
    """BigQuery names an unreadable file by its gs:// URI in the job's errors[] (message and location,
    https://cloud.google.com/bigquery/docs/error-messages); only `invalid` errors name a bad file."""
    from worker.loading import named_files

    names = ["drops/a.parquet", "drops/b.parquet", "a.parquet"]
    errors = [{"reason": "invalid", "location": "gs://bkt/drops/a.parquet",
               "message": "Error while reading data, error message: Invalid parquet file. File: gs://bkt/drops/b.parquet"}]
    assert named_files(errors, names, bucket="bkt") == ["drops/b.parquet"]
    # a name is matched with its bucket in front, never as the suffix of another object's name
    assert named_files([{"reason": "invalid", "message": "File: gs://bkt/drops/a.parquet"}], names, bucket="bkt") == [
        "drops/a.parquet"]
    only_location = [{"reason": "invalid", "location": "gs://bkt/a.parquet", "message": "Error while reading data"}]
    assert named_files(only_location, names, bucket="bkt") == ["a.parquet"]
    # an internal or access error names no bad file, even when it mentions one
    assert named_files([{"reason": "backendError", "message": "File: gs://bkt/drops/b.parquet"}], names, bucket="bkt") == []
    assert named_files([{"reason": "invalid", "message": "Syntax error"}], names, bucket="bkt") == []
