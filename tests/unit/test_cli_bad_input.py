"""Issue 9: every bad input ends in one ``error:`` line that names the field, flag or object — never a traceback.

Each row is also a row of the README's "Bad input" table (``BAD_INPUT`` is the single list both come
from: ``python -m tests.unit.test_cli_bad_input`` prints the table). The worker's real entry point
(``worker.__main__.main``) runs in-process; nothing here needs a service, because every row fails
before the first request (credentials rows run with no emulator and no ADC).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from worker.__main__ import main

SPEC: dict[str, Any] = {
    "name": "passport_scores", "project_id": "my-project", "bucket_name": "my-bucket", "path_base": "passport",
    "file_match": r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/scores\.parquet", "destination_table": "passport_scores",
    "raw_dataset_name": "raw_sources", "clean_dataset_name": "gitcoin", "interval": "Daily", "mode": "Overwrite",
    "retention_days": 10, "format": "PARQUET",
}
DROP = object()

#: (field or flag, what is wrong, spec change or raw spec text, extra CLI args, what the error line must contain)
BAD_INPUT: list[tuple[str, str, Any, list[str], str]] = [
    ("spec file", "not JSON", "{not json", [], "is not JSON"),
    ("spec file", "a JSON list", "[]", [], "JSON object of fields"),
    ("spec file", "JSON null", "null", [], "JSON object of fields"),
    ("spec", "unknown field", {"colour": "red"}, [], "unknown fields ['colour']"),
    ("spec", "required field missing", {"bucket_name": DROP}, [], "missing required fields ['bucket_name']"),
    ("name", "has a space", {"name": "a b"}, [], "field 'name'"),
    ("key_prefix", "a number", {"key_prefix": 5}, [], "field 'key_prefix'"),
    ("key_prefix", "part with a dash", {"key_prefix": ["ok", "a-b"]}, [], "field 'key_prefix'"),
    ("project_id", "uppercase", {"project_id": "My_Project"}, [], "field 'project_id'"),
    ("bucket_name", "invalid characters", {"bucket_name": "Bad Bucket!"}, [], "field 'bucket_name'"),
    ("path_base", "a number", {"path_base": 5}, [], "field 'path_base'"),
    ("file_match", "no interval_timestamp group", {"file_match": r"\d+/scores\.parquet"}, [], "interval_timestamp"),
    ("file_match", "does not compile", {"file_match": "(("}, [], "does not compile"),
    ("destination_table", "has a dash", {"destination_table": "a-b"}, [], "field 'destination_table'"),
    ("raw_dataset_name", "starts with a digit", {"raw_dataset_name": "1raw"}, [], "field 'raw_dataset_name'"),
    ("interval", "unknown", {"interval": "Yearly"}, [], "field 'interval'"),
    ("mode", "unknown", {"mode": "Append"}, [], "field 'mode'"),
    ("format", "unknown", {"format": "XLSX"}, [], "field 'format'"),
    ("retention_days", "negative", {"retention_days": -1}, [], "field 'retention_days'"),
    ("retention_days", "10^12 (overflows a date)", {"retention_days": 10**12}, [], "from 0 to 36500"),
    ("retention_days", "a string", {"retention_days": "10"}, [], "field 'retention_days'"),
    ("location", "has a space", {"location": "u s"}, [], "field 'location'"),
    ("schema", "empty list", {"schema": []}, [], "field 'schema' is empty"),
    ("schema", "not a list", {"schema": "a:STRING"}, [], "field 'schema'"),
    ("schema[0].name", "'5'", {"schema": [{"name": "5", "type": "STRING"}]}, [], "field 'schema[0].name'"),
    ("schema[0].type", "null", {"schema": [{"name": "a", "type": None}]}, [], "field 'schema[0].type'"),
    ("schema[0].type", "VARCHAR", {"schema": [{"name": "a", "type": "VARCHAR"}]}, [], "field 'schema[0].type'"),
    ("schema[0].mode", "OPTIONAL", {"schema": [{"name": "a", "type": "STRING", "mode": "OPTIONAL"}]}, [],
     "field 'schema[0].mode'"),
    ("csv_delimiter", "two characters", {"csv_delimiter": ",,"}, [], "field 'csv_delimiter'"),
    ("csv_header_rows", "negative", {"csv_header_rows": -1}, [], "field 'csv_header_rows'"),
    ("max_bad_records", "a boolean", {"max_bad_records": True}, [], "field 'max_bad_records'"),
    ("timestamp_format", "no % directive", {"timestamp_format": "YYYY-MM-DD"}, [], "field 'timestamp_format'"),
    ("start_date", "not a date", {"start_date": "soon"}, [], "field 'start_date'"),
    ("allow_empty_snapshot", "a string", {"allow_empty_snapshot": "yes"}, [], "field 'allow_empty_snapshot'"),
    ("billing_project", "invalid id", {"billing_project": "Bad Project"}, [], "field 'billing_project'"),
    ("schema_evolution", "unknown mode", {"schema_evolution": "merge"}, [], "field 'schema_evolution'"),
    ("load_options", "unknown option", {"load_options": {"quoting": "'"}}, [], "field 'load_options' has unknown options"),
    ("load_options.quote", "two characters", {"format": "CSV", "load_options": {"quote": "''"}}, [],
     "field 'load_options.quote'"),
    ("load_options.quote", "on Parquet files", {"load_options": {"quote": "'"}}, [], "applies to CSV files, not PARQUET"),
    ("on_bad_file", "unknown mode", {"on_bad_file": "ignore"}, [], "field 'on_bad_file'"),
    ("max_concurrent_intervals", "17", {"max_concurrent_intervals": 17}, [], "field 'max_concurrent_intervals'"),
    ("clustering_fields", "five columns", {"clustering_fields": ["a", "b", "c", "d", "e"]}, [], "field 'clustering_fields'"),
    ("require_partition_filter", "on Overwrite", {"require_partition_filter": True}, [], "field 'require_partition_filter'"),
    ("raw_table_expiration_days", "on Overwrite", {"raw_table_expiration_days": 30}, [], "only copy"),
    ("load_options.decimal_target_types", "FLOAT64", {"load_options": {"decimal_target_types": ["FLOAT64"]}}, [],
     "field 'load_options.decimal_target_types'"),
    ("notifications_subscription", "a bare name, not projects/…/subscriptions/…",
     {"notifications_subscription": "passport-drops"}, [], "projects/PROJECT_ID/subscriptions/SUBSCRIPTION_ID"),
    ("--start", "'yesterday'", {}, ["--start", "yesterday"], "--start 'yesterday' is not an ISO date"),
    ("--start", "9999-12-31 (no next interval)", {}, ["--start", "9999-12-31"], "--start '9999-12-31' is too late"),
    ("--end", "not a date", {}, ["--start", "2024-01-05", "--end", "later"], "--end 'later'"),
    ("--end", "before --start", {}, ["--start", "2024-01-05", "--end", "2024-01-01"], "holds no daily interval"),
    ("--as-of", "not a date", {}, ["retention", "--as-of", "tomorrow"], "--as-of 'tomorrow'"),
    ("--retry-deadline", "zero", {}, ["--start", "2024-01-05", "--retry-deadline", "0"], "--retry-deadline"),
    ("credentials", "none found (no emulator, no ADC)", {}, ["--start", "2024-01-05"], "no Google credentials found"),
]


def _run(tmp_path, change: Any, args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    for name in ("STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GCS_IMPORT_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # no metadata server: fail fast, as on a laptop
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    if isinstance(change, str):
        text = change
    else:
        spec = {k: v for k, v in {**SPEC, **change}.items() if v is not DROP}
        text = json.dumps(spec)
    path = tmp_path / "spec.json"
    path.write_text(text)
    action = args[0] if args[:1] == ["retention"] else "import"
    rest = args[1:] if action == "retention" else (args or ["--start", "2024-01-05"])
    code = main([action, "--spec", str(path), *rest])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("field", "problem", "change", "args", "expected"), BAD_INPUT,
                         ids=[f"{f}: {p}" for f, p, *_ in BAD_INPUT])
def test_bad_input_is_one_clear_line(field, problem, change, args, expected, tmp_path, capsys, monkeypatch):
    code, err = _run(tmp_path, change, args, capsys, monkeypatch)
    assert code == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert expected in errors[0], errors[0]


def _table_rows() -> list[str]:
    return [f"| `{field}` | {problem} | …{expected}… |" for field, problem, _change, _args, expected in BAD_INPUT]


def test_readme_bad_input_table_is_this_list():
    """The README's table holds exactly the rows tested here (order aside): a row added to BAD_INPUT
    and not to the README, or documented there and not tested, fails."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Bad input: what you see", 1)[1]
    header = "| field or flag | input | the `error:` line says |\n| --- | --- | --- |\n"
    assert header in section, "the README's Bad input table lost its header"
    documented = []
    for line in section.split(header, 1)[1].splitlines():
        if not line.startswith("|"):
            break
        documented.append(line)
    assert sorted(documented) == sorted(_table_rows())


def test_missing_spec_file_names_it(tmp_path, capsys):
    assert main(["import", "--spec", str(tmp_path / "nope.json"), "--start", "2024-01-05"]) == 1
    assert "cannot read spec file" in capsys.readouterr().err


if __name__ == "__main__":  # print the README's table
    print("| field or flag | input | the `error:` line says |\n| --- | --- | --- |")
    print("\n".join(_table_rows()))
