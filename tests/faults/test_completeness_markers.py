"""Completeness markers across a SIGKILLed worker: a load recovered from its pending record still ends with the
interval's marker recorded (with its generation), and a retention killed between delete batches never deletes a
marker while a loaded file of its interval is still there; the next retention finishes both."""

from __future__ import annotations

from datetime import UTC, datetime

from localdev.samples import score_rows, upload
from tests.emulators.worker_helpers import (
    day,
    drop,
    import_window,
    ledger_rows,
    make_spec,
    object_names,
    retain,
    statuses,
    write_spec,
)
from tests.faults.harness import run_killed

MARKER = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/_SUCCESS"
AS_OF = datetime(2024, 3, 1, tzinfo=UTC)


def seed(bucket, spec):
    files = [drop(bucket, f"{spec.path_base}/2024-01-05/part{i}.parquet", score_rows(interval_start=day(5), count=2, seed=i))
             for i in range(2)]
    return files, upload(bucket, f"{spec.path_base}/2024-01-05/_SUCCESS", b"")


def markers_in_ledger(bq, spec) -> dict[str, tuple[int, bool]]:
    return {r["object_name"]: (r["generation"], r["deleted_at"] is not None) for r in ledger_rows(bq, spec)
            if r["job_id"] == "marker"}


def test_a_load_killed_after_its_copy_is_recovered_with_its_marker(bucket, gcs_client, bq_client, unique_name,
                                                                    tmp_path):
    spec = make_spec(bucket.name, unique_name, complete_when={"marker_match": MARKER})
    _, marker = seed(bucket, spec)

    killed = run_killed(["import", "--spec", str(write_spec(tmp_path, spec)), "--start", "2024-01-05"], at="load.copied")
    assert killed.returncode == -9, f"the worker was not killed at load.copied: {killed.stderr[-2000:]}"
    assert ledger_rows(bq_client, spec) == [], "killed before its ledger write"

    summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert summary.intervals[0].job_ids == (), "the pending load was recovered, not loaded again"
    assert markers_in_ledger(bq_client, spec) == {marker.name: (marker.generation, False)}
    assert statuses(import_window(spec, gcs_client, bq_client, day(5))) == {"20240105": "unchanged"}


def test_retention_killed_between_batches_keeps_the_marker_until_the_last_file(bucket, gcs_client, bq_client,
                                                                              unique_name, tmp_path):
    spec = make_spec(bucket.name, unique_name, retention_days=3, complete_when={"marker_match": MARKER})
    files, marker = seed(bucket, spec)
    import_window(spec, gcs_client, bq_client, day(5))

    killed = run_killed(["retention", "--spec", str(write_spec(tmp_path, spec)), "--as-of", AS_OF.isoformat()],
                        at="retention.batch_deleted", nth=1, delete_batch_size=1)
    assert killed.returncode == -9, f"the worker was not killed at retention.batch_deleted: {killed.stderr[-2000:]}"
    left = object_names(bucket)
    assert len(left & {f.name for f in files}) == 1, "one batch of one file was deleted before the kill"
    assert marker.name in left, "a loaded file of the interval is still there: its marker stays"

    summary = retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert [o.name for o in summary.outcome.markers_deleted] == [marker.name]
    assert object_names(bucket) == set()
    assert markers_in_ledger(bq_client, spec) == {marker.name: (marker.generation, True)}
