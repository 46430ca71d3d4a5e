"""Through the conformance proxy: the Incremental MERGE under ``require_partition_filter: true``
(``bigquery_partition_filter``), and Overwrite with ``clustering_fields`` publishing a second snapshot by a
WRITE_TRUNCATE copy onto the clustered clean table (``bigquery_copy_layout``)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from tests.emulators.worker_helpers import day, drop, import_window, make_spec

JSON_MATCH = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/rows\.json"
SCHEMA = [{"name": "id", "type": "INT64"}, {"name": "name", "type": "STRING"}]


def _spec(bucket, unique_name, **overrides):
    fields = {"format": "NEWLINE_DELIMITED_JSON", "schema": SCHEMA, "file_match": JSON_MATCH}
    return make_spec(bucket.name, unique_name, **{**fields, **overrides})


def _drop(bucket, n: int, rows: list[dict]) -> None:
    drop(bucket, f"drops/2024-01-{n:02d}/rows.json", rows, fmt="NEWLINE_DELIMITED_JSON")


def _per_interval(conformance, spec) -> dict:
    """Rows per interval, read from the emulator directly (a SELECT without a filter is what the rule refuses)."""
    project, dataset, table = spec.clean_table_id.split(".")
    rows = conformance.world.upstream.query(
        project, f"SELECT CAST(`{spec.interval_column}` AS STRING), COUNT(*) FROM `{project}`.`{dataset}`.`{table}` "
                 f"GROUP BY 1")
    return {str(s)[:10]: int(n) for s, n in rows}


def test_incremental_merge_passes_the_partition_elimination_check(
    conformance, bucket, gcs_client, bq_client, unique_name,
):
    spec = _spec(bucket, unique_name, mode="Incremental", require_partition_filter=True)
    _drop(bucket, 5, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    _drop(bucket, 6, [{"id": 3, "name": "c"}])
    import_window(spec, gcs_client, bq_client, day(5), day(7))
    _drop(bucket, 5, [{"id": 4, "name": "d"}])  # a new generation: the interval is replaced (the DELETE branch)
    import_window(spec, gcs_client, bq_client, day(5))

    assert bq_client.get_table(spec.clean_table_id).require_partition_filter is True
    assert conformance.answered["bigquery_partition_filter"] == 0
    assert _per_interval(conformance, spec) == {"2024-01-05": 1, "2024-01-06": 1}
    # the rule is on: a statement without a partition filter is refused as BigQuery refuses it
    with pytest.raises(gexc.BadRequest, match=r"without a filter over column.*_interval_start"):
        bq_client.query(f"DELETE FROM `{spec.clean_table_id}` WHERE id = 1").result()
    assert conformance.answered["bigquery_partition_filter"] == 1


def test_overwrite_with_clustering_publishes_every_snapshot_and_keeps_the_clustering(
    conformance, bucket, gcs_client, bq_client, unique_name,
):
    spec = _spec(bucket, unique_name, mode="Overwrite", clustering_fields=["name"])
    _drop(bucket, 5, [{"id": 1, "name": "a"}])
    import_window(spec, gcs_client, bq_client, day(5))
    assert bq_client.get_table(spec.clean_table_id).clustering_fields == ["name"]
    _drop(bucket, 6, [{"id": 2, "name": "b"}, {"id": 3, "name": "c"}])
    import_window(spec, gcs_client, bq_client, day(6))  # a WRITE_TRUNCATE copy onto the clustered clean table

    clean = bq_client.get_table(spec.clean_table_id)
    assert clean.clustering_fields == ["name"]
    assert clean.labels["gcs_import_interval"] == "20240106"
    assert sorted(r["id"] for r in bq_client.list_rows(clean)) == [2, 3]
    assert conformance.answered["bigquery_copy_layout"] == 0
    # the rule is on: an unclustered source copied onto the clustered clean table fails as in BigQuery
    other = bigquery.Table(f"{spec.project_id}.{spec.raw_dataset_name}.unclustered", schema=clean.schema)
    bq_client.create_table(other)
    with pytest.raises(gexc.BadRequest, match="Incompatible table partitioning specification"):
        bq_client.copy_table(other, clean, job_config=bigquery.CopyJobConfig(write_disposition="WRITE_TRUNCATE")).result()
    assert conformance.answered["bigquery_copy_layout"] == 1


def test_a_published_interval_with_clustering_can_be_reloaded(conformance, bucket, gcs_client, bq_client, unique_name):
    """Publishing onto the clustered clean table gives the raw table the clean table's clustering; a later reload
    of that (open) interval copies a new staging table onto the now clustered raw table, which BigQuery refuses
    unless the two layouts match."""
    spec = _spec(bucket, unique_name, mode="Overwrite", clustering_fields=["name"])
    refused_before = conformance.answered["bigquery_copy_layout"]
    for ids in ([1], [1, 4], [1, 4, 5]):  # each a re-upload: the open interval reloads and is published again
        _drop(bucket, 5, [{"id": i, "name": f"n{i}"} for i in ids])
        import_window(spec, gcs_client, bq_client, day(5))
        clean = bq_client.get_table(spec.clean_table_id)
        assert sorted(r["id"] for r in bq_client.list_rows(clean)) == ids
    assert bq_client.get_table(spec.raw_table_id(day(5))).clustering_fields == ["name"]
    assert conformance.answered["bigquery_copy_layout"] == refused_before
