"""The load job configuration the worker sends, checked as the API payload.

bqemulator ignores ``skipLeadingRows`` and ``fieldDelimiter`` for CSV (it always skips one
header row and sniffs the delimiter), so the emulator suite cannot catch a worker that stops
sending them; these tests do.
"""

from __future__ import annotations

import pytest

from worker.core.spec import ImportSpec
from worker.loading import load_job_config


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


# -- load_options: each one in the API payload ----------------------------------------------------------
# bqemulator ignores most of these (it reads files through DuckDB's own sniffing); the payload is what
# BigQuery acts on (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad).


def test_csv_load_options_are_sent():
    options = {"quote": "'", "encoding": "iso-8859-1", "null_marker": "\\N", "allow_jagged_rows": True,
               "allow_quoted_newlines": True, "preserve_ascii_control_characters": True,
               "ignore_unknown_values": True, "time_zone": "Europe/Berlin", "date_format": "MM/DD/YYYY",
               "datetime_format": "MM/DD/YYYY HH24:MI", "time_format": "HH24:MI", "timestamp_format": "YYYY-MM-DD HH24:MI:SS"}
    load = _load(load_job_config(_spec(load_options=options), first_batch=True))
    assert (load["quote"], load["encoding"], load["nullMarker"]) == ("'", "ISO-8859-1", "\\N")
    assert load["allowJaggedRows"] is True and load["allowQuotedNewlines"] is True
    assert load["preserveAsciiControlCharacters"] is True and load["ignoreUnknownValues"] is True
    assert load["timeZone"] == "Europe/Berlin" and load["dateFormat"] == "MM/DD/YYYY"
    assert load["datetimeFormat"] == "MM/DD/YYYY HH24:MI" and load["timeFormat"] == "HH24:MI"
    assert load["timestampFormat"] == "YYYY-MM-DD HH24:MI:SS"


def test_an_empty_quote_means_no_quoting_and_is_sent():
    assert _load(load_job_config(_spec(load_options={"quote": ""}), first_batch=True))["quote"] == ""


def test_parquet_load_options_are_sent():
    load = _load(load_job_config(_spec(format="PARQUET", load_options={
        "enable_list_inference": True, "decimal_target_types": ["numeric", "BIGNUMERIC"]}), first_batch=True))
    assert load["parquetOptions"]["enableListInference"] is True
    assert load["decimalTargetTypes"] == ["NUMERIC", "BIGNUMERIC"]


def test_json_takes_ignore_unknown_values_and_unset_options_are_not_sent():
    load = _load(load_job_config(_spec(format="NEWLINE_DELIMITED_JSON", load_options={"ignore_unknown_values": True}),
                                 first_batch=True))
    assert load["ignoreUnknownValues"] is True
    for key in ("quote", "encoding", "nullMarker", "allowJaggedRows", "parquetOptions", "timeZone"):
        assert key not in load
    plain = _load(load_job_config(_spec(), first_batch=True))
    assert not {"quote", "encoding", "nullMarker", "allowJaggedRows", "ignoreUnknownValues"} & set(plain)


@pytest.mark.parametrize(("fmt", "options", "field"), [
    ("CSV", {"quote": "''"}, "load_options.quote"),
    ("CSV", {"encoding": "latin-9"}, "load_options.encoding"),
    ("CSV", {"allow_jagged_rows": "yes"}, "load_options.allow_jagged_rows"),
    ("CSV", {"time_zone": "Mars/Olympus Mons!"}, "load_options.time_zone"),
    ("CSV", {"date_format": "MM/DD/YYYY'; DROP"}, "load_options.date_format"),
    ("PARQUET", {"quote": "'"}, "load_options.quote"),
    ("CSV", {"enable_list_inference": True}, "load_options.enable_list_inference"),
    ("PARQUET", {"decimal_target_types": ["FLOAT64"]}, "load_options.decimal_target_types"),
    ("CSV", {"no_such": 1}, "load_options"),
    ("CSV", "quote=1", "load_options"),
])
def test_a_bad_load_option_names_the_option(fmt, options, field):
    from worker.core.spec import SpecError

    with pytest.raises(SpecError) as raised:
        _spec(format=fmt, load_options=options)
    assert f"field '{field}'" in str(raised.value) and "'scores'" in str(raised.value)


# -- the format registry (worker.core.formats): one profile per format ----------------------------------


def test_each_format_accepts_the_load_options_it_always_did():
    """The five formats' profiles say what the per-format branches said (a format added later is not pinned here)."""
    from dataclasses import fields

    from worker.core.formats import PROFILES, SourceFormat
    from worker.core.load_options import LoadOptions

    text = {"ignore_unknown_values", "time_zone", "date_format", "datetime_format", "time_format", "timestamp_format"}
    csv = text | {"quote", "encoding", "null_marker", "allow_jagged_rows", "allow_quoted_newlines",
                  "preserve_ascii_control_characters"}
    expected = {"PARQUET": {"enable_list_inference", "decimal_target_types"}, "CSV": csv,
                "NEWLINE_DELIMITED_JSON": text, "AVRO": {"use_avro_logical_types"}, "ORC": set()}
    assert {name: set(SourceFormat(name).profile.load_options) for name in expected} == expected
    known = {f.name for f in fields(LoadOptions)}
    assert all(p.load_options <= known for p in PROFILES.values()), "a profile names an option LoadOptions lacks"
    text_formats = {"CSV", "NEWLINE_DELIMITED_JSON"}
    assert {name for name in expected if SourceFormat(name).profile.autodetect} == text_formats
    assert {name for name in expected if SourceFormat(name).profile.max_bad_records} == text_formats
    assert list(PROFILES) == list(SourceFormat) and all(PROFILES[f] is f.profile for f in SourceFormat)


def test_a_text_option_on_avro_names_both_text_formats():
    from worker.core.spec import SpecError

    with pytest.raises(SpecError, match="applies to CSV and NEWLINE_DELIMITED_JSON files, not AVRO"):
        _spec(format="AVRO", load_options={"time_zone": "UTC"})
