"""List requests of a narrowed listing, against a paging stand-in of GCS (1,000 names a page, ``startOffset``
and ``endOffset`` honoured or, like gcp-storage-emulator, ``endOffset`` ignored): one daily interval of 100
files among many objects costs ceil(100 / 1,000) = 1 request, the whole prefix ceil(objects / 1,000)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from worker.core.gcs import list_ranges
from worker.core.listing_ranges import plan_listing_ranges
from worker.core.matching import match_objects
from worker.core.records import LoadedObject
from worker.core.spec import ImportSpec
from worker.retention import retention_listing

pytestmark = pytest.mark.unit

DAY = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass
class _Iterator:
    pages: object
    next_page_token: str | None = None


class PagingGCS:
    """``list_blobs`` over sorted names, ``page_size`` a page, counting requests (pages fetched)."""

    def __init__(self, names: list[str], *, honours_end_offset: bool = True) -> None:
        self.names, self.honours_end_offset, self.requests = sorted(names), honours_end_offset, 0

    def bucket(self, name: str, user_project: str | None = None) -> str:
        return name

    def list_blobs(self, bucket: str, *, prefix=None, start_offset=None, end_offset=None, page_size=1000, **_):
        names = [n for n in self.names[bisect.bisect_left(self.names, start_offset or ""):] if n.startswith(prefix or "")]
        if end_offset is not None and self.honours_end_offset:
            names = [n for n in names if n < end_offset]
        iterator = _Iterator(pages=None)

        def pages():
            for at in range(0, max(len(names), 1), page_size):
                self.requests += 1
                iterator.next_page_token = "more" if at + page_size < len(names) else None
                yield [SimpleNamespace(name=n, generation=1, size=1, updated=None) for n in names[at:at + page_size]]

        iterator.pages = pages()
        return iterator


def make_spec(file_match: str) -> ImportSpec:
    return ImportSpec(name="req", project_id="my-project", bucket_name="bucket", path_base="drops",
                      file_match=file_match, destination_table="t", raw_dataset_name="raw", clean_dataset_name="clean",
                      interval="Daily", mode="Incremental", retention_days=3, format="CSV")


def bucket_names(total: int) -> list[str]:
    """``total`` objects under drops/: 100 files on each of total/100 days, the wanted day in the middle."""
    days = total // 100
    first = DAY - timedelta(days=days // 2)
    return [f"drops/{first + timedelta(days=d):%Y-%m-%d}/part-{i:03d}.csv" for d in range(days) for i in range(100)]


@pytest.mark.parametrize("total", [10_000, 100_000])
@pytest.mark.parametrize("honours_end_offset", [True, False])
def test_one_interval_costs_ceil_of_its_objects_over_a_page(total, honours_end_offset):
    names = bucket_names(total)
    narrow = make_spec(r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})/part-[0-9]+\.csv")
    whole = make_spec(r"(?P<interval_timestamp>[0-9-]{10})/part-\d+\.csv")  # no fixed shape: not narrowed
    results = {}
    for label, spec in (("narrow", narrow), ("whole", whole)):
        gcs = PagingGCS(names, honours_end_offset=honours_end_offset)
        ranges = plan_listing_ranges(spec, interval_starts=[DAY])
        matched = match_objects(spec, list_ranges(gcs, spec, ranges=ranges), intervals=[DAY])
        results[label] = (gcs.requests, [o.name for o in matched.by_interval[DAY]], matched.listed)
    assert results["narrow"][1] == results["whole"][1] and len(results["narrow"][1]) == 100
    assert results["narrow"][0] == math.ceil(100 / 1000) == 1
    assert results["whole"][0] == math.ceil(total / 1000)
    # without endOffset the server sends one full page from startOffset; the client stops in it
    assert results["narrow"][2] == 100


def test_retention_of_one_interval_lists_its_range_only():
    names = bucket_names(10_000)
    spec = make_spec(r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})/part-[0-9]+\.csv")
    recorded = [LoadedObject(interval_start=DAY, name=f"drops/2024-03-01/part-{i:03d}.csv", generation=1, size=1)
                for i in range(100)]
    gcs = PagingGCS(names)
    listed = [o.name for o in list_ranges(gcs, spec, ranges=retention_listing(spec, recorded=recorded))]
    assert listed == [o.name for o in recorded] and gcs.requests == 1
    whole = PagingGCS(names)
    assert len(list(list_ranges(whole, spec, ranges=plan_listing_ranges(spec, interval_starts=[])))) == 10_000
    assert whole.requests == 10
