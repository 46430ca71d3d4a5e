"""``arrival_to_queryable_seconds`` on each partition's materialization, and the ``arrival_to_queryable`` check,
through Dagster with a real subprocess Pipes launch of the worker against the emulators."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dagster as dg

from localdev.samples import drop_daily_scores
from orchestrator.factories import SourceMode, interval_gcs_import_asset
from orchestrator.factories.checks import CHECK_ARRIVAL_TO_QUERYABLE
from tests.emulators.orchestrator_helpers import make_asset_config
from tests.emulators.test_orchestrator_materialize import materialize, metadata_values
from worker.core.contract import META_ARRIVAL_TO_QUERYABLE

DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(2)]
RANGE = {"dagster/asset_partition_range_start": "2024-05-01", "dagster/asset_partition_range_end": "2024-05-02"}


def _by_partition(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {e.event_specific_data.materialization.partition: metadata_values(e.event_specific_data.materialization)
            for e in result.get_asset_materialization_events()}


def test_each_loaded_partition_carries_its_arrival_to_queryable_and_the_check_judges_it(services, bucket,
                                                                                         unique_name) -> None:
    started = time.monotonic()
    drop_daily_scores(bucket, path_base="passport", days=DAYS, rows_per_file=3)
    asset = interval_gcs_import_asset(make_asset_config(unique_name, bucket.name, max_arrival_to_queryable="5m")).asset

    result = materialize(asset, tags=RANGE)
    wall = time.monotonic() - started

    assert result.success
    mats = _by_partition(result)
    values = {p: m[META_ARRIVAL_TO_QUERYABLE] for p, m in mats.items()}
    assert sorted(values) == ["2024-05-01", "2024-05-02"]
    # from the upload (GCS updated) to the publish's end: after the upload, within this test's wall time
    assert all(0 <= v < wall for v in values.values()), (values, wall)
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_ARRIVAL_TO_QUERYABLE]
    assert check.passed and check.metadata["intervals_measured"].value == 2
    assert check.metadata[META_ARRIVAL_TO_QUERYABLE].value == max(values.values())

    # nothing new: no arrival to measure, so no value on the partition, and the check has nothing to judge
    again = materialize(asset, partition_key="2024-05-02")
    (mat,) = _by_partition(again).values()
    assert mat["interval_status"] == "unchanged" and META_ARRIVAL_TO_QUERYABLE not in mat
    (check,) = [e for e in again.get_asset_check_evaluations() if e.check_name == CHECK_ARRIVAL_TO_QUERYABLE]
    assert check.passed and check.metadata["intervals_measured"].value == 0


def test_overwrite_measures_only_the_interval_the_snapshot_published(services, bucket, unique_name) -> None:
    started = time.monotonic()
    drop_daily_scores(bucket, path_base="passport", days=DAYS, rows_per_file=3)
    config = make_asset_config(unique_name, bucket.name, mode=SourceMode.Overwrite)
    asset = interval_gcs_import_asset(config).asset

    result = materialize(asset, tags=RANGE)
    wall = time.monotonic() - started

    assert result.success
    mats = _by_partition(result)
    # the older interval was loaded into its raw table, never into the clean table (the snapshot is the newest)
    assert mats["2024-05-01"]["interval_status"] == "loaded" and META_ARRIVAL_TO_QUERYABLE not in mats["2024-05-01"]
    assert 0 <= mats["2024-05-02"][META_ARRIVAL_TO_QUERYABLE] < wall
    # without max_arrival_to_queryable there is no such check
    assert CHECK_ARRIVAL_TO_QUERYABLE not in {e.check_name for e in result.get_asset_check_evaluations()}
