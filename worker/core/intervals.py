"""Interval arithmetic: floor a timestamp to its interval, step, name tables.

All times are UTC. Weeks start on Monday (ISO weeks); the orchestrator's weekly
partitions use the same convention.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta


class Interval(enum.Enum):
    """How often files arrive; one interval is one partition and one raw table."""

    Hourly = "Hourly"
    Daily = "Daily"
    Weekly = "Weekly"
    Monthly = "Monthly"

    @property
    def default_timestamp_format(self) -> str:
        """The ``strptime`` format used for ``interval_timestamp`` unless the spec names one."""
        return _DEFAULT_FORMATS[self]

    @property
    def table_suffix_format(self) -> str:
        """``strftime`` format of the raw table suffix (hourly tables carry the hour)."""
        return "%Y%m%d%H" if self is Interval.Hourly else "%Y%m%d"

    def floor(self, moment: datetime) -> datetime:
        """The start of the interval that contains ``moment`` (naive times are taken as UTC)."""
        moment = as_utc(moment)
        if self is Interval.Hourly:
            return moment.replace(minute=0, second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Interval.Daily:
            return day
        if self is Interval.Weekly:
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def next_start(self, start: datetime) -> datetime:
        """The start of the interval after the one starting at ``start``."""
        start = self.floor(start)
        if self is Interval.Hourly:
            return start + timedelta(hours=1)
        if self is Interval.Daily:
            return start + timedelta(days=1)
        if self is Interval.Weekly:
            return start + timedelta(days=7)
        return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)

    def starts_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Starts of every interval that begins in ``[floor(start), end)``."""
        current = self.floor(start)
        end = as_utc(end)
        while current < end:
            yield current
            current = self.next_start(current)

    def table_suffix(self, start: datetime) -> str:
        """``YYYYMMDD`` (``YYYYMMDDHH`` when hourly) for the interval starting at ``start``."""
        return self.floor(start).strftime(self.table_suffix_format)


_DEFAULT_FORMATS: dict[Interval, str] = {
    Interval.Hourly: "%Y-%m-%dT%H",
    Interval.Daily: "%Y-%m-%d",
    Interval.Weekly: "%Y-%m-%d",
    Interval.Monthly: "%Y-%m",
}


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_interval_start(text: str, *, interval: Interval, timestamp_format: str) -> datetime:
    """Parse an ``interval_timestamp`` capture and floor it to its interval.

    Raises ValueError (with the text and format) when the text does not parse, and when it is not
    ASCII: ``strptime`` reads non-ASCII digits too (``٢٠٢٤-01-05`` would be 2024-01-05), but such a name
    is no timestamp a producer writes, and refusing it lets a ``\\d`` pattern's names sort like time
    (:mod:`worker.core.listing_ranges`): the name is reported as unparseable, never loaded.
    """
    if not text.isascii():
        raise ValueError(f"{text!r} is not ASCII: timestamps are read from ASCII digits only")
    try:
        moment = datetime.strptime(text, timestamp_format)
    except ValueError as exc:
        raise ValueError(f"{text!r} does not match timestamp format {timestamp_format!r}") from exc
    return interval.floor(moment)


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date or datetime (``Z`` accepted) into aware UTC."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
