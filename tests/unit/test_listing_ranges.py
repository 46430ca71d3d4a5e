"""The narrowed listing finds exactly what the full listing matches for the requested intervals.

The property test is a seeded generator loop (deterministic, thousands of cases; ``hypothesis`` is not a
dependency): generated layouts (literal heads with escaped characters, non-literal heads, sortable and
unsortable formats, exact and loose timestamp groups, every interval) and generated names (zero-padded,
unpadded and space-padded fields that ``strptime`` still parses, other-case separators, non-ASCII digits,
neighbouring intervals, hour and month boundaries, literal parts sorting before or after the range, junk).
The narrowed listing is simulated the way :class:`worker.core.gcs.ObjectListing` lists a range: the server
starts at ``startOffset``; the client stops at the first name at or past the range's stop.
"""

from __future__ import annotations

import bisect
import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from worker.core.intervals import Interval
from worker.core.listing_ranges import (
    KeyRange,
    ListingRanges,
    names_in_ranges,
    plan_listing_ranges,
    render_timestamp,
    unsorted_reason,
)
from worker.core.matching import match_objects
from worker.core.records import LoadedObject, ObjectInfo
from worker.core.spec import ImportSpec
from worker.retention import retention_listing

pytestmark = pytest.mark.unit

CASES = 3000
SEED = 20240519
_DIRECTIVES = ("%Y", "%m", "%d", "%H", "%M", "%S")
_NEEDED = {Interval.Hourly: 4, Interval.Daily: 3, Interval.Weekly: 3, Interval.Monthly: 2}
_WIDTH = {"%Y": 4}
_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def make_spec(*, file_match: str, interval: Interval, timestamp_format: str | None) -> ImportSpec:
    return ImportSpec(name="prop", project_id="my-project", bucket_name="bucket", path_base="base",
                      file_match=file_match, destination_table="t", raw_dataset_name="raw", clean_dataset_name="clean",
                      interval=interval, mode="Incremental", retention_days=10, format="CSV",
                      timestamp_format=timestamp_format)


def simulated_listing(names: list[str], ranges: ListingRanges) -> list[str]:
    """What ObjectListing yields for each range over a bucket holding sorted ``names`` (independent of the code)."""
    if ranges.ranges is None:
        return list(names)
    out: list[str] = []
    for key_range in ranges.ranges:
        page = [n for n in names if n >= key_range.start]  # the server honours startOffset
        for name in page:
            if key_range.stop is not None and name >= key_range.stop:
                break  # the client stops at the first name past the range
            out.append(name)
    return out


# -- generated layouts -----------------------------------------------------------------------------


def gen_format(rng: random.Random, interval: Interval) -> tuple[list[str], str]:
    """(tokens, format): directives in order with separators; sometimes an unsortable one."""
    count = rng.randint(_NEEDED[interval], 6)
    seps = [rng.choice(["-", "-", "", "_", "T", "/", ":", ".", "h", " "]) for _ in range(count - 1)]
    head = rng.choice(["", "", "", "ts", "v."])
    tokens = [head] if head else []
    for i, directive in enumerate(_DIRECTIVES[:count]):
        tokens.append(directive)
        if i < count - 1 and seps[i]:
            tokens.append(seps[i])
    roll = rng.random()
    if roll < 0.05:
        tokens = ["%d", "-", "%m", "-", "%Y"]
    elif roll < 0.08:
        tokens = ["%Y", "-", "%m"] if interval is not Interval.Monthly else ["%Y"]
    elif roll < 0.10:
        tokens = [*["%Y", "%m", "%d", "%H", "%M"][: max(_NEEDED[interval], 3)], "1"]
    return tokens, "".join(t if t.startswith("%") else t.replace("%", "%%") for t in tokens)


def gen_group(rng: random.Random, tokens: list[str]) -> str:
    """The interval_timestamp group: the exact shape (mostly) or a looser one."""
    def width(tok: str) -> int:
        return _WIDTH.get(tok, 2)

    roll = rng.random()
    if roll < 0.55:
        parts = []
        for tok in tokens:
            if tok.startswith("%"):
                parts.append(rng.choice([f"[0-9]{{{width(tok)}}}", "[0-9]" * width(tok), f"(?:[0-9]){{{width(tok)}}}",
                                         f"[0-9]{{{width(tok)}}}" if width(tok) == 2 else "20[0-9][0-9]"]))
            else:
                parts.append(re.escape(tok))
        return "".join(parts)
    if roll < 0.65:
        return "".join(rf"\d{{{width(t)}}}" if t.startswith("%") else re.escape(t) for t in tokens)
    if roll < 0.72:
        return "".join(f"[0-9]{{1,{width(t)}}}" if t.startswith("%") else re.escape(t) for t in tokens)
    if roll < 0.78:  # fixed width, one digit short: unpadded text only
        short = rng.choice([i for i, t in enumerate(tokens) if t.startswith("%") and t != "%Y"] or [0])
        return "".join(("[0-9]" if i == short else f"[0-9]{{{width(t)}}}") if t.startswith("%") else re.escape(t)
                       for i, t in enumerate(tokens))
    if roll < 0.85:
        return r"[^/]+"
    # fixed width, but spaces where digits go and both cases of the separators
    return "".join(f"[ 0-9]{{{width(t)}}}" if t.startswith("%") else "[" + re.escape(t + t.swapcase()) + "]"
                   for t in tokens)


def gen_layout(rng: random.Random) -> tuple[ImportSpec, list[str], str]:
    interval = rng.choice(list(Interval))
    tokens, fmt = gen_format(rng, interval)
    literal = rng.choice(["", "", "scores_", "a.b/", "x+y[1]_", "dir/sub-", "v(2)?", "ñ/"])
    head = re.escape(literal)
    roll = rng.random()
    if roll < 0.07:
        head = r"\w*" + head
    elif roll < 0.12:
        head = "(?:a|b)" + head
    elif roll < 0.15:
        head = "(?i:" + (head or "z") + ")"
    tail = rng.choice([r"/data\.csv", r"(?:_[a-z]+)?\.csv", ".*", "", r"(?:\.csv|zz)"])
    file_match = f"{head}(?P<interval_timestamp>{gen_group(rng, tokens)}){tail}"
    default = interval.default_timestamp_format
    spec = make_spec(file_match=file_match, interval=interval, timestamp_format=None if fmt == default else fmt)
    return spec, tokens, literal


# -- generated names -----------------------------------------------------------------------------


def render_variant(rng: random.Random, tokens: list[str], moment: datetime) -> str:
    """The moment in the format's tokens, with now and then a field or separator written another way."""
    values = {"%Y": moment.year, "%m": moment.month, "%d": moment.day, "%H": moment.hour, "%M": moment.minute,
              "%S": moment.second}
    out = []
    for tok in tokens:
        if not tok.startswith("%"):
            out.append(tok.swapcase() if rng.random() < 0.1 else tok)
            continue
        value = values[tok]
        text = f"{value:0{_WIDTH.get(tok, 2)}d}"
        roll = rng.random()
        if roll < 0.06:
            text = str(value)  # unpadded: strptime parses it, it sorts elsewhere
        elif roll < 0.12 and value < 10:
            text = f" {value}"  # strptime reads a space-padded day only; the others are unparseable
        elif roll < 0.14:
            text = text.translate(_ARABIC)
        elif roll < 0.16:
            text = rng.choice(["13", "00", "32", "24", "60", "99"])  # out of range: unparseable or shifted
        out.append(text)
    return "".join(out)


def gen_names(rng: random.Random, spec: ImportSpec, tokens: list[str], literal: str,
              around: list[datetime]) -> list[str]:
    names = set()
    steps = [timedelta(0), timedelta(hours=1), timedelta(hours=-1), timedelta(minutes=59), timedelta(seconds=-1),
             timedelta(days=1), timedelta(days=-1), timedelta(days=6), timedelta(days=7), timedelta(days=31),
             timedelta(days=-30), timedelta(hours=23)]
    for _ in range(rng.randint(10, 60)):
        moment = rng.choice(around) + rng.choice(steps) + timedelta(seconds=rng.randint(0, 3) * rng.choice([0, 1, 3599]))
        head = literal
        roll = rng.random()
        if roll < 0.08 and literal:
            head = literal[:-1] + chr(ord(literal[-1]) - 1)  # sorts before the range
        elif roll < 0.16 and literal:
            head = literal[:-1] + chr(ord(literal[-1]) + 1)  # sorts after the range
        elif roll < 0.20:
            head = literal.upper()
        tail = rng.choice(["/data.csv", ".csv", "_x.csv", "", "/other.txt", "zz", "/data.csv.bak"])
        names.add(spec.object_prefix + head + render_variant(rng, tokens, moment) + tail)
    for _ in range(rng.randint(0, 5)):
        names.add(spec.object_prefix + "".join(rng.choice("0129-_T/.az~ ") for _ in range(rng.randint(0, 14))))
    return sorted(names)


def test_narrowed_listing_matches_exactly_what_the_full_listing_matches():
    rng = random.Random(SEED)
    narrowed_cases = smaller_cases = found_cases = 0
    for case in range(CASES):
        spec, tokens, literal = gen_layout(rng)
        base = datetime(rng.choice([2023, 2024]), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), tzinfo=UTC)
        around = [spec.interval.floor(base)]
        for _ in range(rng.randint(0, 3)):
            around.append(spec.interval.next_start(around[-1]) if rng.random() < 0.6
                          else spec.interval.floor(around[-1] + timedelta(days=rng.randint(2, 70))))
        requested = sorted(set(around[: rng.randint(1, len(around))]))
        names = gen_names(rng, spec, tokens, literal, around)
        ranges = plan_listing_ranges(spec, interval_starts=requested)
        listed = simulated_listing(names, ranges)
        assert listed == names_in_ranges(names, ranges)
        full = match_objects(spec, [ObjectInfo(name=n, generation=1, size=1) for n in names], intervals=requested)
        narrow = match_objects(spec, [ObjectInfo(name=n, generation=1, size=1) for n in listed], intervals=requested)
        assert narrow.by_interval == full.by_interval, (case, spec.file_match, spec.effective_timestamp_format, ranges)
        narrowed_cases += ranges.narrowed
        smaller_cases += len(listed) < len(names)
        found_cases += ranges.narrowed and bool(full.by_interval)
    # not vacuous: many layouts were narrowed, skipped names, and still found files
    assert narrowed_cases > CASES // 5 and smaller_cases > CASES // 5 and found_cases > CASES // 8


# -- examples --------------------------------------------------------------------------------------

DAY = datetime(2024, 5, 3, tzinfo=UTC)


@pytest.mark.parametrize(("file_match", "interval", "fmt"), [
    (r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})/scores\.parquet", Interval.Daily, None),
    (r"scores\.v1_(?P<interval_timestamp>[0-9]{8})\.csv", Interval.Daily, "%Y%m%d"),
    (r"^(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2})/x\.csv$", Interval.Hourly, None),
    (r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2})\.csv", Interval.Monthly, None),
    (r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})\.csv", Interval.Weekly, None),
    # \d as the seed writes it: a timestamp of non-ASCII digits never parses (parse_interval_start)
    (r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores\.parquet", Interval.Daily, None),
])
def test_sortable_layouts(file_match, interval, fmt):
    assert unsorted_reason(make_spec(file_match=file_match, interval=interval, timestamp_format=fmt)) is None


@pytest.mark.parametrize(("file_match", "interval", "fmt", "reason"), [
    (r"(?P<interval_timestamp>\w{4}-\w{2}-\w{2})\.csv", Interval.Daily, None, "zero-padded shape"),
    (r"(?P<interval_timestamp>[0-9]{1,2}-[0-9]{2}-[0-9]{4})\.csv", Interval.Daily, "%d-%m-%Y", "not zero-padded"),
    (r"(?P<interval_timestamp>[0-9-]+)\.csv", Interval.Daily, None, "zero-padded shape"),
    (r"[a-z]+_(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})", Interval.Daily, None, "not a literal"),
    (r"(?i:s_)(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})", Interval.Daily, None, "not a literal"),
    (r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})", Interval.Hourly, "%Y-%m-%d", "hourly interval's unit"),
    (r"(?P<interval_timestamp>[0-9]{4} [0-9]{2} [0-9]{2})", Interval.Daily, "%Y %m %d", "space"),
])
def test_unsortable_layouts_list_the_whole_prefix(file_match, interval, fmt, reason):
    spec = make_spec(file_match=file_match, interval=interval, timestamp_format=fmt)
    ranges = plan_listing_ranges(spec, interval_starts=[DAY])
    assert not ranges.narrowed and reason in ranges.reason
    assert ranges.describe().startswith("listing the whole prefix: ")


def test_ranges_merge_consecutive_intervals_and_span_many():
    spec = make_spec(file_match=r"s_(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})\.csv", interval=Interval.Daily,
                     timestamp_format=None)
    ranges = plan_listing_ranges(spec, interval_starts=[DAY, DAY + timedelta(days=1), DAY + timedelta(days=5)])
    assert ranges.ranges == (KeyRange("base/s_2024-05-03", "base/s_2024-05-05"),
                             KeyRange("base/s_2024-05-08", "base/s_2024-05-09"))
    many = plan_listing_ranges(spec, interval_starts=[DAY + timedelta(days=2 * i) for i in range(40)])
    assert many.ranges == (KeyRange("base/s_2024-05-03", "base/s_2024-07-21"),)
    last = plan_listing_ranges(spec, interval_starts=[datetime(9999, 12, 31, tzinfo=UTC)])
    assert last.ranges == (KeyRange("base/s_9999-12-31", None),)


def test_render_pads_years_below_1000():
    assert render_timestamp("%Y-%m-%dT%H", datetime(999, 1, 2, 3, tzinfo=UTC)) == "0999-01-02T03"


def test_retention_lists_the_whole_prefix_when_a_recorded_name_lies_outside_the_ranges():
    spec = make_spec(file_match=r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})/d\.csv", interval=Interval.Daily,
                     timestamp_format=None)
    inside = LoadedObject(interval_start=DAY, name="base/2024-05-03/d.csv", generation=1, size=1)
    assert retention_listing(spec, recorded=[inside]).ranges == (KeyRange("base/2024-05-03", "base/2024-05-04"),)
    moved = LoadedObject(interval_start=DAY, name="base/old/2024-05-03.csv", generation=1, size=1)
    fallback = retention_listing(spec, recorded=[inside, moved])
    assert not fallback.narrowed and "base/old/2024-05-03.csv" in fallback.reason


def test_names_in_ranges_is_bisect_consistent():
    names = sorted(["a", "b1", "b2", "c", "d"])
    ranges = ListingRanges(ranges=(KeyRange("b", "c"), KeyRange("d", None)))
    assert names_in_ranges(names, ranges) == ["b1", "b2", "d"]
    assert bisect.bisect_left(names, "b") == 1
