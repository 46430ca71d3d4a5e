"""Issue 19: a range run loads ``max_concurrent_intervals`` intervals at once, in waves, and its DML statements grow
with waves and rounds, not intervals: one pending-load INSERT per wave, then one publish MERGE, one ledger MERGE
and one pending-load DELETE for the round. The end state equals one interval after another."""

from __future__ import annotations

import dataclasses

import pytest
from google.cloud import bigquery

from tests.emulators.worker_helpers import day, drop_days, import_window, make_spec, rows_per_interval
from worker.core.contract import IntervalStatus

pytestmark = pytest.mark.emulators

DML_VERBS = ("INSERT", "UPDATE", "DELETE", "MERGE")


@pytest.fixture
def dml_log(monkeypatch) -> list[str]:
    """Every DML statement the worker sends (the call goes through unchanged: this only watches)."""
    statements: list[str] = []
    real_query = bigquery.Client.query

    def watched(self, query, *args, **kwargs):
        if query.lstrip().upper().startswith(DML_VERBS):
            statements.append(query.lstrip().split(None, 1)[0].upper())
        return real_query(self, query, *args, **kwargs)

    monkeypatch.setattr(bigquery.Client, "query", watched)
    return statements


@pytest.mark.parametrize(("concurrency", "waves"), [(2, 3), (8, 1)])
def test_five_fresh_intervals_take_one_pending_write_per_wave_and_three_statements_more(
        concurrency, waves, dml_log, bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", max_concurrent_intervals=concurrency)
    days = [day(d) for d in range(5, 10)]
    drop_days(bucket, spec, days, rows=[1, 2, 3, 4, 5])

    summary = import_window(spec, gcs_client, bq_client, days[0], day(10))

    assert [r.status for r in summary.intervals] == [IntervalStatus.LOADED] * 5
    assert rows_per_interval(bq_client, spec) == dict(zip(days, [1, 2, 3, 4, 5], strict=True))
    assert dml_log == ["INSERT"] * waves + ["MERGE", "MERGE", "DELETE"], dml_log


def test_waves_end_as_one_interval_after_another(bucket, gcs_client, bq_client, unique_name):
    days = [day(d) for d in range(5, 10)]
    waved = make_spec(bucket.name, f"{unique_name}w", mode="Incremental", max_concurrent_intervals=2)
    sequential = dataclasses.replace(waved, name=f"{unique_name}s", destination_table=f"{unique_name}s",
                                     max_concurrent_intervals=1)
    drop_days(bucket, waved, days, rows=[3, 1, 4, 1, 5])

    for spec in (waved, sequential):
        summary = import_window(spec, gcs_client, bq_client, days[0], day(10))
        assert [r.status for r in summary.intervals] == [IntervalStatus.LOADED] * 5

    assert rows_per_interval(bq_client, waved) == rows_per_interval(bq_client, sequential)
    again = import_window(waved, gcs_client, bq_client, days[0], day(10))
    assert [r.status for r in again.intervals] == [IntervalStatus.UNCHANGED] * 5
