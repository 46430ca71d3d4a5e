"""Partitions agree with the worker's interval arithmetic (UTC, weeks start Monday)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode
from orchestrator.factories.partitions import partition_key_for, partitions_def_for, window_extras


def spec(interval: Interval, start_date: str | None) -> IntervalGCSAsset:
    return IntervalGCSAsset(
        name="scores", project_id="test-project", bucket_name="bucket-x", path_base="p",
        file_match=r"(?P<interval_timestamp>[\dT-]+)/f.csv", destination_table="t", raw_dataset_name="raw",
        clean_dataset_name="clean", interval=interval, mode=SourceMode.Incremental, retention_days=3,
        start_date=start_date,
    )


@pytest.mark.parametrize(
    ("interval", "start_date", "first_key", "cls"),
    [
        (Interval.Hourly, "2024-03-05T07:30:00", "2024-03-05-07:00", dg.HourlyPartitionsDefinition),
        (Interval.Daily, "2024-03-05T07:30:00", "2024-03-05", dg.DailyPartitionsDefinition),
        (Interval.Weekly, "2024-03-06", "2024-03-04", dg.WeeklyPartitionsDefinition),  # Wednesday -> Monday
        (Interval.Monthly, "2024-03-17", "2024-03-01", dg.MonthlyPartitionsDefinition),
        (Interval.Daily, None, "2024-01-01", dg.DailyPartitionsDefinition),  # DEFAULT_START_DATE
    ],
)
def test_partitions_match_worker_intervals(interval, start_date, first_key, cls) -> None:
    s = spec(interval, start_date)
    pdef = partitions_def_for(s)
    assert isinstance(pdef, cls)
    now = datetime(2024, 9, 1, tzinfo=UTC)
    keys = pdef.get_partition_keys(current_time=now)
    assert keys[0] == first_key
    starts = list(interval.starts_between(s.effective_start, now))
    # one partition per worker interval that has ended by `now`, same boundaries
    ended = [st for st in starts if interval.next_start(st) <= now]
    assert len(keys) == len(ended)
    for key, start in zip(keys[:50], ended[:50], strict=True):
        window = pdef.time_window_for_partition_key(key)
        assert (window.start, window.end) == (start, interval.next_start(start))
        assert partition_key_for(pdef, start) == key
    if interval is Interval.Weekly:
        assert all(pdef.time_window_for_partition_key(k).start.weekday() == 0 for k in keys)


def test_window_extras_are_utc_iso() -> None:
    pdef = partitions_def_for(spec(Interval.Daily, "2024-05-01"))
    window = pdef.time_window_for_partition_key("2024-05-03")
    assert window_extras(window) == ("2024-05-03T00:00:00+00:00", "2024-05-04T00:00:00+00:00")
