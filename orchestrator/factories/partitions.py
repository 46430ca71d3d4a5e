"""Partitions: one Dagster time-window partition per spec interval (UTC, weeks start Monday)."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from worker.core.intervals import Interval, as_utc
from worker.core.spec import ImportSpec

#: When the newest interval must be loaded by (cron, UTC), for the time-partition freshness check.
DEFAULT_FRESHNESS_DEADLINES: dict[Interval, str] = {
    Interval.Hourly: "30 * * * *",  # half an hour after the hour closes
    Interval.Daily: "0 6 * * *",  # 06:00 the next day
    Interval.Weekly: "0 12 * * 1",  # Monday noon for the week that closed at Monday 00:00
    Interval.Monthly: "0 12 2 * *",  # noon on the 2nd for the month just closed
}


def partitions_def_for(spec: ImportSpec) -> dg.TimeWindowPartitionsDefinition:
    """The partitions of ``spec``: one per interval from ``spec.effective_start``; the current interval is
    not a partition until it has ended (Dagster's default ``end_offset=0``)."""
    start = spec.effective_start
    if spec.interval is Interval.Hourly:
        return dg.HourlyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d-%H:%M"), timezone="UTC")
    day = start.strftime("%Y-%m-%d")
    if spec.interval is Interval.Daily:
        return dg.DailyPartitionsDefinition(start_date=day, timezone="UTC")
    if spec.interval is Interval.Weekly:
        # day_offset=1: weeks start on Monday, as worker.core.intervals floors them.
        return dg.WeeklyPartitionsDefinition(start_date=day, day_offset=1, timezone="UTC")
    return dg.MonthlyPartitionsDefinition(start_date=day, day_offset=1, timezone="UTC")


def partition_key_for(partitions_def: dg.TimeWindowPartitionsDefinition, interval_start: datetime) -> str:
    """The partition key of the interval starting at ``interval_start``."""
    return as_utc(interval_start).strftime(partitions_def.fmt)


#: Tag on the runs the sensors request: which sensor, and what caused the request.
TRIGGER_TAG = "gcs_import/trigger"


def partition_run_request(partitions_def: dg.TimeWindowPartitionsDefinition, interval_start: datetime, *,
                          asset_key: dg.AssetKey, run_key_suffix: str, trigger: str) -> dg.RunRequest:
    """A run of the interval's partition, keyed ``{partition}:{run_key_suffix}`` (the suffix says what caused it,
    so the same cause never launches twice and a new one does), tagged :data:`TRIGGER_TAG` = ``trigger``."""
    key = partition_key_for(partitions_def, interval_start)
    return dg.RunRequest(run_key=f"{key}:{run_key_suffix}", partition_key=key, asset_selection=[asset_key],
                         tags={TRIGGER_TAG: trigger})


def window_extras(window: dg.TimeWindow) -> tuple[str, str]:
    """``[start, end)`` of a run's partition window as the ISO strings the worker reads."""
    return as_utc(window.start).isoformat(), as_utc(window.end).isoformat()
