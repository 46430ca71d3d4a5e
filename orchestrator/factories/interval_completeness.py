"""Whether intervals are complete (spec field ``complete_when``), read from GCS by a sensor tick.

Both sensors call :func:`check_completeness` for the intervals they would request: one narrowed listing of
those intervals' data and marker names (:func:`worker.core.listing_ranges.plan_listing_ranges`), the
worker's own matching, and the pure gate (:func:`worker.core.completeness.decide_completeness`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from worker.core.completeness import Completeness, decide_completeness
from worker.core.gcs import list_ranges
from worker.core.listing_ranges import plan_listing_ranges
from worker.core.matching import match_objects
from worker.core.spec import ImportSpec


def check_completeness(client: Any, spec: ImportSpec, interval_starts: Collection[datetime], *,
                       now: datetime) -> dict[datetime, Completeness]:
    """Each of ``interval_starts`` decided by the spec's gate at ``now`` (no gate: complete when it has a file).

    Lists only the requested intervals' key ranges (the whole prefix for an unsortable layout).

    Raises:
        WorkerError: the bucket is missing or not readable (names the bucket).
    """
    starts = sorted(set(interval_starts))
    if not starts:
        return {}
    ranges = plan_listing_ranges(spec, interval_starts=starts)
    matched = match_objects(spec, list_ranges(client, spec, ranges=ranges), intervals=starts)
    return {
        start: decide_completeness(spec.complete_when, data_files=matched.by_interval.get(start, []),
                                   markers=matched.markers_by_interval.get(start, []), now=now)
        for start in starts
    }
