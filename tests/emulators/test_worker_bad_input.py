"""Bad input: missing bucket, corrupt files, schema drift, empty intervals, unreachable endpoints, bad specs.

Each failure must name what is wrong, leave the clean table (and the GCS objects) as they
were, and end a subprocess run with a non-zero exit and ``error: ...`` on stderr.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from localdev.samples import score_rows, upload
from localdev.services import free_port
from tests.emulators.worker_helpers import (
    cli_import,
    day,
    days_in_clean,
    drop,
    drop_days,
    import_window,
    ledger_rows,
    make_spec,
    object_names,
    rows_per_interval,
    run_cli,
    table_exists,
    table_rows,
    write_spec,
)
from worker.__main__ import main as worker_main
from worker.core.errors import WorkerError
from worker.core.spec import ImportSpec
from worker.publishing import published_snapshot

NOT_PARQUET = b"this is not a parquet file\n" * 10

# -- missing bucket ---------------------------------------------------------------


def test_missing_bucket_in_process_names_the_bucket(gcs_client, bq_client, unique_name):
    spec = make_spec(f"missing-{unique_name.replace('_', '-')}", unique_name)

    with pytest.raises(WorkerError, match=rf"bucket '{spec.bucket_name}' was not found"):
        import_window(spec, gcs_client, bq_client, day(5))
    assert not table_exists(bq_client, spec.clean_table_id)


def test_missing_bucket_subprocess_import_and_retention(bucket, gcs_client, bq_client, unique_name, tmp_path):
    """Import and retention both fail naming the bucket; the ledger's objects (in the real bucket) are not touched."""
    spec = make_spec(bucket.name, unique_name, retention_days=1)
    drop_days(bucket, spec, [day(5)], rows=2)
    import_window(spec, gcs_client, bq_client, day(5))
    wrong = ImportSpec.from_dict({**spec.to_dict(), "bucket_name": f"gone-{bucket.name}"})
    path = write_spec(tmp_path, wrong)
    before = object_names(bucket)

    imp = cli_import(path, "2024-01-05")
    ret = run_cli(["retention", "--spec", str(path), "--as-of", "2024-03-01"])

    for result in (imp, ret):
        assert result.returncode == 1
        assert result.stdout == ""
        assert re.search(rf"^error: GCS bucket 'gone-{bucket.name}' was not found", result.stderr, re.M), result.stderr
        assert "Traceback" not in result.stderr
    assert object_names(bucket) == before
    assert all(r["deleted_at"] is None for r in ledger_rows(bq_client, spec))


# -- corrupt files ------------------------------------------------------------------


def test_corrupt_reupload_fails_that_interval_only_and_changes_nothing(bucket, gcs_client, bq_client, unique_name):
    """Incremental: 01-06 re-uploaded as garbage; the window also holds a new good 01-08."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    blobs = drop_days(bucket, spec, [day(5), day(6), day(7)], rows=[3, 4, 6])
    import_window(spec, gcs_client, bq_client, day(5), day(8))
    clean_before = table_rows(bq_client, spec.clean_table_id)
    raw_before = table_rows(bq_client, spec.raw_table_id(day(6)))
    ledger_before = ledger_rows(bq_client, spec)
    upload(bucket, blobs[day(6)].name, NOT_PARQUET)
    drop_days(bucket, spec, [day(8)], rows=2)

    with pytest.raises(WorkerError) as raised:
        import_window(spec, gcs_client, bq_client, day(5), day(9))

    message = str(raised.value)
    assert "1 of 4 interval(s)" in message
    assert "20240106" in message
    assert spec.raw_table_id(day(6)) in message
    assert f"gs://{bucket.name}/{blobs[day(6)].name}" in message
    assert "20240108" not in message.split("failed to load:")[1]
    # the failed interval changed nothing: raw table (staging + copy), clean rows, ledger
    assert table_rows(bq_client, spec.raw_table_id(day(6))) == raw_before
    after = table_rows(bq_client, spec.clean_table_id)
    assert [r for r in after if r[2] != "2024-01-08"] == clean_before
    # while the good new interval in the same window loaded
    assert rows_per_interval(bq_client, spec)[day(8)] == 2
    ledger_after = ledger_rows(bq_client, spec)
    assert [r for r in ledger_after if r["object_name"] != "drops/2024-01-08/scores.parquet"] == ledger_before


def test_corrupt_newest_interval_keeps_overwrite_snapshot_subprocess(bucket, gcs_client, bq_client, unique_name, tmp_path):
    """Overwrite: 01-05 and 01-06 good, 01-07 corrupt -> 01-06 published, exit 1 naming 01-07's file."""
    spec = make_spec(bucket.name, unique_name, mode="Overwrite")
    drop_days(bucket, spec, [day(5), day(6)], rows=[3, 4])
    bad = upload(bucket, "drops/2024-01-07/scores.parquet", NOT_PARQUET)
    path = write_spec(tmp_path, spec)

    result = cli_import(path, "2024-01-05", "2024-01-08")

    assert result.returncode == 1
    assert result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1, result.stderr
    assert "1 of 3 interval(s)" in error[0] and "20240107" in error[0]
    assert f"gs://{bucket.name}/{bad.name}" in error[0]
    assert spec.raw_table_id(day(7)) in error[0]
    assert days_in_clean(bq_client, spec) == {"2024-01-06": 4}
    assert published_snapshot(bq_client, spec)[0] == "20240106"
    assert not table_exists(bq_client, spec.raw_table_id(day(7)))
    # a fixed file then loads and becomes the snapshot
    drop_days(bucket, spec, [day(7)], rows=5)
    fixed = cli_import(path, "2024-01-07")
    assert fixed.returncode == 0, fixed.stderr
    assert days_in_clean(bq_client, spec) == {"2024-01-07": 5}


def test_corrupt_second_file_of_an_interval_is_named(bucket, gcs_client, bq_client, unique_name):
    """Two files, the second corrupt: the error must point at the corrupt one, not only at the interval's first file.

    Emulator divergence: bqemulator names the file by its local path under the GCS emulator's
    store ('.../drops/2024-01-05/b.parquet') where BigQuery names the gs:// URI; both end with the object name.
    """
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5)], rows=2, file_name="a.parquet")
    upload(bucket, "drops/2024-01-05/b.parquet", NOT_PARQUET)

    with pytest.raises(WorkerError) as raised:
        import_window(spec, gcs_client, bq_client, day(5))

    message = str(raised.value)
    assert "(2 files, first gs://" in message
    assert "drops/2024-01-05/b.parquet" in message
    assert not table_exists(bq_client, spec.clean_table_id)
    assert not table_exists(bq_client, spec.raw_table_id(day(5)))
    assert ledger_rows(bq_client, spec) == []


# -- schema drift -------------------------------------------------------------------

NDJSON_MATCH = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/rows\.json"


def _ndjson_spec(bucket, unique_name, **overrides):
    return make_spec(bucket.name, unique_name, mode="Incremental", format="NEWLINE_DELIMITED_JSON", schema=None,
                     file_match=NDJSON_MATCH, **overrides)


def test_extra_column_in_later_interval_fails_naming_columns(bucket, gcs_client, bq_client, unique_name):
    spec = _ndjson_spec(bucket, unique_name, schema_evolution="fail")
    drop(bucket, "drops/2024-01-05/rows.json", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], fmt="NEWLINE_DELIMITED_JSON")
    import_window(spec, gcs_client, bq_client, day(5))
    clean_before = table_rows(bq_client, spec.clean_table_id)
    drop(bucket, "drops/2024-01-06/rows.json", [{"id": 3, "name": "c", "extra": "x"}], fmt="NEWLINE_DELIMITED_JSON")

    with pytest.raises(WorkerError) as raised:
        import_window(spec, gcs_client, bq_client, day(6))

    message = str(raised.value)
    assert "['extra']" in message
    assert spec.clean_table_id in message and "left unchanged" in message
    assert table_rows(bq_client, spec.clean_table_id) == clean_before
    assert [f.name for f in bq_client.get_table(spec.clean_table_id).schema] == ["id", "name", "_interval_start"]
    assert {r["interval_start"].day for r in ledger_rows(bq_client, spec)} == {5}


def test_removed_column_loads_and_is_reported_as_schema_change(bucket, gcs_client, bq_client, unique_name, tmp_path):
    spec = _ndjson_spec(bucket, unique_name)
    drop(bucket, "drops/2024-01-05/rows.json", [{"id": 1, "name": "a"}], fmt="NEWLINE_DELIMITED_JSON")
    drop(bucket, "drops/2024-01-06/rows.json", [{"id": 2}], fmt="NEWLINE_DELIMITED_JSON")

    result = cli_import(write_spec(tmp_path, spec), "2024-01-05", "2024-01-07")

    assert result.returncode == 0, result.stderr
    out = result.json
    assert out["intervals"][0]["schema_change"] is None
    assert "removed ['name']" in out["intervals"][1]["schema_change"]
    assert {c["check_name"]: c["passed"] for c in out["checks"]} == {
        "rows_loaded": True, "no_unparseable_files": True, "schema_unchanged": False, "no_skipped_files": True,
    }
    assert rows_per_interval(bq_client, spec) == {day(5): 1, day(6): 1}


def test_column_named_like_the_interval_column_fails(bucket, gcs_client, bq_client, unique_name):
    spec = _ndjson_spec(bucket, unique_name)
    drop(bucket, "drops/2024-01-05/rows.json", [{"id": 1, "_interval_start": "2024-01-05"}], fmt="NEWLINE_DELIMITED_JSON")

    with pytest.raises(WorkerError, match=r"already has a column '_interval_start'.*set interval_column"):
        import_window(spec, gcs_client, bq_client, day(5))
    assert not table_exists(bq_client, spec.clean_table_id)


# -- zero files and unparseable names --------------------------------------------


def test_zero_matching_files_is_no_files_not_an_error(bucket, bq_client, unique_name, tmp_path):
    # a group without the format's fixed shape: the whole prefix is listed, so the unparseable name outside the
    # window is seen (a narrowed listing counts its own key range only: README, step 1)
    spec = make_spec(bucket.name, unique_name, mode="Overwrite",
                     file_match=r"(?P<interval_timestamp>[0-9-]{10})/[a-z0-9_]+\.parquet")
    drop(bucket, "drops/2024-01-05/readme.txt", [{"a": 1}], fmt="CSV")  # listed, not matching
    drop(bucket, "drops/2024-99-99/scores.parquet", score_rows(interval_start=day(5), count=1))  # matching, unparseable

    result = cli_import(write_spec(tmp_path, spec), "2024-01-05", "2024-01-07")

    assert result.returncode == 0, result.stderr
    out = result.json
    assert [(i["interval"], i["status"], i["files"], i["rows"]) for i in out["intervals"]] == [
        ("20240105", "no_files", 0, 0), ("20240106", "no_files", 0, 0)
    ]
    checks = {c["check_name"]: c for c in out["checks"]}
    assert checks["rows_loaded"]["passed"] is False and checks["rows_loaded"]["severity"] == "ERROR"
    assert checks["no_unparseable_files"]["passed"] is False and checks["no_unparseable_files"]["severity"] == "WARN"
    assert out["metadata"]["files_ignored"] == 1
    assert out["metadata"]["files_unparseable"] == 1
    assert out["metadata"]["unparseable_names"] == ["drops/2024-99-99/scores.parquet"]
    assert out["metadata"]["dagster/row_count"] == 0
    assert "does not parse" in result.stderr
    assert not table_exists(bq_client, spec.clean_table_id)  # nothing loaded: nothing published


def test_empty_window_is_an_error(bucket, unique_name, tmp_path):
    spec = make_spec(bucket.name, unique_name)

    result = cli_import(write_spec(tmp_path, spec), "2024-01-05", "2024-01-05")

    assert result.returncode == 1
    assert "error: The window" in result.stderr and "holds no daily interval" in result.stderr


# -- unreachable endpoints ----------------------------------------------------------


@pytest.mark.parametrize(("variable", "service"), [("STORAGE_EMULATOR_HOST", "GCS"), ("BIGQUERY_EMULATOR_HOST", "BigQuery")])
def test_unreachable_endpoint_fails_within_the_retry_deadline(bucket, unique_name, tmp_path, variable, service):
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=1)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()

    result = run_cli(["import", "--spec", str(write_spec(tmp_path, spec)), "--start", "2024-01-05", "--retry-deadline", "3"],
                     env={variable: closed}, timeout=60)

    assert result.returncode == 1
    assert time.monotonic() - started < 30, "the retry deadline did not bound the run"
    assert f"error: {service} could not be reached" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- bad spec files -----------------------------------------------------------------


def _good(bucket_name: str) -> dict:
    return make_spec(bucket_name, "badspec").to_dict()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"bucket_name": "Bad_Bucket!"}, "field 'bucket_name'"),
        ({"mode": "Sometimes"}, "field 'mode'"),
        ({"file_match": r"\d{4}/scores\.parquet"}, "field 'file_match'"),
        ({"retention_days": -1}, "field 'retention_days'"),
        ({"schema": [{"name": "a", "type": "VARCHAR"}]}, "field 'schema[0].type'"),
        ({"colour": "blue"}, "unknown fields ['colour']"),
    ],
)
def test_bad_spec_field_is_named(tmp_path, capsys, change, expected):
    """In-process ``main(argv)`` (the same code path as the CLI, without a 3 s interpreter start per case)."""
    path = write_spec(tmp_path, {**_good("some-bucket"), **change})

    code = worker_main(["import", "--spec", str(path), "--start", "2024-01-05"])

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.startswith("error: "), captured.err
    assert expected in captured.err


def test_spec_missing_a_required_field_is_named(tmp_path):
    data = _good("some-bucket")
    del data["mode"]
    path = write_spec(tmp_path, data)

    result = run_cli(["import", "--spec", str(path), "--start", "2024-01-05"])

    assert result.returncode == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert "mode" in result.stderr
    assert "Traceback" not in result.stderr


def test_spec_file_not_json_or_missing(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")

    not_json = run_cli(["import", "--spec", str(broken), "--start", "2024-01-05"])
    missing = run_cli(["retention", "--spec", str(tmp_path / "nope.json")])

    assert not_json.returncode == 1 and "error: spec file" in not_json.stderr and "is not JSON" in not_json.stderr
    assert missing.returncode == 1 and "error: cannot read spec file" in missing.stderr and "nope.json" in missing.stderr


def test_spec_file_round_trips_through_json(bucket, tmp_path, unique_name):
    """The file the tests write is exactly what ImportSpec.from_dict accepts (guards the helpers themselves)."""
    spec = make_spec(bucket.name, unique_name)
    assert ImportSpec.from_dict(json.loads(write_spec(tmp_path, spec).read_text())) == spec
