"""Matching: which GCS objects belong to which interval (pure: names in, intervals out).

Shared by the worker and the orchestrator's new-files sensor; the listing itself is
:func:`worker.core.gcs.list_objects`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from worker.core.intervals import parse_interval_start
from worker.core.records import ObjectInfo
from worker.core.spec import TIMESTAMP_GROUP, ImportSpec


@dataclass
class MatchResult:
    """Objects grouped by interval start, and what did not match.

    ``by_interval`` holds only the intervals asked for (all when none were given);
    ``outside_window`` counts matched objects of other intervals.
    """

    by_interval: dict[datetime, list[ObjectInfo]] = field(default_factory=dict)
    #: ``complete_when.marker_match`` names by interval (never data, even when ``file_match`` matches them too).
    markers_by_interval: dict[datetime, list[ObjectInfo]] = field(default_factory=dict)
    listed: int = 0
    ignored: int = 0
    unparseable: list[str] = field(default_factory=list)
    outside_window: int = 0

    @property
    def matched(self) -> int:
        return sum(len(objs) for objs in self.by_interval.values()) + self.outside_window


def match_objects(
    spec: ImportSpec, objects: Iterable[ObjectInfo], *, intervals: Collection[datetime] | None = None
) -> MatchResult:
    """Group ``objects`` by the interval their name's ``interval_timestamp`` falls in.

    A name must fully match ``path_base/`` + ``file_match``; other names are counted
    as ignored. A name that fully matches the completeness marker (``complete_when.marker_match``)
    is a marker, grouped in ``markers_by_interval`` and never in ``by_interval``. A matching name whose
    timestamp does not parse (or is empty: an alternation branch without the group) is listed in
    ``unparseable`` and skipped. With ``intervals``, only those intervals are kept
    (so memory grows with the window, not with the bucket).
    """
    pattern = spec.name_pattern
    marker_pattern = spec.complete_when.marker_pattern(spec.object_prefix) if spec.complete_when else None
    fmt = spec.effective_timestamp_format
    wanted = set(intervals) if intervals is not None else None
    result = MatchResult()
    for obj in objects:
        result.listed += 1
        marker = marker_pattern.fullmatch(obj.name) if marker_pattern is not None else None
        found = marker or pattern.fullmatch(obj.name)
        if found is None:
            result.ignored += 1
            continue
        text = found.group(TIMESTAMP_GROUP)
        try:
            if text is None:
                raise ValueError("empty timestamp group")
            start = parse_interval_start(text, interval=spec.interval, timestamp_format=fmt)
        except ValueError:
            result.unparseable.append(obj.name)
            continue
        if wanted is not None and start not in wanted:
            result.outside_window += 1
            continue
        target = result.markers_by_interval if marker is not None else result.by_interval
        target.setdefault(start, []).append(obj)
    for objs in (*result.by_interval.values(), *result.markers_by_interval.values()):
        objs.sort()
    return result
