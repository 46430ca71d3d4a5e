"""The import spec: JSON round trip and validation that names the field and the fix."""

from __future__ import annotations

import pytest

from worker.core.formats import SourceFormat
from worker.core.spec import ImportSpec, Interval, SchemaFieldSpec, SourceMode, SpecError

BASE = dict(
    key_prefix="gitcoin",
    name="passport_scores",
    project_id="opensource-observer",
    bucket_name="oso-dataset-transfer-bucket",
    path_base="passport",
    file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.parquet",
    destination_table="passport_scores",
    raw_dataset_name="oso_raw_sources",
    clean_dataset_name="gitcoin",
    interval=Interval.Daily,
    mode=SourceMode.Overwrite,
    retention_days=10,
    format="PARQUET",
)


def test_seed_example_builds_with_enums_normalised() -> None:
    spec = ImportSpec(**BASE)
    assert spec.format is SourceFormat.PARQUET
    assert spec.key_prefix == ("gitcoin",)
    assert spec.raw_table_id(spec.effective_start) == "opensource-observer.oso_raw_sources.passport_scores__20240101"
    assert spec.clean_table_id == "opensource-observer.gitcoin.passport_scores"


def test_round_trip_through_json_keeps_every_field() -> None:
    spec = ImportSpec(
        **{**BASE, "interval": "Hourly", "mode": "incremental", "format": "CSV"},
        location="EU",
        schema=[{"name": "a", "type": "string"}, SchemaFieldSpec(name="b", type="INT64", mode="REQUIRED")],
        csv_header_rows=2,
        csv_delimiter=";",
        max_bad_records=3,
        timestamp_format="%Y%m%d%H",
        start_date="2023-05-01",
        interval_column="loaded_interval",
    )
    again = ImportSpec.from_json(spec.to_json())
    assert again == spec
    assert again.schema[0] == SchemaFieldSpec(name="a", type="STRING", mode="NULLABLE")
    assert again.interval is Interval.Hourly and again.mode is SourceMode.Incremental


def test_fingerprint_changes_with_load_settings_not_with_retention() -> None:
    spec = ImportSpec(**BASE)
    assert ImportSpec(**{**BASE, "retention_days": 99}).fingerprint() == spec.fingerprint()
    assert ImportSpec(**{**BASE, "destination_table": "other"}).fingerprint() != spec.fingerprint()


@pytest.mark.parametrize(
    ("change", "field", "hint"),
    [
        ({"file_match": "(unclosed"}, "file_match", "does not compile"),
        ({"file_match": r"(?P<day>\d+)/x.csv"}, "file_match", "interval_timestamp"),
        ({"interval": "Yearly"}, "interval", "Hourly, Daily, Weekly, Monthly"),
        ({"mode": "Append"}, "mode", "Overwrite, Incremental"),
        ({"format": "XLSX"}, "format", "PARQUET"),
        ({"retention_days": -1}, "retention_days", "from 0 to 36500"),
        ({"retention_days": True}, "retention_days", "from 0 to 36500"),
        ({"raw_dataset_name": "raw-data"}, "raw_dataset_name", "BigQuery identifier"),
        ({"clean_dataset_name": "x`; DROP TABLE y; --"}, "clean_dataset_name", "BigQuery identifier"),
        ({"destination_table": "1table"}, "destination_table", "BigQuery identifier"),
        ({"bucket_name": "Bad_Bucket"}, "bucket_name", "GCS bucket name"),
        ({"bucket_name": "goog-bucket"}, "bucket_name", "GCS bucket name"),
        ({"bucket_name": "a..b"}, "bucket_name", "GCS bucket name"),
        ({"project_id": "Not A Project"}, "project_id", "project id"),
        ({"name": "has space"}, "name", "letters, digits or underscores"),
        ({"key_prefix": ["ok", "not ok"]}, "key_prefix", "letters"),
        ({"location": "us central"}, "location", "BigQuery location"),
        ({"schema": []}, "schema", "at least one column"),
        ({"schema": [{"name": "a b", "type": "STRING"}]}, "schema[0].name", "letters"),
        ({"schema": [{"name": "a", "type": "TEXT"}]}, "schema[0].type", "STRING"),
        ({"schema": [{"name": "a", "type": "STRING", "mode": "OPTIONAL"}]}, "schema[0].mode", "NULLABLE"),
        ({"csv_delimiter": ";;"}, "csv_delimiter", "single character"),
        ({"max_bad_records": -5}, "max_bad_records", "0 or more"),
        ({"timestamp_format": "YYYY-MM-DD"}, "timestamp_format", "strptime"),
        ({"start_date": "yesterday"}, "start_date", "ISO date"),
        ({"interval_column": "bad-col"}, "interval_column", "BigQuery identifier"),
    ],
)
def test_invalid_field_is_named_with_a_fix(change: dict, field: str, hint: str) -> None:
    with pytest.raises(SpecError) as err:
        ImportSpec(**{**BASE, **change})
    message = str(err.value)
    assert f"'{field}'" in message, message
    assert hint in message, message
    if field != "name":
        assert "passport_scores" in message, "the asset is named"
    assert err.value.field == field.split("[")[0], "the top-level field travels with the error"


def test_unknown_field_in_json_is_named() -> None:
    data = ImportSpec(**BASE).to_dict() | {"retention": 3}
    with pytest.raises(SpecError, match=r"unknown fields \['retention'\]") as err:
        ImportSpec.from_dict(data)
    assert err.value.field == "retention"


def test_a_missing_field_in_json_is_named() -> None:
    data = ImportSpec(**BASE).to_dict()
    del data["bucket_name"]
    with pytest.raises(SpecError, match=r"missing required fields \['bucket_name'\]") as err:
        ImportSpec.from_dict(data)
    assert err.value.field == "bucket_name"


def test_messages_name_the_spec_as_each_side_knows_it() -> None:
    from orchestrator.factories import IntervalGCSAsset

    bad = {**BASE, "load_options": {"quote": 5}}
    with pytest.raises(SpecError) as worker_side:
        ImportSpec(**bad)
    assert str(worker_side.value).startswith("import spec 'passport_scores': field 'load_options.quote' is 5")
    assert worker_side.value.field == "load_options"
    with pytest.raises(SpecError) as orchestrator_side:
        IntervalGCSAsset(**bad)
    assert str(orchestrator_side.value).startswith("IntervalGCSAsset 'passport_scores': field 'load_options.quote' is 5")


def test_name_pattern_escapes_path_base_and_full_matches() -> None:
    spec = ImportSpec(**{**BASE, "path_base": "/a.b+c/"})
    assert spec.path_base == "a.b+c"
    assert spec.name_pattern.fullmatch("a.b+c/2024-01-05/scores.parquet")
    assert not spec.name_pattern.fullmatch("aXb+c/2024-01-05/scores.parquet"), "dot in path_base is literal"
    assert not spec.name_pattern.fullmatch("a.b+c/2024-01-05/scores.parquet.bak"), "full match, not prefix"


def test_new_fields_at_their_defaults_keep_the_load_digest_of_existing_specs() -> None:
    """An upgrade must not reload every interval: 893019badbb1 is BASE's fingerprint before allow_empty_snapshot
    and billing_project existed; neither changes what a load job does, so neither enters the digest."""
    assert ImportSpec(**BASE).fingerprint() == "893019badbb1"
    assert ImportSpec(**BASE, allow_empty_snapshot=True, billing_project="billing-proj").fingerprint() == "893019badbb1"
    # schema_evolution changes publishing, not loading; load options left at their defaults are not in it
    assert ImportSpec(**BASE, schema_evolution="fail").fingerprint() == "893019badbb1"
    assert ImportSpec(**BASE, load_options={"enable_list_inference": False}).fingerprint() == "893019badbb1"
    assert ImportSpec(**BASE, load_options={}).fingerprint() == "893019badbb1"
    # a load option that is set changes what the load job does: the digest changes, so open intervals reload
    changed = ImportSpec(**BASE, load_options={"enable_list_inference": True})
    assert changed.fingerprint() != "893019badbb1"
    assert ImportSpec.from_dict(changed.to_dict()).fingerprint() == changed.fingerprint()


@pytest.mark.parametrize("file_match", [r"^(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/a\.csv$",
                                        r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/a\.csv$"])
def test_anchored_file_match_matches_like_the_unanchored_one(file_match) -> None:
    """Issue 9: '^...$' used to match nothing (the '^' sits after path_base/ in the combined pattern)."""
    spec = ImportSpec(**{**BASE, "file_match": file_match})
    assert spec.name_pattern.fullmatch(f"{spec.object_prefix}2024-01-05/a.csv")
    assert not spec.name_pattern.fullmatch(f"{spec.object_prefix}2024-01-05/a.csv.bak")


def test_unescaped_extension_dot_is_reported_with_the_escaped_form() -> None:
    spec = ImportSpec(**{**BASE, "file_match": r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/scores.parquet"})
    assert spec.unescaped_extension_dot() == r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/scores\.parquet"
    assert spec.name_pattern.fullmatch(f"{spec.object_prefix}2024-01-05/scoresXparquet"), "regex semantics are kept"
    assert ImportSpec(**{**BASE, "file_match": r"(?P<interval_timestamp>\d+)/s\.csv\.gz"}).unescaped_extension_dot() is None


def test_domain_scoped_project_console_url() -> None:
    from worker.reporting import console_url

    url = console_url("example.com:my-project.raw.t")
    assert "project=example.com:my-project" in url and url.endswith("!2sraw!3st")
