"""BigQuery's 4,000 partitions per job (``bigquery_partitions_per_job``) and the ledger migration that
stays within it (strict-cloud defect 5).

"Each job operation (query or load) can affect up to 4,000 partitions. BigQuery rejects any query or load
job that attempts to modify more than 4,000 partitions." (https://cloud.google.com/bigquery/quotas#partitioned_tables)
Copy jobs have no such limit (https://cloud.google.com/bigquery/quotas#copy_jobs).
"""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from tests.emulators.worker_helpers import make_spec, write_spec
from worker.ledger import LEDGER_SCHEMA

RULE = "bigquery_partitions_per_job"


def _q(table_id: str) -> str:
    return f"`{table_id.replace('.', '`.`')}`"


def _days(n: int) -> str:
    """A SELECT of ``n`` rows on ``n`` different days (one partition each)."""
    return (f"SELECT d AS id, TIMESTAMP_ADD(TIMESTAMP '2010-01-01', INTERVAL d DAY) AS ts "
            f"FROM UNNEST(GENERATE_ARRAY(0, {n - 1})) AS d")


@pytest.fixture
def partitioned(bq_client, unique_name, services):
    dataset = f"{services.project_id}.{unique_name}"
    bq_client.create_dataset(dataset)
    table = bigquery.Table(f"{dataset}.t", schema=[bigquery.SchemaField("id", "INT64"),
                                                    bigquery.SchemaField("ts", "TIMESTAMP")])
    table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="ts")
    bq_client.create_table(table)
    return table.reference


def _count(bq_client, table_id: str) -> int:
    return next(iter(bq_client.query(f"SELECT COUNT(*) AS n FROM {_q(table_id)}").result()))["n"]


def test_an_insert_select_into_more_than_4000_partitions_fails_and_writes_nothing(bq_client, partitioned, conformance):
    from worker.ledger import MAX_PARTITIONS_PER_JOB

    table_id = f"{partitioned.project}.{partitioned.dataset_id}.{partitioned.table_id}"
    refused = conformance.answered[RULE]
    with pytest.raises(gexc.GoogleAPIError, match="Too many partitions produced by query, allowed 4000, "
                                                  "query produces at least 4001 partitions"):
        bq_client.query(f"INSERT INTO {_q(table_id)} (id, ts) {_days(4001)}").result()
    assert conformance.answered[RULE] == refused + 1
    assert _count(bq_client, table_id) == 0, "the job failed: no partition was written"

    # the column list decides which SELECT column is the partition column; query parameters are honoured
    job = bq_client.query(f"INSERT INTO {_q(table_id)} (ts, id) SELECT ts, id FROM ({_days(4100)}) WHERE id < @n",
                          job_config=bigquery.QueryJobConfig(query_parameters=[
                              bigquery.ScalarQueryParameter("n", "INT64", MAX_PARTITIONS_PER_JOB)]))
    job.result()
    assert _count(bq_client, table_id) == 4000
    with pytest.raises(gexc.GoogleAPIError, match="at least 4100 partitions"):  # no column list: the table's order
        bq_client.query(f"INSERT INTO {_q(table_id)} {_days(4100)}").result()


def test_a_query_writing_a_partitioned_destination_counts_its_result(bq_client, partitioned, conformance):
    config = bigquery.QueryJobConfig(destination=partitioned, write_disposition="WRITE_APPEND")
    with pytest.raises(gexc.GoogleAPIError, match="Too many partitions produced by query"):
        bq_client.query(_days(4001), job_config=config).result()


def test_a_copy_job_is_not_limited_and_keeps_the_layout(bq_client, partitioned, conformance):
    """The limit names query and load jobs; the ledger migration's swap is a copy job of every partition."""
    table_id = f"{partitioned.project}.{partitioned.dataset_id}.{partitioned.table_id}"
    for start in (0, 4000):
        bq_client.query(f"INSERT INTO {_q(table_id)} (id, ts) SELECT id + {start}, TIMESTAMP_ADD(ts, INTERVAL {start} DAY) "
                        f"FROM ({_days(4000)}) WHERE id + {start} < 4500").result()
    bq_client.copy_table(table_id, f"{table_id}_copy").result()
    copied = bq_client.get_table(f"{table_id}_copy")
    assert copied.time_partitioning.field == "ts" and _count(bq_client, f"{table_id}_copy") == 4500


def test_day_chunks_never_exceed_the_limit_whatever_the_gaps():
    from datetime import date, timedelta

    from worker.ledger import day_chunks

    days = [date(2000, 1, 1) + timedelta(days=3 * i) for i in range(9001)]
    chunks = day_chunks(days)
    assert [len(c) for c in chunks] == [4000, 4000, 1001]
    assert [d for c in chunks for d in c] == days


def test_migrating_a_ledger_of_more_than_4000_interval_days_keeps_every_row(bq_client, unique_name, tmp_path, capsys,
                                                                             conformance):
    """Strict-cloud defect 5: ``migrate-ledger`` copied every row back with one ``INSERT ... SELECT``; over 4,000
    interval days BigQuery refuses it and the live ledger was left empty (dropped and recreated before). Now the
    rows go into a temporary partitioned table in chunks of at most 4,000 days, counted, then swapped in."""
    from worker.__main__ import main

    spec = make_spec("some-bucket", unique_name)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    # an earlier release's ledger: unpartitioned, and without the sealed_at column (upgraded first)
    bq_client.create_table(bigquery.Table(spec.ledger_table_id, schema=[f for f in LEDGER_SCHEMA if f.name != "sealed_at"]))
    ledger = _q(spec.ledger_table_id)
    bq_client.query(
        f"INSERT INTO {ledger} (asset, interval_start, object_name, generation, size_bytes, interval_rows, loaded_at) "
        f"SELECT '{spec.name}', TIMESTAMP_ADD(TIMESTAMP '2010-01-01', INTERVAL d DAY), CONCAT('o', CAST(d AS STRING)), "
        f"d, 10, 1, TIMESTAMP '2020-01-01' FROM UNNEST(GENERATE_ARRAY(0, 4100)) AS d"
    ).result()
    bq_client.query(f"INSERT INTO {ledger} (asset, interval_start, object_name, generation) "
                    "VALUES ('other/asset', TIMESTAMP '2024-01-06', 'y', 2)").result()
    before = sorted((r["asset"], r["object_name"], r["generation"]) for r in bq_client.query(f"SELECT * FROM {ledger}").result())
    assert len(before) == 4102

    assert main(["migrate-ledger", "--spec", str(write_spec(tmp_path, spec)), "--force"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)

    assert result["migrated"] and result["rows"] == 4102
    migrated = bq_client.get_table(spec.ledger_table_id)
    assert migrated.time_partitioning.field == "interval_start" and migrated.clustering_fields == ["asset"]
    after = sorted((r["asset"], r["object_name"], r["generation"]) for r in bq_client.query(f"SELECT * FROM {ledger}").result())
    assert after == before, "every row of every asset kept"
    assert "sealed_at" in [f.name for f in migrated.schema]
    tables = {t.table_id for t in bq_client.list_tables(f"{spec.project_id}.{spec.raw_dataset_name}")}
    assert result["backup"].rsplit(".", 1)[1] in tables
    assert not [t for t in tables if "_partitioned_" in t], "the temporary table is dropped after the swap"
    # the limit is live in this test: the single statement the migration used to send is refused
    with pytest.raises(gexc.GoogleAPIError, match="Too many partitions produced by query"):
        bq_client.query(f"INSERT INTO {ledger} SELECT * FROM {ledger}").result()
