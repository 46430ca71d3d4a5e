"""Issue 8, items 1-3: retention and imports of one interval never cost loaded rows.

Retention seals an interval in the ledger before its first delete; an import never rebuilds a
sealed interval from what is left in GCS. Each test drives the real worker code; hooks at the
worker's checkpoints make the interleavings exact (see :mod:`tests.faults.harness`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import worker.planning
from localdev.samples import score_rows
from tests.emulators.worker_helpers import (
    count_rows,
    day,
    drop,
    import_window,
    ledger_rows,
    make_spec,
    object_names,
    retain,
    rows_per_interval,
    statuses,
)
from tests.faults.harness import SimulatedCrash, at_checkpoint, crash_at, duplicate_rows
from worker.core.errors import WorkerError

AS_OF = datetime(2024, 3, 1, tzinfo=UTC)  # every January interval is past retention_days=3


def drop_files(bucket, spec, d: datetime, count: int, *, rows: int = 3, first: int = 0) -> list[str]:
    names = []
    for i in range(first, first + count):
        name = f"{spec.path_base}/{d:%Y-%m-%d}/part{i:03d}.parquet"
        drop(bucket, name, score_rows(interval_start=d, count=rows, seed=i))
        names.append(name)
    return names


@pytest.fixture
def small_batches(monkeypatch):
    """Retention deletes in batches of 3, so 'between batches' exists with a handful of files."""
    monkeypatch.setattr(worker.planning, "MAX_DELETES_PER_BATCH", 3)


@pytest.mark.parametrize("mode", ["Overwrite", "Incremental"])
def test_partial_retention_then_reimport_keeps_every_row(mode, small_batches, bucket, gcs_client, bq_client, unique_name):
    """Item 1: retention stopped between delete batches, then an import of the interval: the files left
    never replace the interval (observed before: raw 309 -> 9 rows); every ledger row of a deleted
    object stays; a second retention finishes the job; a later import still holds every row."""
    spec = make_spec(bucket.name, unique_name, mode=mode, retention_days=3)
    drop_files(bucket, spec, day(5), 10)
    import_window(spec, gcs_client, bq_client, day(5))
    raw_before = count_rows(bq_client, spec.raw_table_id(day(5)))
    clean_before = count_rows(bq_client, spec.clean_table_id)
    assert raw_before == 30

    with crash_at("retention.batch_deleted", nth=1), pytest.raises(SimulatedCrash):
        retain(spec, gcs_client, bq_client, as_of=AS_OF)
    left = {n for n in object_names(bucket) if n.startswith(spec.object_prefix)}
    assert len(left) == 7, "the first batch of 3 was deleted, then the worker stopped"

    again = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(again) == {"20240105": "retained"}
    assert again.intervals[0].rows == 30
    assert count_rows(bq_client, spec.raw_table_id(day(5))) == raw_before
    assert count_rows(bq_client, spec.clean_table_id) == clean_before
    assert len(ledger_rows(bq_client, spec)) == 10, "every loaded object keeps its ledger row"

    retain(spec, gcs_client, bq_client, as_of=AS_OF)
    assert not {n for n in object_names(bucket) if n.startswith(spec.object_prefix)}
    final = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(final) == {"20240105": "retained"} and final.intervals[0].rows == 30
    assert count_rows(bq_client, spec.clean_table_id) == clean_before
    ledger = ledger_rows(bq_client, spec)
    assert len(ledger) == 10 and all(r["deleted_at"] is not None and r["sealed_at"] is not None for r in ledger)


def test_sealed_interval_loads_new_names_in_addition_and_refuses_reuploads(bucket, gcs_client, bq_client, unique_name):
    """Item 1's semantics: a new object in a sealed interval is loaded in addition (rows = old + new, no
    duplicate); a re-upload of a loaded object is refused with a message naming it; nothing changes."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_files(bucket, spec, day(5), 4)
    import_window(spec, gcs_client, bq_client, day(5))
    retain(spec, gcs_client, bq_client, as_of=AS_OF)  # all 4 deleted, interval sealed

    late = drop_files(bucket, spec, day(5), 1, rows=5, first=10)[0]
    added = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(added) == {"20240105": "added"}
    assert added.intervals[0].rows == 17
    assert rows_per_interval(bq_client, spec) == {day(5): 17}
    assert duplicate_rows(bq_client, spec.clean_table_id) == 0
    assert statuses(import_window(spec, gcs_client, bq_client, day(5))) == {"20240105": "retained"}, \
        "the added object is recorded: nothing to do on the next run"

    drop(bucket, late, score_rows(interval_start=day(5), count=2, seed=99))  # re-upload of a loaded object
    with pytest.raises(WorkerError) as failure:
        import_window(spec, gcs_client, bq_client, day(5))
    message = str(failure.value)
    assert f"gs://{bucket.name}/{late}" in message and "sealed" in message and "new object name" in message
    assert rows_per_interval(bq_client, spec) == {day(5): 17}


def test_retention_between_an_imports_listing_and_its_ledger_read(small_batches, bucket, gcs_client, bq_client,
                                                                  unique_name):
    """Item 2: an import lists the bucket, then retention seals and deletes the interval, then the import
    reads the ledger: it sees the seal and keeps the interval (it must not reload from its listing's
    snapshot of the files, nor from what is left)."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_files(bucket, spec, day(5), 6)
    import_window(spec, gcs_client, bq_client, day(5))
    drop_files(bucket, spec, day(5), 1, first=20)  # a late file: the import would reload the interval

    def retention() -> None:
        retain(spec, gcs_client, bq_client, as_of=AS_OF)

    with at_checkpoint("import.listed", retention):
        summary = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(summary) == {"20240105": "added"}, "sealed meanwhile: the late file is added, nothing rebuilt"
    assert rows_per_interval(bq_client, spec) == {day(5): 21}
    assert duplicate_rows(bq_client, spec.clean_table_id) == 0


def test_import_during_retention_deletes_keeps_the_interval(small_batches, bucket, gcs_client, bq_client, unique_name):
    """Item 2 as observed: an import started while retention is between delete batches sees only the
    files not deleted yet; the seal makes it keep the interval."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_files(bucket, spec, day(5), 9)
    import_window(spec, gcs_client, bq_client, day(5))
    seen = {}

    def concurrent_import() -> None:
        seen["summary"] = import_window(spec, gcs_client, bq_client, day(5))

    with at_checkpoint("retention.batch_deleted", concurrent_import):
        retain(spec, gcs_client, bq_client, as_of=AS_OF)
    assert statuses(seen["summary"]) == {"20240105": "retained"}
    assert rows_per_interval(bq_client, spec) == {day(5): 27}
    assert len(ledger_rows(bq_client, spec)) == 9


def test_retention_sealing_while_an_import_reloads_keeps_seal_and_deleted_rows(bucket, gcs_client, bq_client,
                                                                               unique_name):
    """The import read the ledger before the seal and reloads (a late file); retention seals and deletes
    the recorded files while the import copies; the import's ledger write must keep the seal and every
    deleted row, so the next import does not rebuild from the single file left."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_files(bucket, spec, day(5), 3)
    import_window(spec, gcs_client, bq_client, day(5))
    late = drop_files(bucket, spec, day(5), 1, first=30)[0]

    with at_checkpoint("load.copied", lambda: retain(spec, gcs_client, bq_client, as_of=AS_OF)):
        reloaded = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(reloaded) == {"20240105": "loaded"} and reloaded.intervals[0].rows == 12
    ledger = {r["object_name"]: r for r in ledger_rows(bq_client, spec)}
    assert len(ledger) == 4 and all(r["sealed_at"] is not None for r in ledger.values())
    assert sum(r["deleted_at"] is not None for r in ledger.values()) == 3
    assert {n for n in object_names(bucket) if n.startswith(spec.object_prefix)} == {late}

    after = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(after) == {"20240105": "retained"}
    assert rows_per_interval(bq_client, spec) == {day(5): 12}


def test_range_backfill_over_retained_intervals_reports_their_rows(bucket, gcs_client, bq_client, unique_name):
    """Item 3: a backfill reaching further back than retention_days: intervals whose files retention deleted
    are loaded (their recorded rows, the rows_loaded check passes) and keep their data version."""
    from worker.reporting import import_checks

    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    for d in (day(5), day(6), day(7)):
        drop_files(bucket, spec, d, 2)
    single = import_window(spec, gcs_client, bq_client, day(5))
    import_window(spec, gcs_client, bq_client, day(6), day(8))
    retain(spec, gcs_client, bq_client, as_of=datetime(2024, 1, 10, 12, tzinfo=UTC))  # deletes 01-05 and 01-06 only

    backfill = import_window(spec, gcs_client, bq_client, day(5), day(8))
    assert statuses(backfill) == {"20240105": "retained", "20240106": "retained", "20240107": "unchanged"}
    assert [r.rows for r in backfill.intervals] == [6, 6, 6]
    rows_loaded = next(c for c in import_checks(backfill) if c["check_name"] == "rows_loaded")
    assert rows_loaded["passed"]
    assert import_window(spec, gcs_client, bq_client, day(5)).data_version == single.data_version
    assert rows_per_interval(bq_client, spec) == {day(5): 6, day(6): 6, day(7): 6}


def test_unrecorded_load_then_retention_is_recovered_not_refused(bucket, gcs_client, bq_client, unique_name):
    """A worker reloads an interval (one file re-uploaded) and dies after the copy, before its ledger write;
    retention then seals the interval and deletes the other files. The re-run finds that load's copy job
    and records it (the raw table holds exactly that listing) instead of refusing the re-upload."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    names = drop_files(bucket, spec, day(5), 3)
    import_window(spec, gcs_client, bq_client, day(5))
    drop(bucket, names[0], score_rows(interval_start=day(5), count=5, seed=50))  # re-upload: 5 rows instead of 3

    with crash_at("load.copied"), pytest.raises(SimulatedCrash):
        import_window(spec, gcs_client, bq_client, day(5))
    retain(spec, gcs_client, bq_client, as_of=AS_OF)  # deletes names[1], names[2]; keeps the re-upload
    assert {n for n in object_names(bucket) if n.startswith(spec.object_prefix)} == {names[0]}

    rerun = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(rerun) == {"20240105": "loaded"} and rerun.intervals[0].rows == 11
    assert rows_per_interval(bq_client, spec) == {day(5): 11}
    retain(spec, gcs_client, bq_client, as_of=AS_OF)
    assert not {n for n in object_names(bucket) if n.startswith(spec.object_prefix)}
    assert rows_per_interval(bq_client, spec) == {day(5): 11}


def test_unrecorded_append_is_recorded_once_even_when_more_files_arrive(bucket, gcs_client, bq_client, unique_name):
    """A worker appends a new file to a sealed interval and dies before its ledger write; another file arrives;
    the re-run records the first append (found by its fixed copy id and its load jobs' URIs) and appends only
    the second file: no row twice."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_files(bucket, spec, day(5), 2)
    import_window(spec, gcs_client, bq_client, day(5))
    retain(spec, gcs_client, bq_client, as_of=AS_OF)
    drop_files(bucket, spec, day(5), 1, rows=4, first=10)

    with crash_at("load.copied"), pytest.raises(SimulatedCrash):
        import_window(spec, gcs_client, bq_client, day(5))
    drop_files(bucket, spec, day(5), 1, rows=5, first=11)

    rerun = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(rerun) == {"20240105": "added"}
    assert rows_per_interval(bq_client, spec) == {day(5): 6 + 4 + 5}
    assert duplicate_rows(bq_client, spec.clean_table_id) == 0
    assert duplicate_rows(bq_client, spec.raw_table_id(day(5))) == 0
    assert len(ledger_rows(bq_client, spec)) == 4
    from worker.ledger import Ledger

    assert Ledger(bq_client, spec).pending_loads.read(start=day(1), end=day(20)) == {}, "the recorded pending load is cleared"


def test_two_appends_to_one_sealed_interval_at_once(bucket, gcs_client, bq_client, unique_name):
    """Two workers add to the same sealed interval at once (the second sees one more file): one append wins
    the copy id, the other records what the winner appended; every row once."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_files(bucket, spec, day(5), 2)
    import_window(spec, gcs_client, bq_client, day(5))
    retain(spec, gcs_client, bq_client, as_of=AS_OF)
    drop_files(bucket, spec, day(5), 1, rows=4, first=10)
    other = {}

    def second_worker() -> None:
        drop_files(bucket, spec, day(5), 1, rows=5, first=11)
        other["summary"] = import_window(spec, gcs_client, bq_client, day(5))

    with at_checkpoint("load.batch_loaded", second_worker):
        first = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(other["summary"]) == {"20240105": "added"}
    # The append's copy id depends only on the ledger, so both workers share it: the second appends and records;
    # the first finds that copy done (its source is the other's staging table), drops its own pending record,
    # decides again and finds every listed file known: the sealed interval is kept.
    assert statuses(first) == {"20240105": "retained"}
    assert rows_per_interval(bq_client, spec) == {day(5): 15}
    assert duplicate_rows(bq_client, spec.raw_table_id(day(5))) == 0
    assert statuses(import_window(spec, gcs_client, bq_client, day(5))) == {"20240105": "retained"}
