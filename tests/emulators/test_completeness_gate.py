"""The completeness gate (``complete_when``) through the real worker, the listing sensor and Dagster, against the emulators.

The marker ``{day}/_success.parquet`` also matches ``file_match`` (``[a-z0-9_]+\\.parquet``): a marker is never
loaded all the same (it is an empty object: BigQuery would refuse it as Parquet).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from localdev.samples import drop_daily_scores, upload
from orchestrator.factories import interval_gcs_import_asset
from orchestrator.launchers import WorkerLauncher
from tests.emulators.orchestrator_helpers import make_asset_config
from tests.emulators.test_orchestrator_sensor import Ticker, lookback_reaching
from tests.emulators.worker_helpers import (
    cli_import,
    count_rows,
    day,
    drop_days,
    import_window,
    ledger_rows,
    make_spec,
    object_names,
    retain,
    run_cli,
    statuses,
    table_exists,
    write_spec,
)
from worker.core.errors import TransientError, WorkerError

MARKER = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/_success\.parquet"


def mark(bucket, d: datetime, path_base: str = "drops"):
    """The interval's completeness marker: an empty object."""
    return upload(bucket, f"{path_base}/{d:%Y-%m-%d}/_success.parquet", b"")


def test_marker_missing_fails_the_run_with_one_line_and_loads_nothing(bucket, bq_client, unique_name, tmp_path):
    spec = make_spec(bucket.name, unique_name, complete_when={"marker_match": MARKER})
    drop_days(bucket, spec, [day(5)])

    failed = cli_import(write_spec(tmp_path, spec), "2024-01-05")

    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert failed.returncode == 1 and len(errors) == 1, failed.stderr
    assert "20240105: incomplete (marker missing): not loaded" in errors[0]
    assert "load_incomplete" in errors[0], "the line names the way out"
    assert not table_exists(bq_client, spec.raw_table_id(day(5)))
    assert ledger_rows(bq_client, spec) == []

    loaded = run_cli(["import", "--spec", str(write_spec(tmp_path, spec)), "--start", "2024-01-05", "--load-incomplete"])
    assert loaded.returncode == 0, loaded.stderr
    assert [i["status"] for i in loaded.json["intervals"]] == ["loaded"]
    assert "is incomplete (marker missing): loaded anyway" in loaded.stderr
    assert count_rows(bq_client, spec.clean_table_id) == 5


def test_an_incomplete_interval_is_not_transient_and_the_others_load(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", complete_when={"marker_match": MARKER})
    drop_days(bucket, spec, [day(5), day(6)], rows=[2, 3])
    mark(bucket, day(6))

    with pytest.raises(WorkerError) as raised:
        import_window(spec, gcs_client, bq_client, day(5), day(7))

    assert not isinstance(raised.value, TransientError), "only the producer completes it: a retry would not help"
    assert "1 of 2 interval(s)" in str(raised.value) and "20240105: incomplete (marker missing)" in str(raised.value)
    assert count_rows(bq_client, spec.clean_table_id) == 3, "the complete interval loaded; the incomplete one did not"


def test_a_marker_closes_the_interval_is_recorded_with_its_generation_and_never_loaded(
        bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, complete_when={"marker_match": MARKER})
    drop_days(bucket, spec, [day(5)], rows=4)
    marker = mark(bucket, day(5))

    summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert summary.intervals[0].files == 1, "the marker is not a data file, though file_match matches it"
    assert count_rows(bq_client, spec.clean_table_id) == 4
    rows = {r["object_name"]: r for r in ledger_rows(bq_client, spec)}
    assert rows[marker.name]["job_id"] == "marker" and rows[marker.name]["generation"] == marker.generation
    assert rows["drops/2024-01-05/scores.parquet"]["job_id"] != "marker"

    # the same files again: unchanged (a marker never makes an interval look changed)
    assert statuses(import_window(spec, gcs_client, bq_client, day(5))) == {"20240105": "unchanged"}


def test_a_marker_arriving_after_a_load_incomplete_is_recorded_without_a_reload(bucket, gcs_client, bq_client,
                                                                                unique_name, tmp_path):
    spec = make_spec(bucket.name, unique_name, complete_when={"marker_match": MARKER})
    drop_days(bucket, spec, [day(5)])
    assert run_cli(["import", "--spec", str(write_spec(tmp_path, spec)), "--start", "2024-01-05", "--load-incomplete"]).returncode == 0
    marker = mark(bucket, day(5))

    summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "unchanged"}
    assert {r["object_name"]: r["generation"] for r in ledger_rows(bq_client, spec)
            if r["job_id"] == "marker"} == {marker.name: marker.generation}


def test_min_files_waits_for_the_count(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, complete_when={"min_files": 2})
    drop_days(bucket, spec, [day(5)], rows=2, file_name="a.parquet")
    with pytest.raises(WorkerError, match=r"20240105: incomplete \(1 of 2 files\)"):
        import_window(spec, gcs_client, bq_client, day(5))
    drop_days(bucket, spec, [day(5)], rows=3, file_name="b.parquet")
    assert statuses(import_window(spec, gcs_client, bq_client, day(5))) == {"20240105": "loaded"}
    assert count_rows(bq_client, spec.clean_table_id) == 5


def test_quiet_for_waits_for_the_newest_file_to_settle(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, complete_when={"quiet_for": "3s"})
    drop_days(bucket, spec, [day(5)])
    uploaded = time.monotonic()
    with pytest.raises(WorkerError, match=r"incomplete \(newest file \d seconds old, 3 seconds required\)"):
        import_window(spec, gcs_client, bq_client, day(5))
    time.sleep(max(0.0, 3.5 - (time.monotonic() - uploaded)))
    assert statuses(import_window(spec, gcs_client, bq_client, day(5))) == {"20240105": "loaded"}


def test_retention_deletes_the_marker_after_the_last_loaded_file(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3,
                     complete_when={"marker_match": MARKER})
    blobs = drop_days(bucket, spec, [day(5), day(6)])
    markers = {d: mark(bucket, d) for d in (day(5), day(6))}
    import_window(spec, gcs_client, bq_client, day(5), day(7))
    # 01-06's loaded file is re-uploaded: a loaded file of it stays, so its marker stays too
    kept = drop_days(bucket, spec, [day(6)], rows=1, seed=3)[day(6)]

    dry = retain(spec, gcs_client, bq_client, as_of=datetime(2024, 2, 1, tzinfo=UTC), dry_run=True)
    assert [o.name for o in dry.outcome.plan.markers] == [markers[day(5)].name]
    summary = retain(spec, gcs_client, bq_client, as_of=datetime(2024, 2, 1, tzinfo=UTC))

    assert [o.name for o in summary.outcome.deleted] == [blobs[day(5)].name], "a marker is not counted as data"
    assert [o.name for o in summary.outcome.markers_deleted] == [markers[day(5)].name]
    assert object_names(bucket) == {kept.name, markers[day(6)].name}
    deleted = {r["object_name"] for r in ledger_rows(bq_client, spec) if r["deleted_at"] is not None}
    assert deleted == {blobs[day(5)].name, markers[day(5)].name}


# -- the listing sensor and Dagster ----------------------------------------------------------------------------------

DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(3)]
SENSOR_MARKER = r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/_SUCCESS"


def test_listing_sensor_requests_only_complete_partitions_and_rechecks_waiting_ones(services, bucket, unique_name):
    spec = make_asset_config(unique_name, bucket.name, sensor_lookback=lookback_reaching(DAYS[0]),
                             complete_when={"marker_match": SENSOR_MARKER, "quiet_for": "3s"})
    response = interval_gcs_import_asset(spec)
    (sensor,) = [s for s in response.sensors if s.name == f"{spec.name}_new_files_sensor"]
    ticker = Ticker(sensor, response.asset)
    drop_daily_scores(bucket, path_base="passport", days=DAYS[:2], rows_per_file=2)
    upload(bucket, f"passport/{DAYS[0]:%Y-%m-%d}/_SUCCESS", b"")
    uploaded = time.monotonic()

    assert ticker.tick() == [], "both too fresh for quiet_for; 05-02 has no marker either"
    time.sleep(max(0.0, 3.5 - (time.monotonic() - uploaded)))
    # nothing new uploaded: the waiting partitions are checked again; 05-01 is complete now, 05-02 still waits
    assert [r.partition_key for r in ticker.tick()] == ["2024-05-01"]
    assert [r.partition_key for r in ticker.tick()] == [], "requested once; 05-02 still has no marker"
    upload(bucket, f"passport/{DAYS[1]:%Y-%m-%d}/_SUCCESS", b"")
    assert [r.partition_key for r in ticker.tick()] == ["2024-05-02"], "a marker alone completes a waiting partition"
    assert ticker.tick() == []


def test_op_config_load_incomplete_reaches_the_worker(services, bucket, bq_client, unique_name):
    spec = make_asset_config(unique_name, bucket.name, complete_when={"marker_match": SENSOR_MARKER})
    drop_daily_scores(bucket, path_base="passport", days=DAYS[:1], rows_per_file=3)
    asset = interval_gcs_import_asset(spec).asset

    def materialize(**kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), resources={"launcher": WorkerLauncher()},
                              partition_key="2024-05-01", raise_on_error=False, **kwargs)

    refused = materialize()
    assert not refused.success
    assert "incomplete (marker missing)" in str(refused.failure_data_for_node(asset.op.name).error)
    assert not [e for e in refused.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY], \
        "an incomplete interval is not transient: the step is not retried"
    assert not table_exists(bq_client, spec.clean_table_id)

    loaded = materialize(run_config={"ops": {asset.op.name: {"config": {"load_incomplete": True}}}})
    assert loaded.success
    (mat,) = [e.event_specific_data.materialization for e in loaded.get_asset_materialization_events()]
    assert mat.metadata["interval_status"].value == "loaded"
    assert count_rows(bq_client, spec.clean_table_id) == 3
