"""The load job configuration the worker sends, checked as the API payload.

bqemulator ignores ``skipLeadingRows`` and ``fieldDelimiter`` for CSV (it always skips one
header row and sniffs the delimiter), so the emulator suite cannot catch a worker that stops
sending them; these tests do.
"""

from __future__ import annotations

import pytest

from worker.loading import load_job_config
from worker.spec import ImportSpec


def _spec(**overrides) -> ImportSpec:
    fields = {
        "name": "scores",
        "project_id": "test-project",
        "bucket_name": "drops-bucket",
        "path_base": "drops",
        "file_match": r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/scores\.csv",
        "destination_table": "scores",
        "raw_dataset_name": "raw",
        "clean_dataset_name": "clean",
        "interval": "Daily",
        "mode": "Incremental",
        "retention_days": 7,
        "format": "CSV",
    }
    fields.update(overrides)
    return ImportSpec(**fields)


def _load(config) -> dict:
    return config.to_api_repr()["load"]


def test_csv_options_are_sent_including_zero_header_rows():
    load = _load(load_job_config(_spec(csv_header_rows=0, csv_delimiter="|", max_bad_records=3), first_batch=True))

    assert load["sourceFormat"] == "CSV"
    assert str(load["skipLeadingRows"]) == "0"
    assert load["fieldDelimiter"] == "|"
    assert load["maxBadRecords"] == 3
    assert load["autodetect"] is True
    assert "schema" not in load


def test_tab_delimiter_and_two_header_rows():
    load = _load(load_job_config(_spec(csv_header_rows=2, csv_delimiter="\t"), first_batch=True))

    assert str(load["skipLeadingRows"]) == "2"
    assert load["fieldDelimiter"] == "\t"


def test_first_batch_truncates_later_batches_append():
    spec = _spec()
    assert _load(load_job_config(spec, first_batch=True))["writeDisposition"] == "WRITE_TRUNCATE"
    assert _load(load_job_config(spec, first_batch=False))["writeDisposition"] == "WRITE_APPEND"
    assert _load(load_job_config(spec, first_batch=False))["createDisposition"] == "CREATE_IF_NEEDED"


def test_explicit_schema_disables_autodetect():
    schema = [{"name": "address", "type": "string"}, {"name": "score", "type": "FLOAT64", "mode": "required"}]
    load = _load(load_job_config(_spec(schema=schema), first_batch=True))

    assert load["schema"]["fields"] == [
        {"name": "address", "type": "STRING", "mode": "NULLABLE"},
        {"name": "score", "type": "FLOAT64", "mode": "REQUIRED"},
    ]
    assert not load.get("autodetect")


@pytest.mark.parametrize("fmt", ["PARQUET", "AVRO", "ORC"])
def test_self_describing_formats_get_no_csv_options_and_no_autodetect(fmt):
    load = _load(load_job_config(_spec(format=fmt), first_batch=True))

    assert load["sourceFormat"] == fmt
    assert "skipLeadingRows" not in load and "fieldDelimiter" not in load
    assert not load.get("autodetect")


def test_ndjson_autodetects_without_csv_options():
    load = _load(load_job_config(_spec(format="NEWLINE_DELIMITED_JSON"), first_batch=True))

    assert load["sourceFormat"] == "NEWLINE_DELIMITED_JSON"
    assert load["autodetect"] is True
    assert "skipLeadingRows" not in load


def test_label_names_the_asset_within_bigquery_limits():
    config = load_job_config(_spec(name="A" * 100), first_batch=True)

    assert config.labels == {"gcs_import_asset": "a" * 63}
