"""Imports and retention of a sortable layout list only the requested intervals' key range (through the
conformance proxy: the list requests carry ``startOffset``/``endOffset`` of the range; gcp-storage-emulator
ignores both and the worker drops and stops client-side, so the listed counts cover the range only)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from localdev.conformance.exchange import Service
from tests.emulators.worker_helpers import day, drop_days, import_window, make_spec, retain
from worker.core.contract import IntervalStatus

pytestmark = pytest.mark.emulators

SORTABLE_MATCH = r"(?P<interval_timestamp>[0-9]{4}-[0-9]{2}-[0-9]{2})/scores\.parquet"


def list_queries(conformance, bucket_name: str, action) -> tuple[object, list[dict[str, str]]]:
    """``action()`` and the query of every object-list request it sent to GCS."""
    with conformance.recording() as log:
        result = action()
    path = f"/storage/v1/b/{bucket_name}/o"
    queries = []
    for r in log:
        parts = urlsplit(r.target)
        if r.service is Service.STORAGE and r.method == "GET" and parts.path == path:
            queries.append({k: v[0] for k, v in parse_qs(parts.query).items()})
    return result, queries


def test_import_and_retention_list_the_intervals_range(services, bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, file_match=SORTABLE_MATCH, mode="Incremental", retention_days=3)
    drop_days(bucket, spec, [day(d) for d in range(2, 9)], rows=2)

    summary, queries = list_queries(services.conformance, bucket.name,
                                    lambda: import_window(spec, gcs_client, bq_client, day(5)))
    assert [q.get("startOffset") for q in queries] == ["drops/2024-01-05"]
    assert [q.get("endOffset") for q in queries] == ["drops/2024-01-06"]
    assert summary.listed == 1 and [r.status for r in summary.intervals] == [IntervalStatus.LOADED]

    _plan, queries = list_queries(services.conformance, bucket.name,
                                 lambda: retain(spec, gcs_client, bq_client, as_of=datetime(2024, 1, 12, tzinfo=UTC),
                                                dry_run=True))
    assert [(q.get("startOffset"), q.get("endOffset")) for q in queries] == [("drops/2024-01-05", "drops/2024-01-06")]


def test_an_unsortable_layout_lists_the_whole_prefix(services, bucket, gcs_client, bq_client, unique_name):
    # a group without the format's fixed shape: not narrowed
    spec = make_spec(bucket.name, unique_name, mode="Incremental",
                     file_match=r"(?P<interval_timestamp>[0-9-]{10})/[a-z0-9_]+\.parquet")
    drop_days(bucket, spec, [day(d) for d in range(2, 6)], rows=2)
    summary, queries = list_queries(services.conformance, bucket.name,
                                    lambda: import_window(spec, gcs_client, bq_client, day(3)))
    assert len(queries) == 1 and "startOffset" not in queries[0] and "endOffset" not in queries[0]
    assert summary.listed == 4 and [r.status for r in summary.intervals] == [IntervalStatus.LOADED]
