"""The table-expiry rule (localdev/conformance/rules/bigquery_table_expiry.py): a dataset's default table and
partition expiry apply to the tables created in it, unless a table sets its own, and what expires is gone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from tests.emulators.worker_helpers import PROJECT_ID, table_rows

DAY_MS = 86_400_000
SCHEMA = [bigquery.SchemaField("ts", "TIMESTAMP"), bigquery.SchemaField("n", "INT64")]


def dataset_with_defaults(bq: bigquery.Client, name: str, *, table_days: int | None = 60,
                          partition_days: int | None = None) -> str:
    dataset = bigquery.Dataset(f"{PROJECT_ID}.{name}")
    dataset.default_table_expiration_ms = table_days * DAY_MS if table_days else None
    dataset.default_partition_expiration_ms = partition_days * DAY_MS if partition_days else None
    bq.create_dataset(dataset)
    return f"{PROJECT_ID}.{name}"


def gone(bq: bigquery.Client, table_id: str) -> bool:
    try:
        bq.get_table(table_id)
    except gexc.NotFound:
        return True
    return False


def test_a_table_inherits_the_dataset_default_and_is_deleted_when_the_clock_passes_it(conformance, bq_client,
                                                                                       unique_name):
    dataset = dataset_with_defaults(bq_client, unique_name, table_days=60)
    created = bq_client.create_table(bigquery.Table(f"{dataset}.t", schema=SCHEMA))
    assert created.expires is not None
    assert abs(created.expires - (datetime.now(UTC) + timedelta(days=60))) < timedelta(minutes=5)
    assert bq_client.get_table(f"{dataset}.t").expires == created.expires
    conformance.advance_clock(timedelta(days=59))
    assert not gone(bq_client, f"{dataset}.t")
    conformance.advance_clock(timedelta(days=2))
    assert gone(bq_client, f"{dataset}.t")


def test_a_table_with_its_own_expiry_keeps_it_and_a_removed_expiry_never_expires(conformance, bq_client, unique_name):
    dataset = dataset_with_defaults(bq_client, unique_name, table_days=60)
    own = bigquery.Table(f"{dataset}.own", schema=SCHEMA)
    own.expires = datetime.now(UTC) + timedelta(days=100)
    assert abs(bq_client.create_table(own).expires - own.expires) < timedelta(seconds=1)
    removed = bq_client.create_table(bigquery.Table(f"{dataset}.removed", schema=SCHEMA))
    removed.expires = None  # tables.patch {"expirationTime": null}: "removed" takes precedence over the default
    assert bq_client.update_table(removed, ["expires"]).expires is None
    conformance.advance_clock(timedelta(days=90))
    assert bq_client.get_table(f"{dataset}.removed").expires is None
    assert not gone(bq_client, f"{dataset}.own")
    conformance.advance_clock(timedelta(days=20))
    assert gone(bq_client, f"{dataset}.own")
    assert not gone(bq_client, f"{dataset}.removed")


def test_partitions_expire_from_their_boundary_unless_the_table_says_never(conformance, bq_client, unique_name):
    dataset = dataset_with_defaults(bq_client, unique_name, table_days=60, partition_days=10)
    tables = {}
    for name, expiration_ms in (("inherits", None), ("never", -1)):
        table = bigquery.Table(f"{dataset}.{name}", schema=SCHEMA)
        table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="ts", expiration_ms=expiration_ms)
        tables[name] = bq_client.create_table(table)
    # "only one of defaultTableExpirationMs and defaultPartitionExpirationMs will be used" for a partitioned table
    assert tables["inherits"].expires is None and tables["inherits"].time_partitioning.expiration_ms == 10 * DAY_MS
    assert tables["never"].time_partitioning.expiration_ms is None  # negative: "no expiration"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for name in tables:
        bq_client.query(f"INSERT INTO `{dataset}.{name}` (ts, n) VALUES "
                        f"(TIMESTAMP '{today - timedelta(days=30):%Y-%m-%d}', 1), "
                        f"(TIMESTAMP '{today - timedelta(days=9, hours=-1):%Y-%m-%d %H:%M:%S}', 2), "
                        f"(TIMESTAMP '{today:%Y-%m-%d}', 3)").result()
    # the partition 30 days back expired long ago: gone at the next request
    assert sorted(n for _, n in table_rows(bq_client, f"{dataset}.inherits")) == [2, 3]
    conformance.advance_clock(timedelta(days=2))  # the partition 9 days back is now more than 10 days old
    assert sorted(n for _, n in table_rows(bq_client, f"{dataset}.inherits")) == [3]
    assert sorted(n for _, n in table_rows(bq_client, f"{dataset}.never")) == [1, 2, 3]


@pytest.mark.parametrize("keeps_source", [False, True], ids=["documented", "source_expiry_carried"])
def test_a_copy_created_table_inherits_the_default_unless_the_copy_sets_its_expiry(conformance, bq_client, unique_name,
                                                                                    keeps_source):
    conformance.rule("bigquery_table_expiry").copies_keep_source_expiry(keeps_source)
    dataset = dataset_with_defaults(bq_client, unique_name, table_days=60)
    source = bigquery.Table(f"{dataset}.source", schema=SCHEMA)
    source.expires = datetime.now(UTC) + timedelta(days=1)
    bq_client.create_table(source)
    bq_client.copy_table(f"{dataset}.source", f"{dataset}.plain").result()
    config = bigquery.CopyJobConfig()
    config.destination_expiration_time = (datetime.now(UTC) + timedelta(days=200)).isoformat().replace("+00:00", "Z")
    bq_client.copy_table(f"{dataset}.source", f"{dataset}.own", job_config=config).result()
    plain = bq_client.get_table(f"{dataset}.plain").expires
    want = timedelta(days=1) if keeps_source else timedelta(days=60)
    assert abs(plain - (datetime.now(UTC) + want)) < timedelta(minutes=5)
    assert abs(bq_client.get_table(f"{dataset}.own").expires - (datetime.now(UTC) + timedelta(days=200))) \
        < timedelta(minutes=5)
    conformance.advance_clock(timedelta(days=61))
    assert gone(bq_client, f"{dataset}.plain") and gone(bq_client, f"{dataset}.source")
    assert not gone(bq_client, f"{dataset}.own")


def test_without_the_rule_the_emulator_keeps_every_table(conformance, bq_client, unique_name):
    dataset = dataset_with_defaults(bq_client, unique_name, table_days=60)
    with conformance.disabled("bigquery_table_expiry"):
        bq_client.create_table(bigquery.Table(f"{dataset}.t", schema=SCHEMA))
        conformance.advance_clock(timedelta(days=61))
        assert bq_client.get_table(f"{dataset}.t").expires is None
