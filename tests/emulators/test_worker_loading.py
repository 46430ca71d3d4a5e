"""Loading and modes: Overwrite and Incremental over a window of pending intervals, job reattach, batch splits."""

from __future__ import annotations

from datetime import UTC

import pytest
from google.api_core.exceptions import Conflict, GoogleAPIError

from tests.emulators.worker_helpers import (
    cli_import,
    count_rows,
    day,
    days_in_clean,
    drop_days,
    import_window,
    ledger_rows,
    make_spec,
    rows_per_interval,
    statuses,
    table_exists,
    table_rows,
    write_spec,
)
from worker.bigquery_jobs import run_or_reattach
from worker.core.gcs import list_objects
from worker.core.matching import match_objects
from worker.core.retries import RetryBudget
from worker.ledger import asset_id
from worker.loading import load_interval, load_job_config
from worker.planning import plan_interval_load
from worker.publishing import published_snapshot

BUDGET = RetryBudget(deadline_seconds=30)

DAYS = [day(5), day(6), day(7)]
ROWS = [3, 4, 6]  # different per interval, so a row from the wrong interval shows up in the counts


def test_overwrite_loads_three_pending_intervals_in_one_run(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Overwrite")
    drop_days(bucket, spec, DAYS, rows=ROWS)

    summary = import_window(spec, gcs_client, bq_client, day(5), day(8))

    assert statuses(summary) == {"20240105": "loaded", "20240106": "loaded", "20240107": "loaded"}
    # one raw table per interval, each with exactly its own file's rows
    for d, n in zip(DAYS, ROWS, strict=True):
        raw = spec.raw_table_id(d)
        assert count_rows(bq_client, raw) == n
        assert days_in_clean_raw(bq_client, raw) == {f"{d:%Y-%m-%d}": n}
    assert [r.rows for r in summary.intervals] == ROWS
    # the clean table is the snapshot of the newest interval only, labelled with it
    assert days_in_clean(bq_client, spec) == {"2024-01-07": 6}
    assert published_snapshot(bq_client, spec) == ("20240107", summary.intervals[-1].digest)
    assert summary.published == "20240107"
    # the ledger records each loaded object with its generation and its interval's rows
    ledger = ledger_rows(bq_client, spec)
    assert [(r["asset"], r["interval_start"].astimezone(UTC), r["interval_rows"]) for r in ledger] == [
        (asset_id(spec), d, n) for d, n in zip(DAYS, ROWS, strict=True)
    ]
    assert all(r["deleted_at"] is None for r in ledger)
    # no staging table survives a successful load
    assert not [t.table_id for t in bq_client.list_tables(spec.raw_dataset_name) if "__staging_" in t.table_id]


def days_in_clean_raw(bq_client, table_id):
    project, dataset, table = table_id.split(".")
    rows = bq_client.query(f"SELECT day, COUNT(*) AS n FROM `{project}`.`{dataset}`.`{table}` GROUP BY day").result()
    return {r["day"]: int(r["n"]) for r in rows}


def test_incremental_tags_each_interval_rows(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, DAYS, rows=ROWS)

    summary = import_window(spec, gcs_client, bq_client, day(5), day(8))

    assert statuses(summary) == {"20240105": "loaded", "20240106": "loaded", "20240107": "loaded"}
    assert rows_per_interval(bq_client, spec) == dict(zip(DAYS, ROWS, strict=True))
    # each row's tag is the interval its file belongs to (the sample rows carry their day)
    project, dataset, table = spec.clean_table_id.split(".")
    mismatched = bq_client.query(
        f"SELECT COUNT(*) AS n FROM `{project}`.`{dataset}`.`{table}` "
        "WHERE FORMAT_TIMESTAMP('%Y-%m-%d', _interval_start) != day"
    ).result()
    assert next(iter(mismatched))["n"] == 0
    assert [f.name for f in bq_client.get_table(spec.clean_table_id).schema] == ["address", "score", "day", "_interval_start"]
    # Incremental never labels a snapshot
    assert published_snapshot(bq_client, spec) is None


def test_incremental_custom_interval_column(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", interval_column="loaded_for")
    drop_days(bucket, spec, DAYS[:2], rows=ROWS[:2])

    import_window(spec, gcs_client, bq_client, day(5), day(7))

    assert rows_per_interval(bq_client, spec) == {day(5): 3, day(6): 4}


def test_window_with_gaps_loads_what_is_there_as_subprocess(bucket, bq_client, unique_name, tmp_path):
    """The real CLI: JSON summary on stdout, exit 0, an empty interval in the middle reported as no_files."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5), day(7)], rows=[3, 6])

    result = cli_import(write_spec(tmp_path, spec), "2024-01-05", "2024-01-08")

    assert result.returncode == 0, result.stderr
    out = result.json
    assert out["action"] == "import" and out["asset"] == spec.name
    assert [(i["interval"], i["status"], i["rows"]) for i in out["intervals"]] == [
        ("20240105", "loaded", 3), ("20240106", "no_files", 0), ("20240107", "loaded", 6)
    ]
    assert out["metadata"]["dagster/row_count"] == 9
    assert out["metadata"]["intervals_without_files"] == ["20240106"]
    assert {c["check_name"]: c["passed"] for c in out["checks"]}["rows_loaded"] is False
    assert rows_per_interval(bq_client, spec) == {day(5): 3, day(7): 6}
    assert "Listing gs://" in result.stderr  # progress goes to stderr, stdout stays JSON


def test_load_interval_twice_reattaches_and_does_not_duplicate(bucket, gcs_client, bq_client, unique_name):
    """Same plan twice (a retried worker): the finished copy job is found by its deterministic id and reused,
    so no load job runs again."""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=4)
    import_window(spec, gcs_client, bq_client, day(4))  # creates the datasets (no files for 01-04)
    objects = match_objects(spec, list_objects(gcs_client, spec)).by_interval[day(5)]
    plan = plan_interval_load(spec, interval_start=day(5), objects=objects)

    first = load_interval(bq_client, spec, plan, budget=BUDGET)
    second = load_interval(bq_client, spec, plan, budget=BUDGET)

    assert first.reattached == 0
    assert len(first.job_ids) == 2  # one load job + the copy job
    assert second.reattached == 1
    assert second.job_ids == first.job_ids[-1:]  # reattached to the copy that already filled the raw table
    assert count_rows(bq_client, plan.raw_table_id) == 4
    assert not table_exists(bq_client, plan.staging_table_id)


def test_batch_split_loads_every_file(bucket, gcs_client, bq_client, unique_name):
    """Five files with at most two URIs per job: three load jobs (WRITE_TRUNCATE then two appends) into staging."""
    spec = make_spec(bucket.name, unique_name)
    for i in range(5):
        drop_days(bucket, spec, [day(5)], rows=i + 1, seed=i, file_name=f"part{i}.parquet")
    import_window(spec, gcs_client, bq_client, day(4))  # creates the datasets
    objects = match_objects(spec, list_objects(gcs_client, spec)).by_interval[day(5)]
    plan = plan_interval_load(spec, interval_start=day(5), objects=objects, max_uris=2)
    assert [len(b) for b in plan.batches] == [2, 2, 1]

    done: list[str] = []
    outcome = load_interval(bq_client, spec, plan, budget=BUDGET, on_job_done=lambda job_id, again: done.append(job_id))

    assert len(done) == 3 and len(outcome.job_ids) == 4  # three loads, one copy
    assert count_rows(bq_client, plan.raw_table_id) == 1 + 2 + 3 + 4 + 5
    # a second run reattaches to the finished copy (the raw table is complete) and still holds each row once
    again = load_interval(bq_client, spec, plan, budget=BUDGET)
    assert again.reattached == 1 and again.job_ids == outcome.job_ids[-1:]
    assert count_rows(bq_client, plan.raw_table_id) == 15
    # sample addresses are distinct across seeds 0..4, so 15 distinct rows means every file once
    assert len(set(table_rows(bq_client, plan.raw_table_id))) == 15


def test_several_files_per_interval_through_run_import(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5)], rows=2, seed=1, file_name="a.parquet")
    drop_days(bucket, spec, [day(5)], rows=3, seed=2, file_name="b.parquet")

    summary = import_window(spec, gcs_client, bq_client, day(5))

    assert summary.intervals[0].files == 2
    assert rows_per_interval(bq_client, spec) == {day(5): 5}
    assert {r["object_name"] for r in ledger_rows(bq_client, spec)} == {"drops/2024-01-05/a.parquet", "drops/2024-01-05/b.parquet"}


def test_run_or_reattach_moves_past_a_failed_attempt(bq_client, unique_name):
    """A failed job id is history: the next call starts attempt 1; a call after that reattaches to attempt 1."""
    base = f"test_reattach_{unique_name}"
    bq_client.create_dataset(f"test-project.r_{unique_name}")

    def failing(job_id):
        return bq_client.query("SELECT * FROM `test-project`.`no_such_dataset`.`no_such_table`", job_id=job_id)

    def working(job_id):
        return bq_client.query("SELECT 1 AS x", job_id=job_id)

    with pytest.raises(GoogleAPIError):
        run_or_reattach(bq_client, base, failing, budget=BUDGET)
    job, reattached = run_or_reattach(bq_client, base, working, budget=BUDGET)
    assert (job.job_id, reattached) == (f"{base}_a1", False)
    job, reattached = run_or_reattach(bq_client, base, working, budget=BUDGET)
    assert (job.job_id, reattached) == (f"{base}_a1", True)


def test_rerun_after_a_worker_died_before_the_copy_loads_again(bucket, gcs_client, bq_client, unique_name):
    """A worker that died after its load job, before the copy: its staging table is its own (and expires);
    the re-run is a new attempt with its own staging table and load jobs, and loads the interval once.

    Simulated here: the load job ran under attempt ``t0``'s ids, then the staging table disappeared (its
    one-day expiry; bqemulator does not store expiries, so it is deleted by hand).
    """
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=4)
    import_window(spec, gcs_client, bq_client, day(4))  # creates the datasets
    objects = match_objects(spec, list_objects(gcs_client, spec)).by_interval[day(5)]
    plan = plan_interval_load(spec, interval_start=day(5), objects=objects)
    bq_client.load_table_from_uri(list(plan.batches[0]), plan.staging_table_id, job_id=f"{plan.load_job_base(0, spec=spec)}_a0",
                                  job_config=load_job_config(spec, first_batch=True)).result()
    bq_client.delete_table(plan.staging_table_id)

    summary = import_window(spec, gcs_client, bq_client, day(5))  # raises WorkerError if the interval fails

    assert statuses(summary) == {"20240105": "loaded"}
    assert count_rows(bq_client, plan.raw_table_id) == 4


def test_run_or_reattach_waits_on_a_job_another_worker_started(bq_client, unique_name):
    """BigQuery answers 409 Conflict when another worker created the job id between our lookup and our insert.

    Emulator divergence: bqemulator accepts a reused job id without a 409, so the race is simulated: the
    start function creates the job (as the other worker would) and then raises the Conflict BigQuery would.
    """
    base = f"test_conflict_{unique_name}"

    def other_worker_won(job_id):
        bq_client.query("SELECT 2 AS x", job_id=job_id).result()
        raise Conflict(f"Already Exists: Job test-project:US.{job_id}")

    job, reattached = run_or_reattach(bq_client, base, other_worker_won, budget=BUDGET)

    assert (job.job_id, reattached) == (f"{base}_a0", True), "waited on the other worker's job"
    assert [tuple(r.values()) for r in job.result()] == [(2,)]


def test_a_staging_table_whose_insert_answer_was_lost_is_this_attempts_own(bucket, gcs_client, bq_client, unique_name):
    """tables.insert applied but its answer lost (the outage test under concurrent rounds hit it): the retried
    insert answers 409 Already Exists. The staging table carries this attempt's token, so it is its own: the load
    goes on (it failed the interval before)."""
    from datetime import datetime

    from worker.loading import staging_table

    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=4)
    import_window(spec, gcs_client, bq_client, day(4))  # creates the datasets
    objects = match_objects(spec, list_objects(gcs_client, spec)).by_interval[day(5)]
    plan = plan_interval_load(spec, interval_start=day(5), objects=objects)
    bq_client.create_table(staging_table(spec, plan, now=datetime.now(UTC)))  # the lost insert's table
    with pytest.raises(Conflict):  # what the retried insert meets
        bq_client.create_table(staging_table(spec, plan, now=datetime.now(UTC)))

    outcome = load_interval(bq_client, spec, plan, budget=BUDGET)

    assert outcome.rows == 4 and count_rows(bq_client, plan.raw_table_id) == 4
    assert not table_exists(bq_client, plan.staging_table_id)
