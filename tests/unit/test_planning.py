"""Load and retention planning (pure): batches, deterministic job ids, skip decisions, what retention may delete."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tests.unit.test_spec import BASE
from worker.matching import ObjectInfo
from worker.planning import LoadedObject, batch_uris, overwrite_target, plan_interval_load, plan_retention
from worker.spec import ImportSpec

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
    first = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), recorded=None)
    again = plan_interval_load(SPEC, interval_start=DAY, objects=list(reversed(objs(3))), recorded=None)
    reuploaded = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3, generation=2), recorded=None)
    assert first.load_job_base(0, spec=SPEC) == again.load_job_base(0, spec=SPEC)
    assert first.digest != reuploaded.digest
    assert first.load_job_base(0, spec=SPEC) != reuploaded.load_job_base(0, spec=SPEC)
    assert first.raw_table_id.endswith(".oso_raw_sources.passport_scores__20240105")
    assert first.staging_table_id == f"{first.raw_table_id}__staging_{first.load_key}"


def test_load_key_changes_with_the_previous_load_but_digest_does_not() -> None:
    """The same files loaded again after the interval held other files get new job ids (no stale reattach)."""
    earlier = datetime(2024, 1, 6, 8, tzinfo=UTC)
    later = datetime(2024, 1, 6, 9, tzinfo=UTC)
    a = plan_interval_load(SPEC, interval_start=DAY, objects=objs(2), recorded=None, previous_load=earlier)
    b = plan_interval_load(SPEC, interval_start=DAY, objects=objs(2), recorded=None, previous_load=later)
    again = plan_interval_load(SPEC, interval_start=DAY, objects=objs(2), recorded=None, previous_load=earlier)
    assert a.digest == b.digest
    assert a.load_key != b.load_key
    assert a.load_job_base(0, spec=SPEC) != b.load_job_base(0, spec=SPEC)
    assert a.load_key == again.load_key, "a retry of the same load keeps its ids"


def test_skip_only_when_recorded_generations_are_identical() -> None:
    recorded = {o.name: o.generation for o in objs(3)}
    assert plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), recorded=recorded).skip
    assert not plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), recorded=None).skip
    assert not plan_interval_load(SPEC, interval_start=DAY, objects=objs(3, generation=2), recorded=recorded).skip
    assert not plan_interval_load(SPEC, interval_start=DAY, objects=objs(4), recorded=recorded).skip, "new file"
    assert not plan_interval_load(SPEC, interval_start=DAY, objects=objs(2), recorded=recorded).skip, "file removed"
    loaded_with = plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), recorded=None).digest
    assert plan_interval_load(SPEC, interval_start=DAY, objects=objs(3), recorded=recorded, recorded_digest=loaded_with).skip
    changed_settings = ImportSpec(**{**BASE, "max_bad_records": 5})
    assert not plan_interval_load(changed_settings, interval_start=DAY, objects=objs(3), recorded=recorded,
                                  recorded_digest=loaded_with).skip, "load settings changed since the load"


def test_overwrite_target_is_newest_ever_loaded() -> None:
    assert overwrite_target([]) is None
    assert overwrite_target([datetime(2024, 1, 7, tzinfo=UTC), DAY]) == datetime(2024, 1, 7, tzinfo=UTC)


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
