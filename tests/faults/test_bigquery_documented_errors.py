"""Issue 9: what real BigQuery answers and the emulator does not, injected with Google's documented payloads
(see :mod:`tests.faults.bigquery_faults` for the links)."""

from __future__ import annotations

import pytest

from tests.emulators.worker_helpers import count_rows, day, drop_days, import_window, ledger_rows, make_spec, statuses
from tests.faults.bigquery_faults import SERIALIZE, TOO_MANY_DML, BigQueryFaults, Rule, error, job_insert_with_query
from worker.bigquery_client import bigquery_client
from worker.core.errors import WorkerError
from worker.core.retries import RetryBudget


def fresh_client():
    return bigquery_client(project_id="test-project")


def test_existing_datasets_are_read_never_inserted(bucket, gcs_client, unique_name):
    """Issue 9.1: datasets.insert checks the project-level bigquery.datasets.create permission before existence,
    so with dataset-level grants every run failed with 403 even though the datasets existed.
    https://cloud.google.com/bigquery/docs/datasets#required_permissions"""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=2)
    bq = fresh_client()
    for name in (spec.raw_dataset_name, spec.clean_dataset_name):
        bq.create_dataset(f"{spec.project_id}.{name}")
    denied = Rule("datasets.insert denied", "https://cloud.google.com/bigquery/docs/access-control#bigquery.dataEditor",
                  match=lambda m, u, b: m == "POST" and u.split("?")[0].endswith("/datasets"),
                  answer=error(403, "accessDenied", "Access Denied: Project test-project: User does not have "
                                                    "bigquery.datasets.create permission in project test-project."),
                  times=99)
    BigQueryFaults(bq, [denied])

    summary = import_window(spec, gcs_client, bq, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert denied.hits == 0


def test_missing_dataset_without_create_permission_names_the_grant(bucket, gcs_client, unique_name):
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=2)
    bq = fresh_client()
    BigQueryFaults(bq, [Rule("datasets.insert denied", "", match=lambda m, u, b: m == "POST" and u.split("?")[0].endswith("/datasets"),
                             answer=error(403, "accessDenied", "Access Denied: User does not have bigquery.datasets.create"),
                             times=9)])
    with pytest.raises(WorkerError) as failure:
        import_window(spec, gcs_client, bq, day(5))
    assert f"{spec.project_id}.{spec.raw_dataset_name}" in str(failure.value) and "roles/bigquery" in str(failure.value)


def test_dataset_in_another_location_fails_naming_both(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=2)
    from google.cloud import bigquery

    dataset = bigquery.Dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    dataset.location = "EU"
    bq_client.create_dataset(dataset)
    with pytest.raises(WorkerError) as failure:
        import_window(spec, gcs_client, bq_client, day(5))
    assert "'EU'" in str(failure.value) and "'US'" in str(failure.value) and spec.raw_dataset_name in str(failure.value)


@pytest.mark.parametrize("answer", [SERIALIZE, TOO_MANY_DML], ids=["could-not-serialize", "too-many-dml"])
@pytest.mark.parametrize("statement", ["MERGE", "UPDATE"])
def test_concurrent_dml_refusals_are_run_again(answer, statement, bucket, gcs_client, unique_name):
    """Issue 9.2: BigQuery refuses conflicting or queued-out DML with 400 invalidQuery, which the client does not
    retry; observed before, that failed an interval after its raw and clean tables were written. MERGE is the
    ledger write and the Incremental publish; UPDATE the retention seal and deletion stamps."""
    from datetime import UTC, datetime

    from tests.emulators.worker_helpers import retain

    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_days(bucket, spec, [day(5)], rows=2)
    bq = fresh_client()
    refusal = Rule(f"{statement} refused", "", match=job_insert_with_query(statement), answer=answer, times=2)
    BigQueryFaults(bq, [refusal])

    import_window(spec, gcs_client, bq, day(5), budget=RetryBudget(deadline_seconds=60))
    retain(spec, gcs_client, bq, as_of=datetime(2024, 3, 1, tzinfo=UTC), budget=RetryBudget(deadline_seconds=60))

    assert refusal.hits == 2
    assert count_rows(bq, spec.clean_table_id) == 2
    rows = ledger_rows(bq, spec)
    assert len(rows) == 1 and rows[0]["sealed_at"] is not None and rows[0]["deleted_at"] is not None


def test_dml_refused_past_the_deadline_is_a_transient_failure(bucket, gcs_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5)], rows=2)
    bq = fresh_client()
    BigQueryFaults(bq, [Rule("MERGE refused", "", match=job_insert_with_query("MERGE"), answer=SERIALIZE, times=999)])
    from worker.core.errors import TransientError

    with pytest.raises(TransientError) as failure:
        import_window(spec, gcs_client, bq, day(5), budget=RetryBudget(deadline_seconds=3))
    assert "concurrent update" in str(failure.value)


def test_job_id_conflict_then_brief_not_found_reattaches(bucket, gcs_client, unique_name):
    """BigQuery answers 409 to a job id that exists (another worker inserted it) and jobs.get can briefly 404
    right after. https://cloud.google.com/bigquery/docs/error-messages#errortable (duplicate, notFound)"""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=3)
    bq = fresh_client()
    import_window(spec, gcs_client, bq, day(4))  # datasets
    real = bq._http.request
    copy_ids: list[str] = []

    def is_copy_insert(method, url, body):
        job_id = (body.get("jobReference") or {}).get("jobId", "")
        if method == "POST" and job_id.endswith("_copy_a0"):
            copy_ids.append(job_id)
            real(method, url, data=__import__("json").dumps(body), headers={"Content-Type": "application/json"})
            return True  # the job now exists (the other worker's); answer as BigQuery would
        return False

    conflict = Rule("copy job id taken", "", match=is_copy_insert,
                    answer=error(409, "duplicate", "Already Exists: Job test-project:US.copy"))
    not_yet = Rule("jobs.get right after", "", match=lambda m, u, b: m == "GET" and bool(copy_ids) and copy_ids[0] in u,
                   answer=error(404, "notFound", "Not found: Job test-project:US.copy"), times=1)
    BigQueryFaults(bq, [conflict, not_yet])

    summary = import_window(spec, gcs_client, bq, day(5))

    assert conflict.hits == 1 and not_yet.hits == 1
    assert statuses(summary) == {"20240105": "loaded"} and count_rows(bq, spec.clean_table_id) == 3


def test_ledger_writes_of_a_huge_interval_stay_under_the_request_limit(services, unique_name):
    """Issue 9.3: one MERGE carrying every object of a 45,000-object interval is about 11 MB with 60-character
    names; BigQuery refuses requests over 10 MB (https://cloud.google.com/bigquery/quotas#query_jobs), so that
    interval would load and publish, then fail at its ledger write on every retry. Writes go in chunks."""
    from datetime import UTC, datetime

    from tests.emulators.worker_helpers import ledger_rows
    from worker.core.records import LedgerEntry, LoadedObject
    from worker.ledger import Ledger

    limit = 10 * 1024 * 1024
    spec = make_spec("some-bucket", unique_name)
    bq = fresh_client()
    bq.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    too_large = Rule("request over 10 MB", "https://cloud.google.com/bigquery/quotas#query_jobs",
                     match=lambda m, u, b: len(__import__("json").dumps(b)) > limit,
                     answer=error(400, "badRequest", "Request payload size exceeds the limit: 10485760 bytes."),
                     times=99)
    faults = BigQueryFaults(bq, [too_large])
    ledger = Ledger(bq, spec)
    ledger.ensure()
    names = [f"drops/2024-01-05/{'x' * 30}-{i:08d}.parquet" for i in range(45_000)]
    entries = [LedgerEntry(name=n, generation=1, size=10, job_id="gcs_import_job") for n in names]

    ledger.record_interval(interval_start=day(5), entries=entries, interval_rows=1, raw_table="r",
                           loaded_at=datetime.now(UTC), digest="d")
    ledger.mark_deleted([LoadedObject(interval_start=day(5), name=n, generation=1, size=10) for n in names],
                        deleted_at=datetime.now(UTC))

    assert too_large.hits == 0
    assert max(size for _, _, size in faults.requests) < limit / 2
    rows = ledger_rows(bq, spec)
    assert len(rows) == 45_000 and all(r["deleted_at"] is not None for r in rows)
    ledger.record_interval(interval_start=day(5), entries=entries[:20_001], interval_rows=1, raw_table="r",
                           loaded_at=datetime.now(UTC), digest="d")
    assert len(ledger_rows(bq, spec)) == 45_000, "rows of deleted objects are never removed, also in chunks"
