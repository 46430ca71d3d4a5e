"""``on_bad_file: skip`` under kills: a worker SIGKILLed at each phase boundary of an interval with an
unreadable file, then a re-run and a retention, ends exactly as an uninterrupted run does: the readable
file's rows loaded once, the unreadable file recorded as skipped and still in GCS (retention never deletes
what BigQuery never read)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from localdev.samples import score_rows, upload
from tests.emulators.worker_helpers import (
    day,
    drop,
    import_window,
    ledger_rows,
    make_spec,
    object_names,
    retain,
    rows_per_interval,
    write_spec,
)
from tests.faults.harness import duplicate_rows, run_killed
from worker.core.records import SKIPPED_JOB_ID

GOOD, BAD = "drops/2024-01-05/a.parquet", "drops/2024-01-05/b.parquet"
AS_OF = day(5) + timedelta(days=30)


def _setup(gcs_client, unique_name):
    bucket = gcs_client.create_bucket(unique_name.replace("_", "-"))
    drop(bucket, GOOD, score_rows(interval_start=day(5), count=2))
    upload(bucket, BAD, b"this is not a parquet file\n" * 10)
    spec = make_spec(bucket.name, unique_name, mode="Incremental", on_bad_file="skip", retention_days=1,
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/[ab]\.parquet")
    return spec, bucket


def _state(spec, bucket, bq):
    ledger = {(r["object_name"], r["job_id"] == SKIPPED_JOB_ID, r["deleted_at"] is not None) for r in ledger_rows(bq, spec)}
    return rows_per_interval(bq, spec), ledger, object_names(bucket), duplicate_rows(bq, spec.clean_table_id)


@pytest.mark.parametrize("point", ["import.listed", "load.batch_loaded", "load.copied", "import.published",
                                   "import.recorded"])
def test_killed_with_a_skipped_file_then_rerun_and_retention_converge(point, services, gcs_client, bq_client,
                                                                      unique_name, tmp_path):
    ref_spec, ref_bucket = _setup(gcs_client, f"{unique_name}r")
    import_window(ref_spec, gcs_client, bq_client, day(5))
    retain(ref_spec, gcs_client, bq_client, as_of=AS_OF)

    spec, bucket = _setup(gcs_client, unique_name)
    killed = run_killed(["import", "--spec", str(write_spec(tmp_path, spec)), "--start", "2024-01-05"], at=point)
    assert killed.returncode == -9, f"the worker was not killed at {point}: {killed.stderr[-2000:]}"
    retain(spec, gcs_client, bq_client, as_of=AS_OF)  # only what the ledger recorded as loaded may go
    assert BAD in object_names(bucket), "the unreadable file must survive any retention"
    import_window(spec, gcs_client, bq_client, day(5))
    retain(spec, gcs_client, bq_client, as_of=AS_OF)

    got, want = _state(spec, bucket, bq_client), _state(ref_spec, ref_bucket, bq_client)
    assert got == want
    assert got[0] == {day(5): 2} and got[2] == {BAD} and (BAD, True, False) in got[1]
