"""The clean table's layout against the emulators: created with clustering, description and column
descriptions; clustering changed in place on an existing table; a partitioning change refused."""

from __future__ import annotations

import dataclasses

import pytest
from google.cloud import bigquery

from tests.emulators.worker_helpers import day, drop, import_window, make_spec, rows_per_interval
from worker.core.errors import WorkerError

SCHEMA = [{"name": "id", "type": "INT64", "description": "The row's id"}, {"name": "name", "type": "STRING"}]
JSON_MATCH = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/rows\.json"


def _spec(bucket, unique_name, **overrides):
    fields = {"mode": "Incremental", "format": "NEWLINE_DELIMITED_JSON", "schema": SCHEMA, "file_match": JSON_MATCH}
    return make_spec(bucket.name, unique_name, **{**fields, **overrides})


def test_incremental_clean_table_is_created_with_its_layout_and_clustering_changes_in_place(
    bucket, gcs_client, bq_client, unique_name,
):
    spec = _spec(bucket, unique_name, clustering_fields=["id"], table_description="Rows, daily.")
    drop(bucket, "drops/2024-01-05/rows.json", [{"id": 1, "name": "a"}], fmt="NEWLINE_DELIMITED_JSON")
    import_window(spec, gcs_client, bq_client, day(5))
    table = bq_client.get_table(spec.clean_table_id)
    assert table.time_partitioning.field == "_interval_start" and table.time_partitioning.type_ == "DAY"
    assert table.clustering_fields == ["id"] and table.description == "Rows, daily."
    assert {f.name: f.description for f in table.schema}["id"] == "The row's id"

    reclustered = dataclasses.replace(spec, clustering_fields=("name", "id"))
    drop(bucket, "drops/2024-01-06/rows.json", [{"id": 2, "name": "b"}], fmt="NEWLINE_DELIMITED_JSON")
    import_window(reclustered, gcs_client, bq_client, day(6))
    assert bq_client.get_table(spec.clean_table_id).clustering_fields == ["name", "id"]
    assert rows_per_interval(bq_client, spec) == {day(5): 1, day(6): 1}


def test_a_clean_table_partitioned_otherwise_is_refused(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name)
    bq_client.create_dataset(spec.clean_table_id.rsplit(".", 1)[0], exists_ok=True)
    table = bigquery.Table(spec.clean_table_id, schema=[
        bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("name", "STRING"),
        bigquery.SchemaField("_interval_start", "TIMESTAMP"), bigquery.SchemaField("loaded_at", "TIMESTAMP")])
    table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="loaded_at")
    bq_client.create_table(table)
    drop(bucket, "drops/2024-01-05/rows.json", [{"id": 1, "name": "a"}], fmt="NEWLINE_DELIMITED_JSON")
    with pytest.raises(WorkerError, match=r"partitioned by loaded_at.*cannot change a table's partitioning"):
        import_window(spec, gcs_client, bq_client, day(5))
    assert rows_per_interval(bq_client, spec) == {}


def test_overwrite_snapshot_keeps_the_specs_clustering_and_description(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name, mode="Overwrite", clustering_fields=["name"], table_description="Newest rows.")
    drop(bucket, "drops/2024-01-05/rows.json", [{"id": 1, "name": "a"}], fmt="NEWLINE_DELIMITED_JSON")
    import_window(spec, gcs_client, bq_client, day(5))
    table = bq_client.get_table(spec.clean_table_id)
    assert table.clustering_fields == ["name"] and table.description == "Newest rows."
