"""Clean-up: the asset sensor requests the job; the job's op has the worker delete only what retention allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from localdev.samples import drop_daily_scores, upload
from orchestrator.factories import interval_gcs_import_asset
from orchestrator.launchers import WorkerLauncher
from tests.emulators.orchestrator_helpers import make_asset_config

DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(4)]


def names(bucket) -> set[str]:
    return {blob.name for blob in bucket.client.list_blobs(bucket.name)}


def test_clean_up_sensor_and_job_delete_only_what_retention_allows(services, bucket, unique_name) -> None:
    spec = make_asset_config(unique_name, bucket.name, retention_days=2)
    response = interval_gcs_import_asset(spec)
    asset = response.asset
    (job,) = response.jobs
    (sensor,) = [s for s in response.sensors if s.name == f"{spec.name}_clean_up_sensor"]
    launcher = WorkerLauncher()
    instance = dg.DagsterInstance.ephemeral()
    drop_daily_scores(bucket, path_base="passport", days=DAYS)
    upload(bucket, "passport/README.txt", b"never matched, never deleted")
    everything = names(bucket)

    # load 05-02..05-04 (05-01 stays unloaded) in one range run
    loaded = dg.materialize(
        [asset], instance=instance, resources={"launcher": launcher}, selection=[asset.key],
        tags={"dagster/asset_partition_range_start": "2024-05-02", "dagster/asset_partition_range_end": "2024-05-04"},
    )
    assert loaded.success

    # the asset sensor sees the materialization and requests the clean-up job, once
    defs = dg.Definitions(assets=[asset], jobs=[job], sensors=[sensor], resources={"launcher": launcher})
    context = dg.build_sensor_context(instance=instance, sensor_name=sensor.name, definitions=defs)
    data = sensor.evaluate_tick(context)
    assert len(data.run_requests) == 1 and sensor.job_name == job.name
    again = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, sensor_name=sensor.name, definitions=defs, cursor=data.cursor)
    )
    assert not again.run_requests

    def clean_up(**config) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            run_config={"ops": {f"{spec.name}_retention": {"config": config}}},
            resources={"launcher": launcher}, instance=instance,
        )

    # as of 05-06 with 2 days: intervals that ended by 05-04 00:00 are past retention
    as_of = "2024-05-06T00:00:00+00:00"
    assert clean_up(dry_run=True, as_of=as_of).success
    assert names(bucket) == everything

    assert clean_up(as_of=as_of).success
    deleted = {"passport/2024-05-02/scores.parquet", "passport/2024-05-03/scores.parquet"}
    # 05-01: never loaded; 05-04: within retention; README: never matched
    assert names(bucket) == everything - deleted

    # a retention run that fails (the worker cannot reach the bucket) fails the job with the worker's reason;
    # a later as_of puts 05-04 past retention, so the run must list (a run with nothing recorded to delete
    # does not list at all)
    bucket.client.bucket(bucket.name).delete(force=True)
    failed = job.execute_in_process(
        run_config={"ops": {f"{spec.name}_retention": {"config": {"as_of": "2024-05-30T00:00:00+00:00"}}}},
        resources={"launcher": launcher}, instance=instance, raise_on_error=False,
    )
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert bucket.name in failure.step_failure_data.error.message
