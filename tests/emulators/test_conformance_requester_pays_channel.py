"""The Pipes channel over a Requester Pays bucket, through the conformance proxy (``storage_requester_pays``):
with ``pipes_gcs.billing_project`` both sides (the code server's injector and reader, the worker's context
loader and message writer) send ``userProject``; without it the bucket refuses the first call."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from localdev.samples import drop_daily_scores
from orchestrator.factories import interval_gcs_import_asset
from orchestrator.launchers import PipesGCSChannel, WorkerLauncher
from tests.emulators.orchestrator_helpers import make_asset_config
from worker.core.contract import META_PARTITION_ROW_COUNT


@pytest.fixture
def pipes_bucket(gcs_client, unique_name: str):
    return gcs_client.create_bucket(f"pipes-{unique_name.replace('_', '-')}")


def launcher(bucket_name: str, *, billing_project: str | None) -> WorkerLauncher:
    return WorkerLauncher(
        kind="subprocess", message_channel="gcs", env={"GCS_IMPORT_PIPES_INTERVAL": "0.5"},
        pipes_gcs=PipesGCSChannel(bucket=bucket_name, prefix="runs/dagster-pipes", project="test-project",
                                  poll_interval_seconds=0.5, billing_project=billing_project),
    )


def test_the_gcs_channel_bills_a_requester_pays_bucket(conformance, services, bucket, pipes_bucket, unique_name):
    conformance.rule("storage_requester_pays").mark(pipes_bucket.name)
    drop_daily_scores(bucket, path_base="passport", days=[datetime(2024, 5, 1, tzinfo=UTC)], rows_per_file=2)
    asset = interval_gcs_import_asset(make_asset_config(unique_name, bucket.name)).asset

    refused = dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), partition_key="2024-05-01",
                             resources={"launcher": launcher(pipes_bucket.name, billing_project=None)},
                             raise_on_error=False)
    assert not refused.success
    assert conformance.answered["storage_requester_pays"] >= 1  # the rule is on: no userProject, no call

    before = conformance.answered["storage_requester_pays"]
    with conformance.recording() as log:
        result = dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), partition_key="2024-05-01",
                                resources={"launcher": launcher(pipes_bucket.name, billing_project="test-project")})
    assert result.success
    mats = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    assert [m.metadata[META_PARTITION_ROW_COUNT].value for m in mats] == [2]  # the worker's report came through
    assert conformance.answered["storage_requester_pays"] == before
    channel_calls = [r for r in log if f"/b/{pipes_bucket.name}/" in r.target]
    assert channel_calls and all("userProject=test-project" in r.target for r in channel_calls), channel_calls
    # uploads (the context, the worker's message chunks) and reads (the context, the chunks), all billed
    assert {"POST", "GET"} <= {r.method for r in channel_calls}
