"""Datasets with a default table or partition expiry (BigQuery's sandbox sets 60 days): every table the worker
creates or fills carries its own expiry decision, so nothing it loaded expires with the dataset's default.

Through the conformance proxy's ``bigquery_table_expiry`` rule, which applies the dataset defaults to new
tables and deletes what expires when the test moves the proxy's clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import bigquery

from tests.emulators.worker_helpers import (
    PROJECT_ID,
    day,
    drop_days,
    import_window,
    ledger_rows,
    make_spec,
    retain,
    statuses,
    table_exists,
    table_rows,
)
from worker.core.spec import ImportSpec

DAY_MS = 86_400_000
SANDBOX_DAYS = 60
DAYS = [day(1), day(2), day(3)]


def sandbox_datasets(bq: bigquery.Client, spec: ImportSpec) -> None:
    """The raw and clean datasets as BigQuery's sandbox makes them: 60-day default table and partition expiry."""
    for name in (spec.raw_dataset_name, spec.clean_dataset_name):
        dataset = bigquery.Dataset(f"{PROJECT_ID}.{name}")
        dataset.default_table_expiration_ms = SANDBOX_DAYS * DAY_MS
        dataset.default_partition_expiration_ms = SANDBOX_DAYS * DAY_MS
        bq.create_dataset(dataset)


def intervals_in_ledger(bq: bigquery.Client, spec: ImportSpec) -> set[datetime]:
    return {r["interval_start"].astimezone(UTC) for r in ledger_rows(bq, spec)}


@pytest.mark.parametrize("mode", ["Overwrite", "Incremental"])
def test_default_expiry_of_the_datasets_never_loses_loaded_data(conformance, bucket, gcs_client, bq_client, unique_name,
                                                                mode):
    spec = make_spec(bucket.name, unique_name, mode=mode)
    sandbox_datasets(bq_client, spec)
    drop_days(bucket, spec, DAYS)
    first = import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[-1] + timedelta(days=1))
    assert set(statuses(first).values()) == {"loaded"}
    clean = table_rows(bq_client, spec.clean_table_id)
    assert intervals_in_ledger(bq_client, spec) == set(DAYS), "a ledger partition of an old interval must not expire"

    conformance.advance_clock(timedelta(days=SANDBOX_DAYS + 1))
    again = import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[-1] + timedelta(days=1))
    assert set(statuses(again).values()) == {"unchanged"}, "nothing may be reloaded from the files"
    assert intervals_in_ledger(bq_client, spec) == set(DAYS)
    assert all(table_exists(bq_client, spec.raw_table_id(d)) for d in DAYS)
    assert table_rows(bq_client, spec.clean_table_id) == clean

    deleted = retain(spec, gcs_client, bq_client, as_of=datetime(2024, 3, 1, tzinfo=UTC))
    assert len(deleted.outcome.deleted) == len(DAYS)
    conformance.advance_clock(timedelta(days=SANDBOX_DAYS + 1))
    last = import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[-1] + timedelta(days=1))
    assert set(statuses(last).values()) == {"retained"}
    assert intervals_in_ledger(bq_client, spec) == set(DAYS)
    assert all(r["sealed_at"] is not None for r in ledger_rows(bq_client, spec))
    assert all(table_exists(bq_client, spec.raw_table_id(d)) for d in DAYS), "raw tables: the only copy after retention"
    assert table_rows(bq_client, spec.clean_table_id) == clean
    assert conformance.answered["bigquery_table_expiry"] > 0


@pytest.mark.parametrize("keeps_source", [False, True], ids=["documented", "source_expiry_carried"])
def test_a_raw_table_never_gets_the_staging_tables_one_day_expiry(conformance, bucket, gcs_client, bq_client,
                                                                  unique_name, keeps_source):
    """BigQuery does not document whether a copy carries its source's expirationTime: either way the raw
    table ends with the spec's decision (none here), never the staging table's one day."""
    conformance.rule("bigquery_table_expiry").copies_keep_source_expiry(keeps_source)
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, DAYS[:1])
    import_window(spec, gcs_client, bq_client, DAYS[0])
    assert bq_client.get_table(spec.raw_table_id(DAYS[0])).expires is None
    conformance.advance_clock(timedelta(days=2))
    assert table_rows(bq_client, spec.raw_table_id(DAYS[0]))


def test_a_raw_table_with_raw_table_expiration_days_gets_it_from_the_copy(conformance, bucket, gcs_client, bq_client,
                                                                          unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", raw_table_expiration_days=45)
    sandbox_datasets(bq_client, spec)
    drop_days(bucket, spec, DAYS[:1])
    with conformance.recording() as log:
        import_window(spec, gcs_client, bq_client, DAYS[0])
    expires = bq_client.get_table(spec.raw_table_id(DAYS[0])).expires
    assert abs(expires - (datetime.now(UTC) + timedelta(days=45))) < timedelta(minutes=5)
    raw_name = spec.raw_table_id(DAYS[0]).rsplit(".", 1)[1]
    assert not [r for r in log if r.method == "PATCH" and r.target.split("?")[0].endswith(f"/tables/{raw_name}")], \
        "the copy job sets the raw table's expiry: no patch per interval"


def test_tables_an_earlier_release_left_with_an_inherited_expiry_are_repaired_with_a_warning(
        conformance, bucket, gcs_client, bq_client, unique_name, caplog):
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, DAYS[:2])
    import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[1] + timedelta(days=1))
    # What an earlier release left in datasets with a default expiry: tables that inherited it (a partition
    # expiry long enough that 2024's partitions are still there: a shorter one would have deleted them already).
    inherited = datetime.now(UTC) + timedelta(days=SANDBOX_DAYS)
    partition_days = 3650
    earlier = [spec.ledger_table_id, spec.pending_table_id, spec.raw_table_id(DAYS[0]), spec.raw_table_id(DAYS[1]),
               spec.clean_table_id]
    for table_id in earlier:
        table = bq_client.get_table(table_id)
        table.expires = inherited
        fields = ["expires"]
        if table.time_partitioning is not None:
            table.time_partitioning = bigquery.TimePartitioning(type_=table.time_partitioning.type_,
                                                                field=table.time_partitioning.field,
                                                                expiration_ms=partition_days * DAY_MS)
            fields.append("time_partitioning")
        bq_client.update_table(table, fields)

    with caplog.at_level(logging.WARNING, logger="worker"):
        again = import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[1] + timedelta(days=1))
    assert set(statuses(again).values()) == {"unchanged"}
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    for table_id in earlier:
        assert table_id in warnings, f"the repair must name {table_id}"
    for table_id in earlier:
        table = bq_client.get_table(table_id)
        assert table.expires is None, table_id
        assert table.time_partitioning is None or table.time_partitioning.expiration_ms is None, table_id

    conformance.advance_clock(timedelta(days=SANDBOX_DAYS + 1))
    assert intervals_in_ledger(bq_client, spec) == set(DAYS[:2])
    assert all(table_exists(bq_client, t) for t in earlier)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="worker"):
        import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[1] + timedelta(days=1))
    assert not [r for r in caplog.records if "expir" in r.getMessage()], "repaired once, not at every run"
