"""``on_bad_file: skip`` against the emulators: an interval loads without the file BigQuery cannot read;
the file is listed, fails the WARN check, is never deleted by retention, and a fixed upload of it is
loaded (a reload while the interval is open, in addition once retention sealed it).

bqemulator names an unreadable file by its path in the GCS emulator's store ('.../drops/2024-01-05/b.parquet')
where BigQuery names its gs:// URI; the worker matches the object name in either.
"""

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
    statuses,
    table_exists,
)
from worker.core.errors import WorkerError
from worker.core.records import SKIPPED_JOB_ID
from worker.reporting import import_checks

NOT_PARQUET = b"this is not a parquet file\n" * 10
GOOD, BAD = "drops/2024-01-05/a.parquet", "drops/2024-01-05/b.parquet"


def _spec(bucket, unique_name, **overrides):
    fields = {"mode": "Incremental", "on_bad_file": "skip", "retention_days": 1,
              "file_match": r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/[ab]\.parquet"}
    return make_spec(bucket.name, unique_name, **{**fields, **overrides})


def _drop_good_and_bad(bucket):
    drop(bucket, GOOD, score_rows(interval_start=day(5), count=2))
    upload(bucket, BAD, NOT_PARQUET)


def _check(summary, name):
    return next(ch for ch in import_checks(summary) if ch["check_name"] == name)


def test_skip_loads_the_rest_lists_the_file_and_a_fixed_upload_reloads(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name)
    _drop_good_and_bad(bucket)

    summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"} and summary.intervals[0].skipped_files == (BAD,)
    assert rows_per_interval(bq_client, spec) == {day(5): 2}
    check = _check(summary, "no_skipped_files")
    assert check["passed"] is False and check["severity"] == "WARN"
    assert check["metadata"]["files"]["raw_value"] == [f"gs://{bucket.name}/{BAD}"]
    assert {r["object_name"]: r["job_id"] for r in ledger_rows(bq_client, spec)}[BAD] == SKIPPED_JOB_ID
    # the same listing again: nothing to do (no reload loop over a file that stays bad), and the check still says so
    again = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(again) == {"20240105": "unchanged"} and again.intervals[0].skipped_files == (BAD,)
    assert _check(again, "no_skipped_files")["passed"] is False
    # the producer fixes the file: the open interval reloads with it
    drop(bucket, BAD, score_rows(interval_start=day(5), count=3, seed=1))
    fixed = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(fixed) == {"20240105": "loaded"} and fixed.intervals[0].skipped_files == ()
    assert rows_per_interval(bq_client, spec) == {day(5): 5}


def test_retention_keeps_a_skipped_file_and_its_fix_is_loaded_in_addition(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name)
    _drop_good_and_bad(bucket)
    import_window(spec, gcs_client, bq_client, day(5))

    retain(spec, gcs_client, bq_client, as_of=day(5) + timedelta(days=30))

    assert object_names(bucket) == {BAD}, "only the loaded file is deleted; the skipped one holds the only copy"
    drop(bucket, BAD, score_rows(interval_start=day(5), count=3, seed=1))
    added = import_window(spec, gcs_client, bq_client, day(5))
    assert statuses(added) == {"20240105": "added"}
    assert rows_per_interval(bq_client, spec) == {day(5): 5}, "the 2 loaded rows stay; the fixed file's 3 are added"
    rows = {r["object_name"]: r for r in ledger_rows(bq_client, spec)}
    assert rows[GOOD]["deleted_at"] is not None and rows[BAD]["job_id"] != SKIPPED_JOB_ID


def test_fail_mode_still_fails_naming_the_file(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name, on_bad_file="fail")
    _drop_good_and_bad(bucket)
    with pytest.raises(WorkerError, match=r"b\.parquet"):
        import_window(spec, gcs_client, bq_client, day(5))
    assert not table_exists(bq_client, spec.clean_table_id)
    assert object_names(bucket) == {GOOD, BAD}


def test_an_interval_of_only_bad_files_fails_naming_them(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name)
    upload(bucket, BAD, NOT_PARQUET)
    with pytest.raises(WorkerError, match=r"Every file of interval 20240105.*b\.parquet"):
        import_window(spec, gcs_client, bq_client, day(5))
    assert object_names(bucket) == {BAD}



def test_an_addition_to_a_sealed_interval_whose_raw_table_is_gone_is_refused(bucket, gcs_client, bq_client, unique_name):
    """The append would make a raw table of the new rows only and publish it over the interval's clean rows."""
    spec = _spec(bucket, unique_name)
    _drop_good_and_bad(bucket)
    import_window(spec, gcs_client, bq_client, day(5))
    retain(spec, gcs_client, bq_client, as_of=day(5) + timedelta(days=30))
    bq_client.delete_table(spec.raw_table_id(day(5)))  # e.g. raw_table_expiration_days passed
    drop(bucket, BAD, score_rows(interval_start=day(5), count=3, seed=1))
    with pytest.raises(WorkerError, match=r"raw table .* is gone"):
        import_window(spec, gcs_client, bq_client, day(5))
    assert rows_per_interval(bq_client, spec) == {day(5): 2}, "the interval's loaded rows stay"
