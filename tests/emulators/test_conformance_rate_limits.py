"""Strict-cloud defects 2, 9 and 11 through the conformance proxy: BigQuery's 403 ``rateLimitExceeded`` (a
short-term limit, retried) and ``quotaExceeded`` (a quota, named), ``jobs.get`` of another principal's job
(403, named with its grant), and ``jobs.get`` answering 404 right after ``jobs.insert``.

https://cloud.google.com/bigquery/docs/troubleshoot-quotas
https://cloud.google.com/bigquery/quotas#standard_tables (5 table metadata updates per table per 10 s)
https://cloud.google.com/bigquery/docs/managing-jobs#required_permissions (bigquery.jobs.get for others' jobs)
https://github.com/googleapis/python-bigquery/issues/2134 (404 on jobs.get right after the insert)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from localdev.conformance import ChaosKind
from localdev.samples import SCORES_SCHEMA
from tests.emulators.worker_helpers import (
    count_rows,
    day,
    drop_days,
    import_window,
    ledger_rows,
    make_spec,
    statuses,
    table_rows,
)
from tests.faults.bigquery_faults import BigQueryFaults, Rule, error
from worker.bigquery_client import bigquery_client
from worker.bigquery_datasets import ensure_datasets
from worker.core.errors import TransientError, WorkerError
from worker.core.records import LedgerEntry, ObjectInfo, PendingKey
from worker.core.retries import RetryBudget
from worker.ledger import Ledger
from worker.planning import plan_interval_load

RATE_RULE = "bigquery_table_update_rate"
BUDGET = RetryBudget()


def _schema() -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField.from_api_repr(dict(f)) for f in SCORES_SCHEMA]


def _patch_description(bq: bigquery.Client, table: bigquery.Table, text: str) -> bigquery.Table:
    table.description = text
    return bq.update_table(table, ["description"], retry=None)


def test_table_update_rate_rule_refuses_the_sixth_update_within_ten_seconds(conformance, bq_client, unique_name):
    """The rule itself: 5 metadata updates of one table per 10 s; the 6th is 403 rateLimitExceeded; after the
    window it is accepted again."""
    bq_client.create_dataset(f"test-project.{unique_name}")
    table = bq_client.create_table(bigquery.Table(f"test-project.{unique_name}.t", schema=_schema()))
    for n in range(4):  # the insert was update 1
        table = _patch_description(bq_client, table, f"v{n}")
    with pytest.raises(gexc.Forbidden) as refused:
        _patch_description(bq_client, bq_client.get_table(table.reference), "six")
    assert refused.value.errors[0]["reason"] == "rateLimitExceeded"
    assert conformance.answered[RATE_RULE] >= 1
    conformance.advance_clock(timedelta(seconds=11))
    _patch_description(bq_client, bq_client.get_table(table.reference), "after the window")


def test_copy_job_refused_by_the_table_update_rate_runs_again_after_a_backoff(conformance, bucket, gcs_client,
                                                                            bq_client, unique_name):
    """Defect 2: the raw table was updated 5 times in the last 10 s, so the interval's copy job FAILS with
    rateLimitExceeded. Before, the worker reported "Permission denied" and failed the interval; now the next
    attempt id runs after a backoff and the import loads."""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=3)
    ensure_datasets(bq_client, spec, budget=BUDGET)
    raw = bq_client.create_table(bigquery.Table(spec.raw_table_id(day(5)), schema=_schema()))
    for n in range(4):
        raw = _patch_description(bq_client, raw, f"v{n}")
    before = conformance.answered[RATE_RULE]

    summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert conformance.answered[RATE_RULE] > before  # the limit fired on the worker's copy
    (interval,) = summary.intervals
    assert any("_copy_a" in j and not j.endswith("_copy_a0") for j in interval.job_ids)
    assert count_rows(bq_client, spec.clean_table_id) == 3
    assert len(ledger_rows(bq_client, spec)) == 1


def test_repeated_imports_of_one_table_within_the_rate_window_all_succeed(conformance, bucket, gcs_client,
                                                                          bq_client, unique_name):
    """Defect 2: four imports of the same Overwrite table in a row (a new generation each time) update the clean
    and raw tables more than 5 times in 10 s; each one succeeds and the clean table holds the last upload."""
    spec = make_spec(bucket.name, unique_name)
    before = conformance.answered[RATE_RULE]
    for n in range(4):
        drop_days(bucket, spec, [day(5)], rows=2 + n, seed=n)
        summary = import_window(spec, gcs_client, bq_client, day(5))
        assert statuses(summary) == {"20240105": "loaded"}
    assert conformance.answered[RATE_RULE] > before
    assert count_rows(bq_client, spec.clean_table_id) == 5


def test_chaos_rate_limited_calls_are_retried(conformance, bucket, gcs_client, bq_client, unique_name):
    """Defect 2: BigQuery answers a share of the calls 403 rateLimitExceeded (the api-requests-per-user limit);
    the run's retry budget retries them like a 429 or a 5xx."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5), day(6)], rows=3)
    with conformance.chaos(seed=7, rate=0.25, kinds=frozenset({ChaosKind.BIGQUERY_RATE_LIMITED})):
        summary = import_window(spec, gcs_client, bigquery_client(project_id="test-project"), day(5), day(7))
    assert statuses(summary) == {"20240105": "loaded", "20240106": "loaded"}
    assert conformance.chaos_injected.get(ChaosKind.BIGQUERY_RATE_LIMITED.value, 0) > 0
    assert count_rows(bq_client, spec.clean_table_id) == 6


def test_quota_exceeded_names_the_quota_and_is_not_retried(bucket, gcs_client, unique_name):
    """Defect 2: 403 quotaExceeded is a longer-term quota: one line naming it, not "Permission denied", and not
    retried within seconds."""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=2)
    bq = bigquery_client(project_id="test-project")
    quota = ("Quota exceeded: Your table exceeded quota for imports or query appends per table. For more "
             "information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas")
    refusal = Rule("load insert over quota", "https://cloud.google.com/bigquery/docs/troubleshoot-quotas",
                   match=lambda m, u, b: m == "POST" and u.split("?")[0].endswith("/jobs") and "load" in (b.get("configuration") or {}),
                   answer=error(403, "quotaExceeded", quota), times=99)
    BigQueryFaults(bq, [refusal])

    with pytest.raises(WorkerError) as failure:
        import_window(spec, gcs_client, bq, day(5))

    message = str(failure.value)
    assert "quota exceeded" in message.lower() and "imports or query appends per table" in message
    assert "Permission denied" not in message and "\n" not in message
    assert not isinstance(failure.value, TransientError)
    assert refusal.hits == 1  # not retried


def test_reattach_lookup_of_another_principals_job_names_the_job_and_the_grant(conformance, bucket, gcs_client,
                                                                               bq_client, unique_name):
    """Defect 9: jobs.get of a job another service account created answers 403; the worker named a table and
    dataEditor/jobUser. Now: one line naming the job, that it belongs to another principal, and bigquery.jobs.get."""
    spec = make_spec(bucket.name, unique_name)
    blobs = drop_days(bucket, spec, [day(5)], rows=2)
    blob = bucket.get_blob(blobs[day(5)].name)
    plan = plan_interval_load(spec, interval_start=day(5), objects=[ObjectInfo.from_blob(blob)])
    job_id = f"{plan.copy_job_base(spec=spec)}_a0"
    conformance.rule("bigquery_foreign_jobs").mark_foreign(job_id)  # another principal's copy of this load

    with pytest.raises(WorkerError) as failure:
        import_window(spec, gcs_client, bq_client, day(5))

    message = str(failure.value)
    assert job_id in message and "another principal" in message
    assert "bigquery.jobs.get" in message and "roles/bigquery.resourceViewer" in message
    assert "Permission denied on BigQuery table" not in message and "\n" not in message
    assert conformance.answered["bigquery_foreign_jobs"] > 0


def test_job_not_found_right_after_insert_is_polled_again(conformance, bucket, gcs_client, bq_client, unique_name):
    """Defect 11: every jobs.insert is followed by one 404 on its first jobs.get (python-bigquery#2134); the
    interval used to fail. Now it loads, with the same clean rows and ledger as without the 404s."""
    days = [day(5), day(6)]
    control = make_spec(bucket.name, f"{unique_name}c", mode="Incremental")
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, days, rows=3)
    expected = import_window(control, gcs_client, bq_client, days[0], days[-1] + timedelta(days=1))
    assert statuses(expected) == {"20240105": "loaded", "20240106": "loaded"}

    with conformance.chaos(seed=1, rate=1.0, kinds=frozenset({ChaosKind.JOB_NOT_FOUND_AFTER_INSERT})):
        summary = import_window(spec, gcs_client, bq_client, days[0], days[-1] + timedelta(days=1))

    assert statuses(summary) == {"20240105": "loaded", "20240106": "loaded"}
    assert conformance.chaos_injected.get(ChaosKind.JOB_NOT_FOUND_AFTER_INSERT.value, 0) > 0
    assert table_rows(bq_client, spec.clean_table_id) == table_rows(bq_client, control.clean_table_id)
    keys = lambda rows: sorted((r["interval_start"], r["object_name"], r["generation"]) for r in rows)  # noqa: E731
    assert keys(ledger_rows(bq_client, spec)) == keys(ledger_rows(bq_client, control))


def test_pending_write_is_idempotent(bucket, bq_client, unique_name):
    """Defect 11: writing the same pending load twice (a statement run again) leaves one row per object."""
    spec = make_spec(bucket.name, unique_name)
    ensure_datasets(bq_client, spec, budget=BUDGET)
    ledger = Ledger(bq_client, spec)
    ledger.ensure()
    entries = [LedgerEntry(name=f"drops/2024-01-05/f{n}.parquet", generation=100 + n, size=10, job_id="copy_base")
               for n in range(3)]
    now = datetime(2024, 1, 6, tzinfo=UTC)
    key = PendingKey(copy_job_base="copy_base", staging_table_id="staging", append=False)
    other = PendingKey(copy_job_base="other", staging_table_id="staging2", append=False)
    for _ in range(2):
        ledger.pending_loads.write(interval_start=day(5), key=key, entries=entries, created_at=now)
    ledger.pending_loads.write(interval_start=day(5), key=key,
                               entries=[*entries, LedgerEntry(name="drops/2024-01-05/g.parquet", generation=7, size=1,
                                                              job_id="copy_base")], created_at=now)
    ledger.pending_loads.write(interval_start=day(5), key=other, entries=entries[:1], created_at=now)

    pending = ledger.pending_loads.read(start=day(5), end=day(6))[day(5)]
    assert sorted((e.name, e.generation) for e in pending[key]) == sorted(
        [(e.name, e.generation) for e in entries] + [("drops/2024-01-05/g.parquet", 7)])
    assert [(e.name, e.generation) for e in pending[other]] == [(entries[0].name, entries[0].generation)]
