"""Interval arithmetic: floors, steps, suffixes, parsing (UTC; weeks start Monday)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from worker.core.intervals import Interval, parse_interval_start, parse_iso


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("interval", "moment", "floor", "following", "suffix"),
    [
        (Interval.Hourly, at(2024, 1, 5, 13, 59), at(2024, 1, 5, 13), at(2024, 1, 5, 14), "2024010513"),
        (Interval.Daily, at(2024, 2, 29, 23, 1), at(2024, 2, 29), at(2024, 3, 1), "20240229"),
        (Interval.Weekly, at(2024, 1, 7, 12), at(2024, 1, 1), at(2024, 1, 8), "20240101"),  # Sunday -> Monday
        (Interval.Monthly, at(2023, 12, 31, 23), at(2023, 12, 1), at(2024, 1, 1), "20231201"),
    ],
)
def test_floor_next_and_suffix(interval: Interval, moment: datetime, floor: datetime, following: datetime, suffix: str) -> None:
    assert interval.floor(moment) == floor
    assert interval.next_start(floor) == following
    assert interval.table_suffix(moment) == suffix


def test_naive_and_offset_times_are_utc() -> None:
    assert Interval.Daily.floor(datetime(2024, 1, 5, 1)) == at(2024, 1, 5)
    plus_two = timezone(timedelta(hours=2))
    assert Interval.Daily.floor(datetime(2024, 1, 5, 1, tzinfo=plus_two)) == at(2024, 1, 4)


def test_starts_between_is_half_open() -> None:
    starts = list(Interval.Daily.starts_between(at(2024, 1, 5), at(2024, 1, 8)))
    assert starts == [at(2024, 1, 5), at(2024, 1, 6), at(2024, 1, 7)]
    assert list(Interval.Monthly.starts_between(at(2024, 1, 15), at(2024, 3, 1))) == [at(2024, 1, 1), at(2024, 2, 1)]


def test_parse_interval_start_uses_format_and_floors() -> None:
    assert parse_interval_start("2024-01-05", interval=Interval.Daily, timestamp_format="%Y-%m-%d") == at(2024, 1, 5)
    assert parse_interval_start("2024-01-10", interval=Interval.Weekly, timestamp_format="%Y-%m-%d") == at(2024, 1, 8)
    with pytest.raises(ValueError, match="does not match timestamp format"):
        parse_interval_start("2024-13-45", interval=Interval.Daily, timestamp_format="%Y-%m-%d")


def test_parse_iso_accepts_z_and_dates() -> None:
    assert parse_iso("2024-01-05T10:00:00Z") == at(2024, 1, 5, 10)
    assert parse_iso("2024-01-05") == at(2024, 1, 5)


def test_a_timestamp_of_non_ascii_digits_does_not_parse() -> None:
    """strptime alone reads Arabic-Indic digits as 2024-01-05; the worker refuses them (the name is unparseable),
    which is what lets a \\d layout's listing be narrowed to the interval's key range."""
    assert datetime.strptime("٢٠٢٤-01-05", "%Y-%m-%d") == datetime(2024, 1, 5)
    with pytest.raises(ValueError, match="not ASCII"):
        parse_interval_start("٢٠٢٤-01-05", interval=Interval.Daily, timestamp_format="%Y-%m-%d")
