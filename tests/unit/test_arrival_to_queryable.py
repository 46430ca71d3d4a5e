"""``arrival_to_queryable_seconds``: measured per interval by the worker, re-keyed per partition, judged by the
optional ``arrival_to_queryable`` check (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from orchestrator.factories.checks import CHECK_ARRIVAL_TO_QUERYABLE, arrival_check_result
from orchestrator.factories.partition_metadata import metadata_by_partition
from tests.unit.test_factory_cursor import spec as asset_config
from worker.core.contract import META_ARRIVAL_TO_QUERYABLE, META_PARTITIONS, IntervalStatus
from worker.core.records import ObjectInfo, PendingKey
from worker.core.spec import SpecError
from worker.interval_import import IntervalLoad
from worker.planning import plan_interval_load
from worker.reporting import import_summary_json, partition_figures
from worker.results import ImportSummary, IntervalResult, LoadOutcome

DAY = datetime(2024, 5, 1, tzinfo=UTC)
KEY = dg.AssetKey(["gitcoin", "passport_scores"])


def result(status: IntervalStatus, *, updated: datetime | None = None, queryable: datetime | None = None,
           start: datetime = DAY) -> IntervalResult:
    return IntervalResult(interval_start=start, status=status, suffix=f"{start:%Y%m%d}", newest_updated=updated,
                          queryable_at=queryable)


def test_seconds_from_the_newest_update_to_the_publish_end_only_when_both_are_known() -> None:
    upload = datetime(2024, 5, 2, 3, 0, 0, tzinfo=UTC)
    assert result(IntervalStatus.LOADED, updated=upload,
                  queryable=upload + timedelta(seconds=41.2345)).arrival_to_queryable_seconds == 41.234
    assert result(IntervalStatus.LOADED, updated=upload).arrival_to_queryable_seconds is None  # not published
    assert result(IntervalStatus.UNCHANGED, queryable=upload).arrival_to_queryable_seconds is None


def test_a_load_starts_the_clock_at_its_newest_object_that_holds_rows() -> None:
    older, newer, newest_skipped = (DAY + timedelta(hours=h) for h in (1, 2, 3))
    objects = [ObjectInfo(name=f"passport/2024-05-01/{n}.parquet", generation=1, size=1, updated=u)
               for n, u in (("a", older), ("b", newer), ("c", newest_skipped))]
    spec = asset_config()
    plan = plan_interval_load(spec, interval_start=DAY, objects=objects, attempt_token="t")
    load = IntervalLoad(start=DAY, plan=plan, key=PendingKey(copy_job_base="j", staging_table_id="s", append=False),
                        recorded=None, result=result(IntervalStatus.NO_FILES),
                        outcome=LoadOutcome(rows=3, job_ids=("j1",), reattached=0, schema=()),
                        skipped=frozenset({"passport/2024-05-01/c.parquet"}))
    load.finish()
    assert load.result.status is IntervalStatus.LOADED and load.result.newest_updated == newer


def test_the_figures_carry_it_only_for_intervals_loaded_and_published() -> None:
    upload = datetime(2024, 5, 3, tzinfo=UTC)
    summary = ImportSummary(spec=asset_config(), window_start=DAY, window_end=DAY + timedelta(days=2))
    summary.add_interval(result(IntervalStatus.LOADED, updated=upload, queryable=upload + timedelta(seconds=30)))
    summary.add_interval(result(IntervalStatus.UNCHANGED, start=DAY + timedelta(days=1)))
    figures = partition_figures(summary)
    assert figures[DAY.isoformat()][META_ARRIVAL_TO_QUERYABLE] == 30.0
    assert META_ARRIVAL_TO_QUERYABLE not in figures[(DAY + timedelta(days=1)).isoformat()]
    assert [i[META_ARRIVAL_TO_QUERYABLE] for i in import_summary_json(summary)["intervals"]] == [30.0, None]

    out = metadata_by_partition(figures, dg.DailyPartitionsDefinition(start_date="2024-05-01"))
    assert out["2024-05-01"][META_ARRIVAL_TO_QUERYABLE] == dg.MetadataValue.float(30.0)
    assert META_ARRIVAL_TO_QUERYABLE not in out["2024-05-02"]


def report(values: dict[str, float | None]) -> list[dg.MaterializeResult]:
    figures = {start: {"status": "loaded", **({META_ARRIVAL_TO_QUERYABLE: v} if v is not None else {})}
               for start, v in values.items()}
    return [dg.MaterializeResult(metadata={META_PARTITIONS: dg.MetadataValue.json(figures)})]


def test_the_check_fails_naming_each_interval_over_the_bound() -> None:
    checked = arrival_check_result(report({"2024-05-01": 40.0, "2024-05-02": 400.5, "2024-05-03": None}),
                                   asset_key=KEY, max_seconds=300)
    assert checked.check_name == CHECK_ARRIVAL_TO_QUERYABLE and checked.severity is dg.AssetCheckSeverity.WARN
    assert not checked.passed
    assert checked.metadata["late_intervals"].value == {"2024-05-02": 400.5}
    assert checked.metadata[META_ARRIVAL_TO_QUERYABLE].value == 400.5
    assert checked.metadata["intervals_measured"].value == 2


def test_the_check_passes_within_the_bound_and_when_nothing_was_loaded() -> None:
    assert arrival_check_result(report({"2024-05-01": 299.9}), asset_key=KEY, max_seconds=300).passed
    idle = arrival_check_result(report({"2024-05-01": None}), asset_key=KEY, max_seconds=300)
    assert idle.passed and "nothing to judge" in idle.metadata["note"].value


def test_the_bound_is_a_positive_duration() -> None:
    assert asset_config(max_arrival_to_queryable="5m").max_arrival_to_queryable_seconds == 300
    assert asset_config().max_arrival_to_queryable_seconds is None
    for bad in ("0m", "5 minutes", "300"):
        with pytest.raises(SpecError, match="field 'max_arrival_to_queryable'"):
            asset_config(max_arrival_to_queryable=bad)


def test_the_asset_declares_the_check_only_when_the_bound_is_set() -> None:
    from orchestrator.factories import interval_gcs_import_asset

    def check_names(config) -> set[str]:
        return {key.name for key in interval_gcs_import_asset(config, code_references=[]).asset.check_keys}

    assert CHECK_ARRIVAL_TO_QUERYABLE in check_names(asset_config(max_arrival_to_queryable="10m"))
    assert CHECK_ARRIVAL_TO_QUERYABLE not in check_names(asset_config())
