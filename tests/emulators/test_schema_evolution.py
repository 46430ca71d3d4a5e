"""Schema evolution against the emulators: columns added across three intervals, a type change, a
REQUIRED column an interval leaves empty; Incremental (the clean table evolves) and Overwrite (the
snapshot takes the newest columns; the check reports the difference).

bqemulator has no ``ALTER COLUMN ... DROP NOT NULL``: ``add_and_relax``'s relaxation is tested as the
statement sent (tests/unit/test_schema_evolution_plan.py); here it is shown refused without it.

bqemulator also keeps a table's ``tables.get`` schema stale after ``ALTER TABLE ... ADD COLUMN`` (the data
has the column; the metadata does not). BigQuery returns the added column
(https://cloud.google.com/bigquery/docs/managing-table-schemas#add_a_nullable_column), so the fixture
below completes ``get_table``'s schema with the columns a ``SELECT *`` returns, as BigQuery would.
"""

from __future__ import annotations

import pytest
from google.cloud import bigquery

from tests.emulators.worker_helpers import day, drop, import_window, make_spec, rows_per_interval, table_rows
from worker.errors import WorkerError
from worker.reporting import import_checks

NDJSON = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/rows\.json"


@pytest.fixture(autouse=True)
def tables_get_sees_added_columns(monkeypatch):
    original = bigquery.Client.get_table

    def get_table(self, table, *args, **kwargs):
        found = original(self, table, *args, **kwargs)
        if found.table_type != "TABLE" or not found.schema:
            return found
        project, dataset, name = found.full_table_id.replace(":", ".").split(".")
        seen = self.query(f"SELECT * FROM `{project}`.`{dataset}`.`{name}` LIMIT 0").result().schema
        known = {f.name for f in found.schema}
        added = [bigquery.SchemaField(f.name, f.field_type, mode="NULLABLE") for f in seen if f.name not in known]
        if added:
            found.schema = [*found.schema, *added]
        return found

    monkeypatch.setattr(bigquery.Client, "get_table", get_table)


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


@pytest.fixture
def truncating_copy_replaces_the_schema(monkeypatch):
    """bqemulator answers 500 to a WRITE_TRUNCATE copy whose source has other columns; BigQuery replaces
    the destination's data and schema with the source's
    (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationTableCopy: writeDisposition
    WRITE_TRUNCATE "overwrites the table data and uses the schema from the source table"). The hook drops
    the destination first when the columns differ, which is what BigQuery's copy amounts to."""
    original = bigquery.Client.copy_table

    def copy_table(self, sources, destination, *args, job_config=None, **kwargs):
        if job_config is not None and job_config.write_disposition == "WRITE_TRUNCATE":
            try:
                before = [f.name for f in self.get_table(destination).schema]
                after = [f.name for f in self.get_table(sources).schema]
                if before != after:
                    self.delete_table(destination)
            except Exception:
                pass
        return original(self, sources, destination, *args, job_config=job_config, **kwargs)

    monkeypatch.setattr(bigquery.Client, "copy_table", copy_table)


@pytest.mark.usefixtures("truncating_copy_replaces_the_schema")
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
