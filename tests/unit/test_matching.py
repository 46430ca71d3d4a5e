"""Matching object names to intervals (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.test_spec import BASE
from worker.core.matching import match_objects
from worker.core.records import ObjectInfo
from worker.core.spec import ImportSpec


def obj(name: str, generation: int = 1, size: int = 10) -> ObjectInfo:
    return ObjectInfo(name=name, generation=generation, size=size)


SPEC = ImportSpec(**BASE)


def test_groups_by_interval_and_counts_the_rest() -> None:
    objects = [
        obj("passport/2024-01-05/scores.parquet"),
        obj("passport/2024-01-06/scores.parquet"),
        obj("passport/2024-01-06/other.parquet"),  # different file name: ignored
        obj("passport/2024-01-07/scores.parquet.tmp"),  # not a full match: ignored
        obj("passportX/2024-01-05/scores.parquet"),  # outside path_base: ignored
        obj("passport/2024-02-30/scores.parquet"),  # matches, timestamp does not parse
    ]
    result = match_objects(SPEC, objects)
    assert sorted(result.by_interval) == [datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 6, tzinfo=UTC)]
    assert result.listed == 6
    assert result.ignored == 3
    assert result.unparseable == ["passport/2024-02-30/scores.parquet"]
    assert result.matched == 2


def test_window_keeps_only_requested_intervals() -> None:
    objects = [obj(f"passport/2024-01-{day:02d}/scores.parquet") for day in range(1, 11)]
    wanted = [datetime(2024, 1, 3, tzinfo=UTC), datetime(2024, 1, 4, tzinfo=UTC)]
    result = match_objects(SPEC, objects, intervals=wanted)
    assert sorted(result.by_interval) == wanted
    assert result.outside_window == 8
    assert result.matched == 10


def test_several_files_per_interval_sorted_by_name() -> None:
    spec = ImportSpec(**{**BASE, "file_match": r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/part-\d+\.parquet"})
    objects = [obj("passport/2024-01-05/part-2.parquet"), obj("passport/2024-01-05/part-1.parquet")]
    result = match_objects(spec, objects)
    assert [o.name for o in result.by_interval[datetime(2024, 1, 5, tzinfo=UTC)]] == [
        "passport/2024-01-05/part-1.parquet",
        "passport/2024-01-05/part-2.parquet",
    ]


def test_custom_timestamp_format_and_hourly_interval() -> None:
    spec = ImportSpec(**{**BASE, "interval": "Hourly", "file_match": r"(?P<interval_timestamp>\d{10})\.csv",
                         "timestamp_format": "%Y%m%d%H"})
    result = match_objects(spec, [obj("passport/2024010513.csv")])
    assert list(result.by_interval) == [datetime(2024, 1, 5, 13, tzinfo=UTC)]
