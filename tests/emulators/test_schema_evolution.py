"""Schema evolution against the emulators: columns added across three intervals, a type change, a
REQUIRED column an interval leaves empty; Incremental (the clean table evolves) and Overwrite (the
snapshot takes the newest columns; the check reports the difference).

The worker adds every column of a change with one ``tables.patch`` (the whole schema: new columns NULLABLE,
relaxed columns NULLABLE, https://cloud.google.com/bigquery/docs/managing-table-schemas), so a change of
many columns is one table update, within BigQuery's 5 updates per table per 10 seconds. The conformance
proxy makes the emulators behave as BigQuery here: ``bigquery_schema_patch_adds_columns`` adds the patched
columns to the emulator's data (bqemulator stores them as metadata only), ``bigquery_table_update_rate``
counts the updates, and ``bigquery_truncating_copy_replaces_schema`` makes an Overwrite copy replace the
schema as BigQuery's WRITE_TRUNCATE copy does.
"""

from __future__ import annotations

import pytest
from google.cloud import bigquery

from tests.emulators.worker_helpers import day, drop, import_window, make_spec, rows_per_interval, table_rows
from worker.core.errors import WorkerError
from worker.reporting import import_checks

NDJSON = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/rows\.json"


def _spec(bucket, unique_name, **overrides):
    fields = {"mode": "Incremental", "format": "NEWLINE_DELIMITED_JSON", "schema": None, "file_match": NDJSON}
    return make_spec(bucket.name, unique_name, **{**fields, **overrides})


def _drop(bucket, n, rows):
    drop(bucket, f"drops/2024-01-{n:02d}/rows.json", rows, fmt="NEWLINE_DELIMITED_JSON")


def _columns(bq, table_id):
    return [(f.name, f.mode) for f in bq.get_table(table_id).schema]


def _schema_check(summary):
    return next(ch for ch in import_checks(summary) if ch["check_name"] == "schema_unchanged")


def test_columns_added_across_three_intervals_reach_the_clean_table(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name)  # the default: add_columns
    _drop(bucket, 5, [{"id": 1, "name": "a"}])
    _drop(bucket, 6, [{"id": 2, "name": "b", "score": 1.5}])
    _drop(bucket, 7, [{"id": 3, "name": "c", "score": 2.5, "city": "x"}])

    summary = import_window(spec, gcs_client, bq_client, day(5), day(8))

    assert rows_per_interval(bq_client, spec) == {day(5): 1, day(6): 1, day(7): 1}
    names = [n for n, _ in _columns(bq_client, spec.clean_table_id)]
    assert {"id", "name", "score", "city", "_interval_start"} == set(names)
    assert all(mode == "NULLABLE" for n, mode in _columns(bq_client, spec.clean_table_id) if n in ("score", "city"))
    rows = {r["id"]: (r["score"], r["city"]) for r in bq_client.query(
        f"SELECT id, score, city FROM `{spec.clean_table_id.replace('.', '`.`')}`").result()}
    assert rows == {1: (None, None), 2: (1.5, None), 3: (2.5, "x")}  # earlier intervals read NULL
    check = _schema_check(summary)
    assert check["passed"] is False and check["severity"] == "WARN"
    table = check["metadata"]["column_changes"]["raw_value"]["records"]
    added = {(r["interval"], r["column"]) for r in table if r["change"] == "added"}
    assert {("20240106", "score"), ("20240107", "city")} <= added


def test_an_interval_adding_seven_columns_is_one_table_update(bucket, gcs_client, bq_client, unique_name, conformance):
    """Strict-cloud defect 3: one ALTER TABLE per new column hit BigQuery's 5 table updates per 10 seconds
    (``bigquery_table_update_rate``) at the sixth column, failing the publish. All seven go in one patch."""
    spec = _spec(bucket, unique_name)
    _drop(bucket, 5, [{"id": 1, "name": "a"}])
    import_window(spec, gcs_client, bq_client, day(5))
    new = {f"c{i}": f"v{i}" for i in range(7)}
    _drop(bucket, 6, [{"id": 2, "name": "b", **new}])
    added_before = conformance.answered["bigquery_schema_patch_adds_columns"]

    summary = import_window(spec, gcs_client, bq_client, day(6))

    assert rows_per_interval(bq_client, spec) == {day(5): 1, day(6): 1}
    columns = dict(_columns(bq_client, spec.clean_table_id))
    assert all(columns[name] == "NULLABLE" for name in new)
    rows = {r["id"]: tuple(r[name] for name in new) for r in bq_client.query(
        f"SELECT * FROM `{spec.clean_table_id.replace('.', '`.`')}`").result()}
    assert rows == {1: (None,) * 7, 2: tuple(new.values())}
    assert conformance.answered["bigquery_schema_patch_adds_columns"] == added_before + 1, "one patch, all columns"
    changes = _schema_check(summary)["metadata"]["column_changes"]["raw_value"]["records"]
    assert {r["column"] for r in changes if r["change"] == "added"} >= set(new)


def test_fail_mode_leaves_the_clean_table_unchanged(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name, schema_evolution="fail")
    _drop(bucket, 5, [{"id": 1, "name": "a"}])
    import_window(spec, gcs_client, bq_client, day(5))
    before = table_rows(bq_client, spec.clean_table_id)
    _drop(bucket, 6, [{"id": 2, "name": "b", "extra": "x"}])
    with pytest.raises(WorkerError, match=r"\['extra'\].*left unchanged"):
        import_window(spec, gcs_client, bq_client, day(6))
    assert table_rows(bq_client, spec.clean_table_id) == before
    assert "extra" not in [n for n, _ in _columns(bq_client, spec.clean_table_id)]


@pytest.mark.parametrize("mode", ["add_columns", "add_and_relax"])
def test_a_type_change_fails_naming_column_types_and_interval(bucket, gcs_client, bq_client, unique_name, mode):
    spec = _spec(bucket, unique_name, schema_evolution=mode)
    _drop(bucket, 5, [{"id": 1, "name": "a"}])
    import_window(spec, gcs_client, bq_client, day(5))
    before = table_rows(bq_client, spec.clean_table_id)
    _drop(bucket, 6, [{"id": "not a number", "name": "b"}])
    with pytest.raises(WorkerError) as raised:
        import_window(spec, gcs_client, bq_client, day(6))
    message = str(raised.value)
    assert "'id' is INT64" in message and "STRING" in message and "2024-01-06" in message and "Nothing was published" in message
    assert table_rows(bq_client, spec.clean_table_id) == before


def test_a_required_column_left_empty_is_refused_without_relaxing(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name)
    # a clean table someone created with a REQUIRED column (the worker never makes one REQUIRED itself)
    bq_client.create_dataset(spec.clean_table_id.rsplit(".", 1)[0], exists_ok=True)
    table = bigquery.Table(spec.clean_table_id, schema=[
        bigquery.SchemaField("id", "INT64", mode="REQUIRED"), bigquery.SchemaField("name", "STRING"),
        bigquery.SchemaField("_interval_start", "TIMESTAMP")])
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="_interval_start")
    bq_client.create_table(table)
    _drop(bucket, 5, [{"name": "no id"}])
    with pytest.raises(WorkerError, match=r"REQUIRED columns \['id'\].*add_and_relax"):
        import_window(spec, gcs_client, bq_client, day(5))
    assert table_rows(bq_client, spec.clean_table_id) == []


def test_overwrite_takes_the_newest_columns_and_the_check_reports_them(bucket, gcs_client, bq_client, unique_name):
    spec = _spec(bucket, unique_name, mode="Overwrite")
    _drop(bucket, 5, [{"id": 1, "name": "a"}])
    import_window(spec, gcs_client, bq_client, day(5))
    _drop(bucket, 6, [{"id": 2, "name": "b", "score": 3.0}])
    summary = import_window(spec, gcs_client, bq_client, day(6))
    assert {n for n, _ in _columns(bq_client, spec.clean_table_id)} == {"id", "name", "score"}
    check = _schema_check(summary)
    assert check["passed"] is False
    assert [(r["column"], r["change"]) for r in check["metadata"]["column_changes"]["raw_value"]["records"]] == [("score", "added")]
