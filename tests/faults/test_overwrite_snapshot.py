"""Issue 8, items 4-5: an Overwrite clean table is never replaced by a worse one (empty, failed, older)."""

from __future__ import annotations

import pytest

from tests.emulators.worker_helpers import (
    count_rows,
    day,
    days_in_clean,
    drop_days,
    import_window,
    make_spec,
    statuses,
)
from tests.faults.harness import at_checkpoint
from worker.core.retries import RetryBudget
from worker.publishing import published_snapshot
from worker.reporting import import_checks


def csv_spec(bucket, unique_name, **overrides):
    return make_spec(bucket.name, unique_name, format="CSV", schema=None,
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/[a-z0-9_]+\.csv", **overrides)


def test_header_only_newest_interval_never_replaces_a_good_snapshot(bucket, gcs_client, bq_client, unique_name):
    """Item 4: observed before, a header-only CSV for the newest interval took the clean table from 4 rows to 0."""
    spec = csv_spec(bucket, unique_name)
    bucket.blob("drops/2024-01-05/scores.csv").upload_from_string("day,address,score\n2024-01-05,a,1\n2024-01-05,b,2\n"
                                                                  "2024-01-05,c,3\n2024-01-05,d,4\n")
    import_window(spec, gcs_client, bq_client, day(5))
    assert count_rows(bq_client, spec.clean_table_id) == 4
    bucket.blob("drops/2024-01-06/scores.csv").upload_from_string("day,address,score\n")

    summary = import_window(spec, gcs_client, bq_client, day(6))

    assert count_rows(bq_client, spec.clean_table_id) == 4
    assert published_snapshot(bq_client, spec)[0] == "20240105"
    rows_loaded = next(c for c in import_checks(summary) if c["check_name"] == "rows_loaded")
    assert not rows_loaded["passed"], "the blocking check still fails for the empty interval"


def test_allow_empty_snapshot_lets_an_empty_interval_publish(bucket, gcs_client, bq_client, unique_name):
    spec = csv_spec(bucket, unique_name, allow_empty_snapshot=True)
    bucket.blob("drops/2024-01-05/scores.csv").upload_from_string("day,address,score\n2024-01-05,a,1\n")
    import_window(spec, gcs_client, bq_client, day(5))
    bucket.blob("drops/2024-01-06/scores.csv").upload_from_string("day,address,score\n")
    import_window(spec, gcs_client, bq_client, day(6))
    assert published_snapshot(bq_client, spec)[0] == "20240106"


def test_a_changed_schema_replaces_the_snapshot_with_the_newest_columns(bucket, gcs_client, bq_client, unique_name):
    """Item 4, second half: the newest interval's columns differ. BigQuery's WRITE_TRUNCATE copy replaces the
    table's data and schema (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationTableCopy),
    atomically: the newest interval is the snapshot. (bqemulator answered 500 and emptied the destination; the
    conformance proxy's ``bigquery_truncating_copy_replaces_schema`` makes it answer as BigQuery does.)"""
    spec = csv_spec(bucket, unique_name)
    bucket.blob("drops/2024-01-05/scores.csv").upload_from_string("day,address,score\n2024-01-05,a,1\n2024-01-05,b,2\n")
    import_window(spec, gcs_client, bq_client, day(5))
    bucket.blob("drops/2024-01-06/scores.csv").upload_from_string("day,address,score,extra\n2024-01-06,a,1,x\n")

    import_window(spec, gcs_client, bq_client, day(6), budget=RetryBudget(deadline_seconds=2))

    assert published_snapshot(bq_client, spec)[0] == "20240106"
    assert count_rows(bq_client, spec.clean_table_id) == 1
    assert "extra" in [f.name for f in bq_client.get_table(spec.clean_table_id).schema]


def test_a_newer_publish_between_copy_and_labels_is_never_replaced_by_an_older_snapshot(
        bucket, gcs_client, bq_client, unique_name, conformance):
    """Strict-cloud defect 4: run A copied interval 01-05, then run B recorded 01-06 and published it (copy and
    labels), then A's ETag-conditional labels update got 412 (``bigquery_table_etag``). Observed before: the 412
    sent A into the restore path, which copied the snapshot A had read before (01-04) over B's 01-06. Now A
    writes no labels, checks the newest interval again and finds 01-06 published."""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(4)], rows=2)
    import_window(spec, gcs_client, bq_client, day(4))
    drop_days(bucket, spec, [day(5), day(6)], rows=[3, 4])
    refused_before = conformance.answered["bigquery_table_etag"]

    with at_checkpoint("publish.before_labels", lambda: import_window(spec, gcs_client, bq_client, day(6))):
        import_window(spec, gcs_client, bq_client, day(5))

    assert conformance.answered["bigquery_table_etag"] > refused_before, "A's labels update was refused (412)"
    assert published_snapshot(bq_client, spec)[0] == "20240106"
    assert days_in_clean(bq_client, spec) == {"2024-01-06": 4}


def test_an_older_copy_landing_after_a_newer_one_is_never_labelled_as_the_newer(
        services, bucket, gcs_client, bq_client, unique_name):
    """Strict-cloud defect 4, the window the ETag cannot see: run B (01-06) copied its snapshot; before B read the
    table for its labels, run A (which picked 01-05 before B recorded 01-06) copied 01-05 over it and labelled it.
    B's read then has a fresh ETag, so If-Match passes: labelling would name 01-06 over 01-05's rows, and every
    later run would trust those labels. B sees the table was modified after its copy ended (``lastModifiedTime``,
    which the conformance proxy moves on every write), writes no labels and publishes 01-06 again."""
    import threading

    from worker import checkpoints
    from worker.bigquery_client import bigquery_client
    from worker.core.gcs import storage_client

    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5), day(6)], rows=[3, 4])
    b_copied, release_b, passed_b = threading.Event(), threading.Event(), []
    main = threading.current_thread()

    def run_b() -> None:
        gcs, bq = storage_client(project_id=services.project_id), bigquery_client(project_id=services.project_id)
        import_window(spec, gcs, bq, day(6))

    b = threading.Thread(target=run_b)

    def hook(name: str) -> None:
        if threading.current_thread() is not main:
            passed_b.append(name)
            if name == "publish.copied" and not b_copied.is_set():
                b_copied.set()
                assert release_b.wait(120)
            return
        if name == "import.before_publish" and not b.is_alive() and not b_copied.is_set():
            b.start()  # A has picked 01-05; B records, loads and copies 01-06, then waits before reading
            assert b_copied.wait(120), "run B never reached its copy"
        elif name == "import.published" and not release_b.is_set():
            release_b.set()  # A copied and labelled 01-05 over B's copy; now B reads the table for its labels
            b.join(120)

    checkpoints.set_hook(hook)
    try:
        import_window(spec, gcs_client, bq_client, day(5))
    finally:
        checkpoints.set_hook(None)
        release_b.set()
    assert b_copied.is_set() and release_b.is_set() and not b.is_alive(), "the interleaving happened"
    assert passed_b.count("publish.copied") == 2, "B copied 01-06 again after finding the table changed"
    assert published_snapshot(bq_client, spec)[0] == "20240106"
    assert days_in_clean(bq_client, spec) == {"2024-01-06": 4}, "the rows are 01-06's, as the labels say"


def test_concurrent_runs_end_on_the_newest_interval(bucket, gcs_client, bq_client, unique_name):
    """Item 5: run A (01-05) picked its snapshot, then run B (01-06) recorded and published its interval, then
    A copied 01-05 over it. A re-checks after its copy and publishes 01-06 again."""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5), day(6)], rows=[3, 4])

    with at_checkpoint("import.before_publish", lambda: import_window(spec, gcs_client, bq_client, day(6))):
        import_window(spec, gcs_client, bq_client, day(5))

    assert published_snapshot(bq_client, spec)[0] == "20240106"
    assert days_in_clean(bq_client, spec) == {"2024-01-06": 4}


@pytest.mark.parametrize("mode", ["Overwrite", "Incremental"])
def test_second_launch_of_the_same_interval_while_the_first_loads(mode, bucket, gcs_client, bq_client, unique_name):
    """Item 6: two workers on one interval. Observed before: the second failed with 'Not found: table
    ...__staging_<key>' because the first dropped the shared staging table. Now each attempt has its own
    staging table; the later copy reattaches to the earlier one's, so nothing is written twice."""
    spec = make_spec(bucket.name, unique_name, mode=mode)
    for i in range(3):
        drop_days(bucket, spec, [day(5)], rows=2, seed=i, file_name=f"part{i}.parquet")
    other = {}

    def second_launch() -> None:
        other["summary"] = import_window(spec, gcs_client, bq_client, day(5))

    with at_checkpoint("load.batch_loaded", second_launch):
        first = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(other["summary"]) == {"20240105": "loaded"}
    assert statuses(first) == {"20240105": "unchanged"}, "the first found the second's copy and its record"
    assert count_rows(bq_client, spec.raw_table_id(day(5))) == 6
    assert count_rows(bq_client, spec.clean_table_id) == 6
    staging = [t.table_id for t in bq_client.list_tables(f"{spec.project_id}.{spec.raw_dataset_name}") if "staging" in t.table_id]
    assert staging == [], "both attempts dropped their own staging table"


def test_staging_table_is_created_with_an_expiry():
    """A killed worker never leaves a staging table forever. bqemulator does not store table expiry, so the
    table body the worker sends is checked here instead."""
    from datetime import UTC, datetime, timedelta

    from tests.unit.test_spec import BASE
    from worker.core.spec import ImportSpec
    from worker.loading import staging_table
    from worker.planning import plan_interval_load

    spec = ImportSpec(**{**BASE, "schema": [{"name": "a", "type": "STRING"}]})
    plan = plan_interval_load(spec, interval_start=datetime(2024, 1, 5, tzinfo=UTC), objects=[], attempt_token="abcd")
    now = datetime(2024, 1, 6, tzinfo=UTC)
    body = staging_table(spec, plan, now=now).to_api_repr()
    assert body["tableReference"]["tableId"].endswith("__staging_" + plan.load_key + "_abcd")
    assert int(body["expirationTime"]) == int((now + timedelta(days=1)).timestamp() * 1000)
    assert [f["name"] for f in body["schema"]["fields"]] == ["a"]


def _publish_copy_of(spec, suffix: str):
    """Matches the jobs.insert of the Overwrite publish copy of interval ``suffix`` (its job id prefix)."""
    def match(method: str, url: str, body: dict) -> bool:
        job_id = (body.get("jobReference") or {}).get("jobId", "")
        return method == "POST" and url.split("?")[0].endswith("/jobs") and \
            job_id.startswith(f"gcs_import_{spec.name}_{suffix}_") and "_publish_" in job_id
    return match


@pytest.mark.parametrize("emptied", [False, True])
def test_a_failed_publish_copy_restores_only_an_emptied_table(emptied, bucket, gcs_client, bq_client, unique_name):
    """BigQuery's copy is atomic: a failed publish copy leaves the clean table as it was, so nothing is restored
    over it (restoring could only copy an older snapshot over one a concurrent run published). Only where the
    failure emptied the table (bqemulator does, for a changed schema) is the previous snapshot copied back."""
    from tests.faults.bigquery_faults import BigQueryFaults, Rule, failed_job
    from worker.bigquery_client import bigquery_client
    from worker.core.errors import WorkerError

    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5), day(6)], rows=[3, 4])
    import_window(spec, gcs_client, bq_client, day(5))
    failing = failed_job("backendError", "The job encountered an internal error during execution.")

    def answer(method, url, body):
        if emptied:
            bq_client.delete_table(spec.clean_table_id)
        return failing(method, url, body)

    bq = bigquery_client(project_id=spec.project_id)
    copy_fails = Rule("publish copy fails", "https://cloud.google.com/bigquery/docs/error-messages",
                      match=_publish_copy_of(spec, "20240106"), answer=answer, times=99)
    # a restore is the publish copy of 20240105 again: refused here where it must not happen (the table kept its rows)
    restore = Rule("restore copy", "", match=_publish_copy_of(spec, "20240105"), answer=failing, times=0 if emptied else 99)
    BigQueryFaults(bq, [copy_fails, restore])
    with pytest.raises(WorkerError, match="still holds interval 20240105"):
        import_window(spec, gcs_client, bq, day(6), budget=RetryBudget(deadline_seconds=5))
    assert copy_fails.hits >= 1
    assert restore.hits == 0, "nothing is restored over a table the failed (atomic) copy left as it was"
    assert published_snapshot(bq_client, spec)[0] == "20240105"
    assert days_in_clean(bq_client, spec) == {"2024-01-05": 3}
