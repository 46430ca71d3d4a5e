"""Durations written in settings (``sensor_lookback``, ``complete_when.quiet_for``, ``max_arrival_to_queryable``):
one grammar, read in one place.

Whole numbers each followed by a unit, one or more of them, lowercase, no spaces: ``"45s"``, ``"30m"``,
``"36h"``, ``"1d12h"``, ``"2w"``. A setting may accept only some units (its caller says which).
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, units: str = "smhdw") -> timedelta:
    """``text`` as a :class:`~datetime.timedelta` (``"0m"`` is zero: callers that need more say so).

    ``units``: the unit letters this setting accepts, of ``s m h d w``.

    Raises:
        ValueError: ``text`` is not such a duration, uses another unit, or is too long for a timedelta.
    """
    if not isinstance(text, str) or not text or _PART.sub("", text):
        raise ValueError(f"not a duration: {text!r}")
    parts = _PART.findall(text)
    if any(unit not in units for _, unit in parts):
        raise ValueError(f"not a duration in {', '.join(units)}: {text!r}")
    try:
        return sum((timedelta(**{_UNITS[unit]: int(number)}) for number, unit in parts), timedelta())
    except OverflowError:
        raise ValueError(f"too long a duration: {text!r}") from None


def format_duration(value: timedelta) -> str:
    """``value`` in the largest whole unit of ``d h m s`` that fits it, as :func:`parse_duration` reads it (``"90m"``)."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
