"""Which key ranges of ``path_base/`` to list for some intervals (pure: a spec and interval starts in, ranges out).

A listing can skip to the names of the requested intervals only when the layout makes names sort like
time (:func:`unsorted_reason` says why not, else ``None``):

- the text of ``file_match`` before the ``interval_timestamp`` group is a literal (plain characters or
  escaped ones; any other regex construct before the group, an alternation around it or a case-insensitive
  flag make it unsortable);
- the timestamp format is the zero-padded directives ``%Y %m %d %H %M %S`` in that order (a leading part of
  it, down to the interval's own unit: ``%H`` for hourly, ``%d`` for daily and weekly, ``%m`` for monthly),
  separated by literal characters that are neither digits, whitespace nor ``%``;
- the group itself only captures text of the format's fixed-width shape: digits (``[0-9]`` or ``\\d``) where
  the format has digits and exactly the format's separators where it has separators.

The last rule is what makes the narrowed listing exact. ``strptime`` also accepts text that sorts
elsewhere: unpadded or space-padded fields (``2024-1-5``, ``2024-01- 5``, which sort outside the
zero-padded range) and separators in the other case. ``\\d`` also matches non-ASCII digits that
``strptime`` reads (``٢٠٢٤-01-05``, sorting after every ASCII name), but the worker refuses a timestamp that is
not ASCII (:func:`worker.core.intervals.parse_interval_start`: the name is unparseable, never loaded). A group of
the fixed shape therefore never captures a parseable timestamp of another shape, so every name that matches a
requested interval is ``path_base/`` + literal + the zero-padded timestamp + anything, and lies in
``[prefix + render(start), prefix + render(end))``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from worker.core.intervals import Interval, as_utc
from worker.core.spec import TIMESTAMP_GROUP, ImportSpec

try:  # Python 3.11+
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

#: The directives whose zero-padded rendering sorts like time, most significant first, with their widths.
ORDERED_DIRECTIVES = ("%Y", "%m", "%d", "%H", "%M", "%S")
_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
#: How many of :data:`ORDERED_DIRECTIVES` a format needs to tell an interval's start from the next one's.
_NEEDED = {Interval.Hourly: 4, Interval.Daily: 3, Interval.Weekly: 3, Interval.Monthly: 2}
_DIGITS = frozenset("0123456789")
#: More separate ranges than this are listed as one span from the first to the last (still exact).
MAX_RANGES = 16


def directives_in_time_order(timestamp_format: str) -> bool:
    """Whether the format's directives are a leading part of ``%Y %m %d %H %M %S`` (the sensor's test)."""
    directives = re.findall(r"%.", timestamp_format)
    return bool(directives) and tuple(directives) == ORDERED_DIRECTIVES[: len(directives)]


@dataclass(frozen=True)
class KeyRange:
    """Object names from ``start`` (inclusive) to ``stop`` (exclusive; ``None``: to the end of the prefix)."""

    start: str
    stop: str | None

    def contains(self, name: str) -> bool:
        return name >= self.start and (self.stop is None or name < self.stop)


@dataclass(frozen=True)
class ListingRanges:
    """The key ranges to list, in name order, or ``None``: the whole prefix (``reason`` says why)."""

    ranges: tuple[KeyRange, ...] | None
    reason: str = ""

    @property
    def narrowed(self) -> bool:
        return self.ranges is not None

    def covers(self, name: str) -> bool:
        """Whether a listing of these ranges returns ``name`` (when it exists)."""
        return self.ranges is None or any(r.contains(name) for r in self.ranges)

    def describe(self) -> str:
        """One line for the run's log."""
        if self.ranges is None:
            return f"listing the whole prefix: {self.reason}"
        shown = ", ".join(f"[{r.start!r}, {r.stop!r})" for r in self.ranges[:3])
        more = f" and {len(self.ranges) - 3} more" if len(self.ranges) > 3 else ""
        return f"listing {len(self.ranges)} key range(s) of the requested intervals: {shown}{more}"


def plan_listing_ranges(spec: ImportSpec, *, interval_starts: Iterable[datetime]) -> ListingRanges:
    """The key ranges holding every object name that can match one of ``interval_starts``: data names
    (``file_match``) and, with ``complete_when.marker_match``, marker names too (their ranges merged).

    Consecutive intervals share one range; with more than :data:`MAX_RANGES` ranges one span from the
    first start to the last stop is listed instead. An unsortable layout (see the module docstring) or no
    intervals at all give the whole prefix, with the reason. Never raises for a valid spec.
    """
    reason = unsorted_reason(spec)
    if reason is not None:
        return ListingRanges(ranges=None, reason=reason)
    starts = sorted({spec.interval.floor(s) for s in interval_starts})
    if not starts:
        return ListingRanges(ranges=None, reason="no intervals were requested")
    runs: list[list[datetime | None]] = []
    for start in starts:
        if runs and runs[-1][1] == start:
            runs[-1][1] = _next_start(spec.interval, start)
        else:
            runs.append([start, _next_start(spec.interval, start)])
    fmt = spec.effective_timestamp_format
    ranges = _merged([
        KeyRange(start=head + render_timestamp(fmt, s), stop=None if e is None else head + render_timestamp(fmt, e))
        for head in {spec.object_prefix + _literal_head(pattern) for _, pattern in _patterns(spec)}
        for s, e in runs
    ])
    if len(ranges) > MAX_RANGES:
        ranges = [KeyRange(start=ranges[0].start, stop=ranges[-1].stop)]
    return ListingRanges(ranges=tuple(ranges))


def _merged(ranges: list[KeyRange]) -> list[KeyRange]:
    """``ranges`` in name order with overlapping or touching ones joined (a ``None`` stop runs to the end)."""
    out: list[KeyRange] = []
    for key_range in sorted(ranges, key=lambda r: r.start):
        if out and (out[-1].stop is None or key_range.start <= out[-1].stop):
            last = out[-1]
            stop = None if last.stop is None or key_range.stop is None else max(last.stop, key_range.stop)
            out[-1] = KeyRange(start=last.start, stop=stop)
        else:
            out.append(key_range)
    return out


def _patterns(spec: ImportSpec) -> list[tuple[str, str]]:
    """The patterns whose names a listing must return, with the field each comes from."""
    patterns = [("file_match", spec.file_match)]
    if spec.complete_when is not None and spec.complete_when.marker_match is not None:
        patterns.append(("complete_when.marker_match", spec.complete_when.marker_match))
    return patterns


def names_in_ranges(names: Sequence[str], ranges: ListingRanges) -> list[str]:
    """The names of sorted ``names`` a listing of ``ranges`` returns, in order (what GCS would list)."""
    if ranges.ranges is None:
        return list(names)
    out: list[str] = []
    for key_range in ranges.ranges:
        for name in names[bisect.bisect_left(names, key_range.start):]:
            if key_range.stop is not None and name >= key_range.stop:
                break
            out.append(name)
    return out


def render_timestamp(timestamp_format: str, moment: datetime) -> str:
    """``moment`` in a sortable format, zero-padded to the directives' widths (years below 1000 too,
    unlike ``strftime`` on Linux)."""
    moment = as_utc(moment)
    values = {"Y": moment.year, "m": moment.month, "d": moment.day, "H": moment.hour, "M": moment.minute,
              "S": moment.second}
    return "".join(text if kind == "literal" else f"{values[text]:0{_WIDTHS[text]}d}"
                   for kind, text in _format_tokens(timestamp_format))


def unsorted_reason(spec: ImportSpec) -> str | None:
    """Why names of this layout may not sort like time (see the module docstring), or ``None`` when they do.
    A completeness marker's pattern must sort too (its names are listed with the data)."""
    fmt = spec.effective_timestamp_format
    shape, reason = _format_shape(fmt, interval=spec.interval)
    if shape is None:
        return reason
    for field_name, pattern in _patterns(spec):
        reason = _pattern_unsorted_reason(pattern, field_name=field_name, shape=shape, fmt=fmt)
        if reason is not None:
            return reason
    return None


def _pattern_unsorted_reason(pattern: str, *, field_name: str, shape: list[str | None], fmt: str) -> str | None:
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:  # the spec compiled it; any parser surprise: list everything
        return f"{field_name} could not be analysed"
    if parsed.state.flags & _sre.SRE_FLAG_IGNORECASE:
        return f"{field_name} is case-insensitive"
    group_id = parsed.state.groupdict[TIMESTAMP_GROUP]
    items = list(parsed.data)
    index = 0
    while index < len(items) and items[index][0] is _sre.LITERAL:
        index += 1
    if index == len(items) or items[index][0] is not _sre.SUBPATTERN or items[index][1][0] != group_id:
        return f"the text of {field_name} before the {TIMESTAMP_GROUP} group is not a literal"
    group = items[index][1]
    of = "" if field_name == "file_match" else f" of {field_name}"
    if group[1] or group[2]:
        return f"the {TIMESTAMP_GROUP} group{of} sets regex flags"
    positions = _fixed_positions(group[3])
    if positions is None or len(positions) != len(shape) or not all(
            allowed <= _DIGITS if want is None else allowed == {want} for allowed, want in zip(positions, shape, strict=True)):
        return (f"the {TIMESTAMP_GROUP} group{of} does not capture exactly the zero-padded shape of {fmt!r} "
                "(write digit classes such as \\d{4} or [0-9]{4} and the format's separators)")
    return None


def _literal_head(file_match: str) -> str:
    """The literal text of a sortable ``file_match`` before its ``interval_timestamp`` group."""
    head = []
    for op, value in _sre_parse.parse(file_match).data:
        if op is not _sre.LITERAL:
            break
        head.append(chr(value))
    return "".join(head)


def _next_start(interval: Interval, start: datetime) -> datetime | None:
    """The next interval's start, ``None`` past the calendar's end (year 9999)."""
    try:
        return interval.next_start(start)
    except (OverflowError, ValueError):
        return None


def _format_tokens(timestamp_format: str) -> list[tuple[str, str]]:
    """``("directive", "Y")`` and ``("literal", "-")`` tokens of a format."""
    tokens: list[tuple[str, str]] = []
    index = 0
    while index < len(timestamp_format):
        if timestamp_format[index] == "%" and index + 1 < len(timestamp_format):
            tokens.append(("directive", timestamp_format[index + 1]))
            index += 2
        else:
            tokens.append(("literal", timestamp_format[index]))
            index += 1
    return tokens


def _format_shape(timestamp_format: str, *, interval: Interval) -> tuple[list[str | None] | None, str]:
    """Per character of the zero-padded rendering: ``None`` for a digit, else the literal character;
    ``(None, reason)`` when the format's text does not sort like time for ``interval``."""
    tokens = _format_tokens(timestamp_format)
    directives = tuple(f"%{text}" for kind, text in tokens if kind == "directive")
    if directives != ORDERED_DIRECTIVES[: len(directives)] or len(directives) < _NEEDED[interval]:
        return None, (f"timestamp format {timestamp_format!r} is not zero-padded %Y %m %d %H %M %S in that order "
                      f"down to the {interval.value.lower()} interval's unit")
    shape: list[str | None] = []
    for kind, text in tokens:
        if kind == "directive":
            shape.extend([None] * _WIDTHS[text])
        elif text.isdigit() or text.isspace() or text == "%":
            return None, f"timestamp format {timestamp_format!r} has a digit, space or '%' separator"
        else:
            shape.append(text)
    return shape, ""


def _fixed_positions(items: Iterable[tuple[object, object]]) -> list[frozenset[str]] | None:
    """The characters each position of a fixed-width regex can match, ``None`` when the width varies or a
    construct is not understood (classes like ``\\w`` or ``.``, lookarounds, alternations, flags)."""
    positions: list[frozenset[str]] = []
    for op, value in items:
        if op is _sre.LITERAL:
            positions.append(frozenset(chr(value)))  # type: ignore[arg-type]
        elif op is _sre.IN:
            chars = _class_chars(value)  # type: ignore[arg-type]
            if chars is None:
                return None
            positions.append(chars)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            low, high, sub = value  # type: ignore[misc]
            inner = _fixed_positions(sub)
            if low != high or inner is None or low * len(inner) > 256:
                return None
            positions.extend(inner * low)
        elif op is _sre.SUBPATTERN and not value[1] and not value[2]:  # type: ignore[index]
            inner = _fixed_positions(value[3])  # type: ignore[index]
            if inner is None:
                return None
            positions.extend(inner)
        else:
            return None
    return positions


def _class_chars(items: Iterable[tuple[object, object]]) -> frozenset[str] | None:
    """The characters of a ``[...]`` class of literals, small ranges and ``\\d``, ``None`` for anything else.

    ``\\d`` counts as the ASCII digits: a timestamp holding other digits never parses (see the module docstring).
    """
    chars: set[str] = set()
    for op, value in items:
        if op is _sre.CATEGORY and value is _sre.CATEGORY_DIGIT:
            chars.update(_DIGITS)
        elif op is _sre.LITERAL:
            chars.add(chr(value))  # type: ignore[arg-type]
        elif op is _sre.RANGE and value[1] - value[0] < 128:  # type: ignore[index,operator]
            chars.update(chr(c) for c in range(value[0], value[1] + 1))  # type: ignore[index,operator]
        else:
            return None
    return frozenset(chars)
