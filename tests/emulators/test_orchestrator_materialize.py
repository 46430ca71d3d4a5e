"""The import asset through Dagster itself: a real subprocess Pipes launch of the worker against the emulators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from localdev.samples import drop_daily_scores
from orchestrator.factories import interval_gcs_import_asset
from orchestrator.launchers import WorkerLauncher
from tests.emulators.orchestrator_helpers import make_asset_config
from worker.core.contract import (
    ALL_CHECKS,
    CHECK_ROWS_LOADED,
    META_COLUMN_SCHEMA,
    META_FILES_LOADED,
    META_INTERVALS_LOADED,
    META_PARTITION_ROW_COUNT,
    META_PARTITIONS,
    META_PER_INTERVAL,
    META_ROW_COUNT,
    META_ROWS_IN_WINDOW,
    META_TABLE_NAME,
)

DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(4)]


def materialize(asset: dg.AssetsDefinition, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [asset], instance=dg.DagsterInstance.ephemeral(), resources={"launcher": WorkerLauncher()},
        selection=[asset.key], **kwargs,
    )


def metadata_values(mat: dg.AssetMaterialization) -> dict:
    return {k: (v.value if isinstance(v, dg.MetadataValue) else v) for k, v in mat.metadata.items()}


def test_partition_run_reports_metadata_and_checks(services, bucket, bq_client, unique_name) -> None:
    drop_daily_scores(bucket, path_base="passport", days=DAYS[:2], rows_per_file=5)
    spec = make_asset_config(unique_name, bucket.name)
    asset = interval_gcs_import_asset(spec).asset

    result = materialize(asset, partition_key="2024-05-02")

    assert result.success
    (mat,) = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    assert mat.partition == "2024-05-02"
    meta = metadata_values(mat)
    assert meta[META_ROW_COUNT] == 5
    assert meta[META_TABLE_NAME] == spec.clean_table_id
    assert [r.data["interval"] for r in meta[META_PER_INTERVAL].records] == ["20240502"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == set(ALL_CHECKS)
    assert checks[CHECK_ROWS_LOADED].passed
    rows = list(bq_client.query(f"SELECT COUNT(*) AS n FROM `{spec.clean_table_id}`").result())
    assert rows[0]["n"] == 5


def test_range_run_is_one_step_and_each_partition_gets_its_own_figures(services, bucket, unique_name) -> None:
    for day, rows in zip(DAYS, (2, 3, 4), strict=False):
        drop_daily_scores(bucket, path_base="passport", days=[day], rows_per_file=rows)
    asset = interval_gcs_import_asset(make_asset_config(unique_name, bucket.name)).asset

    result = materialize(asset, tags={"dagster/asset_partition_range_start": "2024-05-01",
                                      "dagster/asset_partition_range_end": "2024-05-03"})

    assert result.success
    starts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert len(starts) == 1  # within max_partitions_per_run: one worker launch for the range
    mats = {e.event_specific_data.materialization.partition: metadata_values(e.event_specific_data.materialization)
            for e in result.get_asset_materialization_events()}
    assert sorted(mats) == ["2024-05-01", "2024-05-02", "2024-05-03"]
    # each partition its own interval's rows and status, not the window's totals
    assert {p: m[META_PARTITION_ROW_COUNT] for p, m in mats.items()} == {
        "2024-05-01": 2, "2024-05-02": 3, "2024-05-03": 4}
    assert all(m["interval_status"] == "loaded" and m[META_FILES_LOADED] == 1 for m in mats.values())
    assert mats["2024-05-02"]["raw_table"].endswith("__20240502")
    # window-level figures stay the same on every partition; the per-interval key is consumed
    assert all(m[META_INTERVALS_LOADED] == ["20240501", "20240502", "20240503"] for m in mats.values())
    assert all(m[META_ROWS_IN_WINDOW] == 9 and len(m[META_PER_INTERVAL].records) == 3 for m in mats.values())
    assert all(META_PARTITIONS not in m for m in mats.values())
    # dagster/row_count is the clean table's size after the run (Incremental: every interval)
    assert all(m[META_ROW_COUNT] == 9 for m in mats.values())
    columns = mats["2024-05-01"][META_COLUMN_SCHEMA].columns
    assert [c.name for c in columns][:3] == ["address", "score", "day"]


def test_failing_worker_fails_the_step_with_its_message(services, gcs_client, unique_name) -> None:
    missing = f"missing-{unique_name.replace('_', '-')}"
    assert gcs_client.lookup_bucket(missing) is None
    asset = interval_gcs_import_asset(make_asset_config(unique_name, missing)).asset

    result = materialize(asset, partition_key="2024-05-02", raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert missing in message, message
    assert not result.get_asset_materialization_events()


def test_transient_worker_failure_retries_the_step_then_fails_naming_the_service(services, bucket, unique_name) -> None:
    """BigQuery unreachable past the worker's deadline: a transient failure, so the step is retried
    (dg.RetryRequested) up to the launcher's transient_retries, then fails with the worker's message."""
    drop_daily_scores(bucket, path_base="passport", days=DAYS[:1], rows_per_file=2)
    asset = interval_gcs_import_asset(make_asset_config(unique_name, bucket.name)).asset
    launcher = WorkerLauncher(env={"BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:9"}, retry_deadline_seconds=1,
                              transient_retries=1, transient_retry_seconds=0)

    result = dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), resources={"launcher": launcher},
                            partition_key="2024-05-01", raise_on_error=False)

    assert not result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "BigQuery could not be reached" in str(failure.step_failure_data.error.to_string())


def test_interval_without_rows_fails_the_blocking_check(services, bucket, unique_name) -> None:
    from localdev.samples import encode_rows, score_rows, upload

    drop_daily_scores(bucket, path_base="passport", days=DAYS[:1], rows_per_file=3)
    # a header-only CSV: the file exists, the load succeeds, no row arrives
    upload(bucket, "passport/2024-05-02/scores.csv", encode_rows(score_rows(interval_start=DAYS[1], count=1), fmt="CSV")
           .split(b"\n", 1)[0] + b"\n")
    spec = make_asset_config(unique_name, bucket.name, format="CSV",
                     file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.csv")
    asset = interval_gcs_import_asset(spec).asset

    result = materialize(asset, partition_key="2024-05-02", raise_on_error=False)

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks[CHECK_ROWS_LOADED].passed
    assert not result.success  # declared blocking=True: a failed rows_loaded fails the run


def test_row_count_is_the_clean_tables_size_not_the_runs_rows(services, bucket, unique_name) -> None:
    """Incremental, two single-partition runs: the second reports both intervals' rows in the table."""
    for day, rows in zip(DAYS[:2], (2, 3), strict=True):
        drop_daily_scores(bucket, path_base="passport", days=[day], rows_per_file=rows)
    asset = interval_gcs_import_asset(make_asset_config(unique_name, bucket.name)).asset
    materialize(asset, partition_key="2024-05-01")
    second = materialize(asset, partition_key="2024-05-02")
    (mat,) = [e.event_specific_data.materialization for e in second.get_asset_materialization_events()]
    meta = metadata_values(mat)
    assert (meta[META_ROW_COUNT], meta[META_PARTITION_ROW_COUNT], meta[META_ROWS_IN_WINDOW]) == (5, 3, 3)
