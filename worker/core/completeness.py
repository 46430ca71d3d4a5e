"""The completeness gate (spec field ``complete_when``): when an interval's drop is complete enough to load.

Pure: objects and a clock in, a decision out. The worker asks it before loading an interval (an
incomplete one is reported ``incomplete`` unless the run says ``load_incomplete``); both sensors ask
it before requesting a run, and keep the intervals it says are waiting in their cursors.

Every key given must hold:

- ``marker_match``: a regex relative to ``path_base`` with the ``interval_timestamp`` group (as
  ``file_match``): complete once the interval's marker object exists. A name the marker matches is a
  marker, never data, even when ``file_match`` matches it too.
- ``quiet_for``: a duration (``"45s"``, ``"30m"``, ``"2h"``, ``"1d"``, or a sum such as ``"1h30m"``):
  complete once the interval's newest data file was last updated at least that long ago.
- ``min_files``: complete once at least that many data files (markers not counted) matched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from worker.core.durations import format_duration, parse_duration
from worker.core.records import ObjectInfo

__all__ = ["CompleteWhen", "Completeness", "decide_completeness"]

TIMESTAMP_GROUP = "interval_timestamp"
#: Longer than this is a typo, not a quiet period (a sensor would keep the interval waiting for a year).
MAX_QUIET = timedelta(days=31)


@dataclass(frozen=True, kw_only=True)
class CompleteWhen:
    """The gate's conditions; ``None`` means that condition is not asked for (at least one is)."""

    marker_match: str | None = None
    quiet_for: timedelta | None = None
    min_files: int | None = None

    @classmethod
    def parse(cls, value: CompleteWhen | Mapping[str, Any] | None) -> tuple[CompleteWhen | None, str | None]:
        """``(gate, None)`` or ``(None, problem)``; ``problem`` names the key and the fix, after ``complete_when``."""
        if value is None or isinstance(value, CompleteWhen):
            return value, None
        if not isinstance(value, Mapping):
            return None, f"is {value!r}: give a mapping of marker_match, quiet_for and/or min_files"
        unknown = sorted(set(value) - {"marker_match", "quiet_for", "min_files"})
        if unknown:
            return None, f"has unknown keys {unknown}: use marker_match, quiet_for and/or min_files"
        if not value:
            return None, "is empty: give marker_match, quiet_for and/or min_files, or leave complete_when unset"
        marker, problem = _marker(value.get("marker_match"))
        if problem:
            return None, problem
        quiet, problem = _quiet(value.get("quiet_for"))
        if problem:
            return None, problem
        min_files = value.get("min_files")
        if min_files is not None and (not isinstance(min_files, int) or isinstance(min_files, bool) or min_files < 1):
            return None, f"min_files is {min_files!r}: use a whole number, 1 or more"
        return cls(marker_match=marker, quiet_for=quiet, min_files=min_files), None

    def to_dict(self) -> dict[str, Any]:
        """The keys that are set, as the spec's JSON holds them."""
        out: dict[str, Any] = {}
        if self.marker_match is not None:
            out["marker_match"] = self.marker_match
        if self.quiet_for is not None:
            out["quiet_for"] = format_duration(self.quiet_for)
        if self.min_files is not None:
            out["min_files"] = self.min_files
        return out

    def marker_pattern(self, object_prefix: str) -> re.Pattern[str] | None:
        """The full-match pattern of marker names (``path_base/`` + ``marker_match``), or ``None``."""
        if self.marker_match is None:
            return None
        return re.compile(re.escape(object_prefix) + "(?:" + self.marker_match + ")")


@dataclass(frozen=True)
class Completeness:
    """The gate's answer for one interval: complete, or why not (one line)."""

    complete: bool
    reason: str = ""
    #: When the interval becomes complete by time alone (``quiet_for`` the last condition missing), else ``None``.
    recheck_at: datetime | None = None


def decide_completeness(gate: CompleteWhen | None, *, data_files: Sequence[ObjectInfo], markers: Sequence[ObjectInfo],
                        now: datetime) -> Completeness:
    """Whether an interval with these ``data_files`` and ``markers`` is complete at ``now``.

    No gate: complete whenever it has a data file. The reasons read as one line each, joined with
    ``; ``: ``marker missing``, ``newest file 12 minutes old, 30 required``, ``2 of 3 files``.
    A data file without an ``updated`` time counts as just updated (the gate waits rather than loads early).
    """
    if gate is None:
        return Completeness(complete=bool(data_files), reason="" if data_files else "no files")
    reasons: list[str] = []
    recheck_at = None
    if gate.marker_match is not None and not markers:
        reasons.append("marker missing")
    if gate.min_files is not None and len(data_files) < gate.min_files:
        reasons.append(f"{len(data_files)} of {gate.min_files} files")
    if gate.quiet_for is not None:
        if not data_files:
            reasons.append("no data files yet")
        else:
            newest = max((f.updated or now) for f in data_files)
            age = now - newest
            if age < gate.quiet_for:
                reasons.append(f"newest file {_minutes(age)} old, {_minutes(gate.quiet_for)} required")
                recheck_at = newest + gate.quiet_for
    only_time = len(reasons) == 1 and recheck_at is not None
    return Completeness(complete=not reasons, reason="; ".join(reasons), recheck_at=recheck_at if only_time else None)


def _minutes(value: timedelta) -> str:
    seconds = max(0, int(value.total_seconds()))
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{seconds // 60} minutes"


def _marker(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, str) or not value:
        return None, f"marker_match is {value!r}: give a regular expression for marker names under path_base"
    try:
        compiled = re.compile(value)
    except re.error as exc:
        return None, f"marker_match does not compile ({exc}): fix the regular expression"
    if TIMESTAMP_GROUP not in compiled.groupindex:
        return None, (f"marker_match {value!r} has no named group '{TIMESTAMP_GROUP}': capture the interval's timestamp "
                      rf"as file_match does, e.g. (?P<{TIMESTAMP_GROUP}>\d{{4}}-\d{{2}}-\d{{2}})/_SUCCESS")
    return value, None


def _quiet(value: Any) -> tuple[timedelta | None, str | None]:
    if value is None:
        return None, None
    try:
        # seconds to days; spaces between the parts are read too ("1h 30m")
        quiet = parse_duration(value.replace(" ", "") if isinstance(value, str) else value, units="smhd")
    except ValueError:
        quiet = timedelta(0)
    if quiet <= timedelta(0):
        return None, f"quiet_for is {value!r}: use a duration such as '30m', '2h' or '1h30m'"
    if quiet > MAX_QUIET:
        return None, f"quiet_for is {value!r}: use at most 31 days"
    return quiet, None
