"""Pipes over GCS: the launcher injects the context into a GCS prefix and reads the worker's messages from
there (dagster-gcp's PipesGCSContextInjector and PipesGCSMessageReader), against the GCS emulator.

The same reader serves every kind; the Docker suite runs it with the container launcher
(tests/docker/test_worker_container.py), Kubernetes defaults to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from localdev.samples import drop_daily_scores
from orchestrator.factories import interval_gcs_import_asset
from orchestrator.launchers import PipesGCSChannel, WorkerLauncher
from tests.emulators.orchestrator_helpers import make_asset_config
from worker.core.contract import CHECK_ROWS_LOADED, META_PARTITION_ROW_COUNT, META_ROW_COUNT

DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(2)]


@pytest.fixture
def pipes_bucket(gcs_client, unique_name: str):
    return gcs_client.create_bucket(f"pipes-{unique_name.replace('_', '-')}")


def gcs_launcher(bucket_name: str, *, env: dict[str, str] | None = None, **overrides) -> WorkerLauncher:
    return WorkerLauncher(
        kind="subprocess", message_channel="gcs", env={"GCS_IMPORT_PIPES_INTERVAL": "0.5", **(env or {})},
        pipes_gcs=PipesGCSChannel(bucket=bucket_name, prefix="runs/dagster-pipes", project="test-project",
                                  poll_interval_seconds=0.5),
        **overrides,
    )


def test_a_run_over_the_gcs_channel_reports_everything_and_writes_only_under_the_prefix(
    services, bucket, pipes_bucket, unique_name,
) -> None:
    for day, rows in zip(DAYS, (2, 3), strict=True):
        drop_daily_scores(bucket, path_base="passport", days=[day], rows_per_file=rows)
    asset = interval_gcs_import_asset(make_asset_config(unique_name, bucket.name)).asset
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [asset], instance=instance, resources={"launcher": gcs_launcher(pipes_bucket.name)},
        selection=[asset.key],
        tags={"dagster/asset_partition_range_start": "2024-05-01", "dagster/asset_partition_range_end": "2024-05-02"},
    )
    assert result.success
    mats = {e.event_specific_data.materialization.partition: e.event_specific_data.materialization
            for e in result.get_asset_materialization_events()}
    assert {p: m.metadata[META_PARTITION_ROW_COUNT].value for p, m in mats.items()} == {"2024-05-01": 2, "2024-05-02": 3}
    assert mats["2024-05-01"].metadata[META_ROW_COUNT].value == 5
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks[CHECK_ROWS_LOADED] is True
    # the worker's log lines came through the channel too
    logs = [record.user_message for record in instance.all_logs(result.run_id)]
    assert any("interval 20240502: loaded" in m for m in logs), logs
    names = [b.name for b in pipes_bucket.list_blobs()]
    assert names, "the worker's messages should be in the pipes bucket"
    assert all(n.startswith("runs/dagster-pipes/messages/") for n in names), names  # nothing outside the prefix
    assert not any(n.endswith("context.json") for n in names)  # the context is deleted after the run


def test_a_failing_worker_over_the_gcs_channel_fails_with_its_message(services, pipes_bucket, unique_name) -> None:
    missing = f"missing-{unique_name.replace('_', '-')}"
    asset = interval_gcs_import_asset(make_asset_config(unique_name, missing)).asset
    result = dg.materialize(
        [asset], instance=dg.DagsterInstance.ephemeral(), resources={"launcher": gcs_launcher(pipes_bucket.name)},
        selection=[asset.key], partition_key="2024-05-01", raise_on_error=False,
    )
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert missing in message and "The import worker (subprocess) failed" in message, message


def test_a_transient_failure_over_the_gcs_channel_is_retried(services, bucket, pipes_bucket, unique_name) -> None:
    """BigQuery unreachable past the worker's deadline: the worker's failure report comes back through the
    GCS channel's reader even though the step failed, and the step is retried."""
    drop_daily_scores(bucket, path_base="passport", days=DAYS[:1], rows_per_file=2)
    asset = interval_gcs_import_asset(make_asset_config(unique_name, bucket.name)).asset
    launcher = gcs_launcher(pipes_bucket.name, env={"BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:9"},
                            retry_deadline_seconds=1, transient_retries=1, transient_retry_seconds=0)
    result = dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), resources={"launcher": launcher},
                            selection=[asset.key], partition_key="2024-05-01", raise_on_error=False)
    assert not result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "BigQuery could not be reached" in message, message
