"""Object names a load job cannot read by URI, through the conformance proxy (rule ``bigquery_load_uris``):
BigQuery reads ``*`` as a wildcard (no escape) and collapses ``//``, so ``a*.parquet`` would load
``a.parquet`` again and ``x//y.parquet`` would load ``x/y.parquet`` again. The worker never sends such a URI:
the objects are named as not loadable (skipped with ``on_bad_file: skip``, else the interval fails), and
retention never deletes them. Load batches stay under BigQuery's 10 MB request limit with long names.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from localdev.samples import score_rows
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
)
from worker.core.errors import WorkerError
from worker.core.records import SKIPPED_JOB_ID, ObjectInfo
from worker.planning import plan_interval_load
from worker.reporting import import_checks

PLAIN, STAR = "drops/2024-01-05/a.parquet", "drops/2024-01-05/a*.parquet"
#: gcp-storage-emulator stores objects as files (``x//y`` and ``x/y`` would be one file), so ``x/y`` is not dropped.
DOUBLE = "drops/2024-01-05/x//y.parquet"
ANY_PARQUET = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/.+\.parquet"


def _spec(bucket, unique_name, **overrides):
    fields = {"mode": "Incremental", "retention_days": 1, "file_match": ANY_PARQUET}
    return make_spec(bucket.name, unique_name, **{**fields, **overrides})


def _drop_all(bucket):
    for name, count, seed in ((PLAIN, 2, 1), (STAR, 3, 2), (DOUBLE, 7, 4)):
        drop(bucket, name, score_rows(interval_start=day(5), count=count, seed=seed))
    assert {PLAIN, STAR, DOUBLE} <= object_names(bucket)


def test_wildcard_and_double_slash_names_are_named_skipped_and_kept(bucket, gcs_client, bq_client, unique_name,
                                                                    conformance):
    spec = _spec(bucket, unique_name, on_bad_file="skip")
    _drop_all(bucket)

    with conformance.recording() as log:
        summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert rows_per_interval(bq_client, spec) == {day(5): 2}, "a.parquet once (a* would read it again)"
    assert summary.intervals[0].skipped_files == (STAR, DOUBLE)
    check = next(ch for ch in import_checks(summary) if ch["check_name"] == "no_skipped_files")
    assert check["passed"] is False
    assert check["metadata"]["files"]["raw_value"] == [f"gs://{bucket.name}/{STAR}", f"gs://{bucket.name}/{DOUBLE}"]
    jobs = {r["object_name"]: r["job_id"] for r in ledger_rows(bq_client, spec)}
    assert jobs[STAR] == jobs[DOUBLE] == SKIPPED_JOB_ID != jobs[PLAIN]
    assert [r for r in log if r.method == "POST" and r.target.split("?")[0].endswith("/jobs")], "loads went through the proxy"
    assert conformance.answered["bigquery_load_uris"] == 0, "no URI the rule had to read as BigQuery does"

    retain(spec, gcs_client, bq_client, as_of=day(5) + timedelta(days=30))

    left = object_names(bucket)
    assert {STAR, DOUBLE} <= left, "never loaded, so never deleted"
    assert PLAIN not in left, "a loaded object past retention is deleted"


def test_without_skip_the_interval_fails_naming_the_objects(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name)
    _drop_all(bucket)

    with pytest.raises(WorkerError) as failed:
        import_window(spec, gcs_client, bq_client, day(5))

    message = str(failed.value)
    assert f"gs://{bucket.name}/{STAR}" in message and f"gs://{bucket.name}/{DOUBLE}" in message
    assert "on_bad_file: skip" in message and "\n" not in message
    assert ledger_rows(bq_client, spec) == [], "nothing recorded, so retention deletes nothing"


def test_long_names_load_in_several_batches_bounded_by_bytes(bucket, gcs_client, bq_client, unique_name, conformance,
                                                              monkeypatch):
    """Scaled down: a 16 KiB bound for the URIs of one load and 40 names of ~1,000 bytes: several load jobs,
    each request under the bound plus the job's own configuration, every row loaded once. (The 10 MB case,
    10,000 names of 1,024 bytes, is checked on the real request body in tests/unit/test_load_batches.py.)"""
    import worker.planning as planning
    from worker.planning import uri_request_bytes

    spec = _spec(bucket, unique_name)
    stem = "/".join(["n" * 200] * 4)  # ~1,000-byte names in path parts the emulator's disk accepts (<= 255)
    names = [f"drops/2024-01-05/{i:02d}/{stem}.parquet" for i in range(40)]
    for i, name in enumerate(names):
        drop(bucket, name, score_rows(interval_start=day(5), count=1, seed=i))
    bound = 16 * 1024
    monkeypatch.setitem(planning.batch_uris.__kwdefaults__, "max_bytes", bound)
    plan = plan_interval_load(spec, interval_start=day(5), objects=[
        ObjectInfo(name=n, generation=1, size=1) for n in names])
    assert len(plan.batches) >= 3 and all(sum(uri_request_bytes(u) for u in b) <= bound for b in plan.batches)

    with conformance.recording() as log:
        summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert rows_per_interval(bq_client, spec) == {day(5): 40}
    loads = [j for j in summary.intervals[0].job_ids if "_load" in j]
    assert len(loads) == len(plan.batches)
    inserts = [r for r in log if r.method == "POST" and r.target.split("?")[0].endswith("/jobs")]
    assert inserts and all(r.status == 200 for r in inserts)
