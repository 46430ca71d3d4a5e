"""Shared builder for the orchestrator emulator tests: one asset config per test, in its own datasets."""

from __future__ import annotations

from localdev.samples import SCORES_SCHEMA
from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode


def make_asset_config(unique_name: str, bucket_name: str, **overrides) -> IntervalGCSAsset:
    """Daily Parquet drops under ``passport/``, Incremental, with the sample schema; ``overrides`` replace fields."""
    fields = dict(
        key_prefix="it", name=f"scores_{unique_name}", project_id="test-project", bucket_name=bucket_name,
        path_base="passport", file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.parquet",
        destination_table="passport_scores", raw_dataset_name=f"raw_{unique_name}",
        clean_dataset_name=f"clean_{unique_name}", interval=Interval.Daily, mode=SourceMode.Incremental,
        retention_days=10, format="PARQUET", schema=SCORES_SCHEMA, start_date="2024-05-01",
    )
    fields.update(overrides)
    return IntervalGCSAsset(**fields)
