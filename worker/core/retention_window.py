"""Which intervals are past retention (``retention_days``): one rule for retention and the notifications sensor.

Pure: a spec and a clock in, an instant or a yes/no out. Retention (:mod:`worker.planning`) deletes only
objects of intervals past it; the notifications sensor requests nothing for a delete in such an interval
(the delete is retention's own).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from worker.core.intervals import as_utc
from worker.core.spec import ImportSpec

__all__ = ["past_retention", "retention_cutoff"]


def retention_cutoff(spec: ImportSpec, *, as_of: datetime) -> datetime:
    """Intervals that ended at or before this instant are past retention."""
    return as_of - timedelta(days=spec.retention_days)


def past_retention(spec: ImportSpec, interval_start: datetime, *, as_of: datetime) -> bool:
    """Whether the interval starting at ``interval_start`` ended at or before ``as_of - retention_days``."""
    return spec.interval.next_start(as_utc(interval_start)) <= as_utc(retention_cutoff(spec, as_of=as_of))
