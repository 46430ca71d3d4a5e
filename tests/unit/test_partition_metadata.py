"""Per-interval figures of a range run, re-keyed to partitions (pure)."""

import dagster as dg

from orchestrator.factories.partition_metadata import metadata_by_partition
from worker.core.contract import META_BYTES_LOADED, META_FILES_LOADED, META_FILES_MATCHED, META_PARTITION_ROW_COUNT


def test_each_interval_lands_on_its_own_partition_key() -> None:
    hourly = dg.HourlyPartitionsDefinition(start_date="2024-05-01-00:00", timezone="UTC")
    figures = {
        "2024-05-01T13:00:00+00:00": {"rows": 7, "files": 2, "bytes": 10, "status": "loaded", "raw_table": "p.d.t__13", "jobs": 2},
        "2024-05-01T14:00:00+00:00": {"rows": 4, "files": 1, "bytes": 5, "status": "unchanged", "raw_table": "p.d.t__14", "jobs": 0},
        "2024-05-01T15:00:00+00:00": {"rows": 0, "files": 0, "bytes": 0, "status": "no_files", "raw_table": None, "jobs": 0},
    }
    out = metadata_by_partition(figures, hourly)
    assert sorted(out) == ["2024-05-01-13:00", "2024-05-01-14:00", "2024-05-01-15:00"]
    loaded, unchanged, empty = (out[k] for k in sorted(out))
    assert loaded[META_PARTITION_ROW_COUNT].value == 7 and loaded[META_FILES_LOADED].value == 2
    assert loaded[META_BYTES_LOADED].value == 10
    # an unchanged interval still has its rows in BigQuery, but this run loaded none of its files
    assert unchanged[META_PARTITION_ROW_COUNT].value == 4
    assert (unchanged[META_FILES_MATCHED].value, unchanged[META_FILES_LOADED].value, unchanged[META_BYTES_LOADED].value) == (1, 0, 0)
    assert empty["raw_table"].value == "-" and empty["interval_status"].value == "no_files"


def test_weekly_keys_follow_monday_weeks() -> None:
    weekly = dg.WeeklyPartitionsDefinition(start_date="2024-04-29", day_offset=1, timezone="UTC")
    out = metadata_by_partition({"2024-05-06T00:00:00+00:00": {"rows": 1, "status": "loaded"}}, weekly)
    assert list(out) == ["2024-05-06"]
