"""Formats and intervals: CSV (gzip, header, autodetect, explicit schema, delimiter), NDJSON, Parquet; Hourly and Monthly.

Emulator divergences (bqemulator 1.4.0 loads CSV with DuckDB's ``COPY ... (FORMAT CSV, HEADER)``):
- it always skips exactly one header row and ignores ``skipLeadingRows`` (so ``csv_header_rows=0``
  cannot be tested end to end here; the load config the worker sends is checked in
  tests/unit/test_worker_load_config.py instead);
- it ignores ``fieldDelimiter`` and lets DuckDB sniff the delimiter, so a custom delimiter loads
  here even if the worker forgot to send it (the unit test checks that it is sent);
- autodetect (DuckDB's sniffer) reads ``0x...`` hex strings as INT64 where BigQuery keeps STRING,
  so the autodetect test uses values that are unambiguous strings.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

from localdev.samples import score_rows, upload
from tests.emulators.worker_helpers import (
    cli_import,
    count_rows,
    day,
    days_in_clean,
    drop,
    import_window,
    ledger_rows,
    make_spec,
    rows_per_interval,
    statuses,
    table_rows,
    write_spec,
)

EXPLICIT = [
    {"name": "address", "type": "STRING"},
    {"name": "score", "type": "FLOAT64"},
    {"name": "day", "type": "STRING"},
]


def _csv(rows, *, delimiter=",", header=True, gzipped=False) -> bytes:
    keys = list(rows[0])
    lines = ([delimiter.join(keys)] if header else []) + [delimiter.join(str(r[k]) for k in keys) for r in rows]
    data = ("\n".join(lines) + "\n").encode()
    return gzip.compress(data, mtime=0) if gzipped else data


def _columns(bq_client, table_id):
    return [(f.name, f.field_type) for f in bq_client.get_table(table_id).schema]


def _string_address_rows(d, n):
    """Sample rows whose address is an unambiguous string (see the module note on autodetect)."""
    return [{**r, "address": f"user-{d:%d}-{i}"} for i, r in enumerate(score_rows(interval_start=d, count=n))]


def test_csv_gzip_with_header_autodetect(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", format="CSV", schema=None,
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/scores\.csv\.gz")
    for d, n in ((day(5), 3), (day(6), 4)):
        drop(bucket, f"drops/{d:%Y-%m-%d}/scores.csv.gz", _string_address_rows(d, n), fmt="CSV", gzip_csv=True)

    summary = import_window(spec, gcs_client, bq_client, day(5), day(7))

    assert statuses(summary) == {"20240105": "loaded", "20240106": "loaded"}
    assert rows_per_interval(bq_client, spec) == {day(5): 3, day(6): 4}
    # the header row named the columns and was not loaded as data
    names = [name for name, _ in _columns(bq_client, spec.raw_table_id(day(5)))]
    assert names == ["address", "score", "day"]
    assert count_rows(bq_client, spec.clean_table_id, "address = 'address'") == 0
    assert dict(_columns(bq_client, spec.raw_table_id(day(5))))["score"] in ("FLOAT", "FLOAT64")
    raw = table_rows(bq_client, spec.raw_table_id(day(6)))
    expected = sorted((r["address"], r["score"]) for r in _string_address_rows(day(6), 4))
    assert sorted((r[0], r[1]) for r in raw) == expected


def test_csv_explicit_schema_custom_delimiter_and_timestamp_format(bucket, gcs_client, bq_client, unique_name):
    """Pipe-delimited with a header row, names like scores_20240105.psv: values land in the declared columns."""
    spec = make_spec(bucket.name, unique_name, mode="Overwrite", format="CSV", schema=EXPLICIT,
                     csv_delimiter="|", timestamp_format="%Y%m%d",
                     file_match=r"scores_(?P<interval_timestamp>\d{8})\.psv")
    rows = score_rows(interval_start=day(5), count=4, seed=3)
    upload(bucket, "drops/scores_20240105.psv", _csv(rows, delimiter="|"))

    summary = import_window(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    columns = dict(_columns(bq_client, spec.clean_table_id))
    assert list(columns) == ["address", "score", "day"]
    assert columns["address"] == "STRING" and columns["day"] == "STRING" and columns["score"] in ("FLOAT", "FLOAT64")
    assert table_rows(bq_client, spec.clean_table_id) == sorted(((r["address"], r["score"], r["day"]) for r in rows), key=repr)


def test_csv_explicit_schema_with_header_semicolon(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", format="CSV", schema=EXPLICIT, csv_delimiter=";",
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/scores\.csv")
    rows = score_rows(interval_start=day(5), count=3)
    upload(bucket, "drops/2024-01-05/scores.csv", _csv(rows, delimiter=";"))

    import_window(spec, gcs_client, bq_client, day(5))

    assert rows_per_interval(bq_client, spec) == {day(5): 3}
    assert days_in_clean(bq_client, spec) == {"2024-01-05": 3}


def test_ndjson_autodetect_and_explicit_schema(bucket, gcs_client, bq_client, unique_name):
    match = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/scores\.json"
    auto = make_spec(bucket.name, unique_name, mode="Incremental", format="NEWLINE_DELIMITED_JSON", schema=None,
                     file_match=match)
    explicit = make_spec(bucket.name, f"{unique_name}x", mode="Overwrite", format="NEWLINE_DELIMITED_JSON",
                         schema=EXPLICIT, file_match=match)
    for d, n in ((day(5), 2), (day(6), 5)):
        drop(bucket, f"drops/{d:%Y-%m-%d}/scores.json", score_rows(interval_start=d, count=n), fmt="NEWLINE_DELIMITED_JSON")

    import_window(auto, gcs_client, bq_client, day(5), day(7))
    import_window(explicit, gcs_client, bq_client, day(5), day(7))

    assert rows_per_interval(bq_client, auto) == {day(5): 2, day(6): 5}
    assert {n for n, _ in _columns(bq_client, auto.raw_table_id(day(5)))} == {"address", "score", "day"}
    assert days_in_clean(bq_client, explicit) == {"2024-01-06": 5}
    assert [n for n, _ in _columns(bq_client, explicit.clean_table_id)] == ["address", "score", "day"]


def test_ndjson_as_subprocess(bucket, bq_client, unique_name, tmp_path):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", format="NEWLINE_DELIMITED_JSON", schema=None,
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/[a-z]+\.ndjson")
    lines = [{"id": i, "name": f"n{i}"} for i in range(7)]
    upload(bucket, "drops/2024-01-05/events.ndjson", "".join(json.dumps(x) + "\n" for x in lines).encode())

    result = cli_import(write_spec(tmp_path, spec), "2024-01-05")

    assert result.returncode == 0, result.stderr
    assert result.json["intervals"][0]["rows"] == 7
    assert sorted(r[:2] for r in table_rows(bq_client, spec.clean_table_id)) == [(i, f"n{i}") for i in range(7)]


def test_hourly_incremental_tables_carry_the_hour(bucket, gcs_client, bq_client, unique_name, tmp_path):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", interval="Hourly", format="NEWLINE_DELIMITED_JSON",
                     schema=None, path_base="hourly",
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2}T\d{2})/part-\d+\.json")
    hours = [day(5, hour=h) for h in (22, 23)] + [day(6, hour=0)]
    for i, h in enumerate(hours):
        for part in range(2):
            drop(bucket, f"hourly/{h:%Y-%m-%dT%H}/part-{part}.json",
                 [{"hour": h.hour, "part": part, "n": k} for k in range(i + 1)], fmt="NEWLINE_DELIMITED_JSON")
    drop(bucket, "hourly/2024-01-06T01/part-0.json", [{"hour": 1, "part": 0, "n": 0}], fmt="NEWLINE_DELIMITED_JSON")

    result = cli_import(write_spec(tmp_path, spec), "2024-01-05T22:00:00Z", "2024-01-06T01:00:00Z")

    assert result.returncode == 0, result.stderr
    assert [(i["interval"], i["status"], i["files"]) for i in result.json["intervals"]] == [
        ("2024010522", "loaded", 2), ("2024010523", "loaded", 2), ("2024010600", "loaded", 2)
    ]
    assert result.json["metadata"]["raw_tables"] == [spec.raw_table_id(h) for h in hours]
    assert spec.raw_table_id(hours[0]).endswith(".scores__2024010522")
    assert rows_per_interval(bq_client, spec) == {h: 2 * (i + 1) for i, h in enumerate(hours)}
    # the hour after the window (01:00) was matched but not loaded
    assert count_rows(bq_client, spec.clean_table_id, "hour = 1") == 0
    assert {r["object_name"].split("/")[1] for r in ledger_rows(bq_client, spec)} == {f"{h:%Y-%m-%dT%H}" for h in hours}


def test_monthly_overwrite_publishes_the_newest_month(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Overwrite", interval="Monthly",
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2})/scores\.parquet")
    jan, feb = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    drop(bucket, "drops/2024-01/scores.parquet", score_rows(interval_start=jan, count=3))
    drop(bucket, "drops/2024-02/scores.parquet", score_rows(interval_start=feb, count=4))

    # a window starting mid-month floors to the month
    summary = import_window(spec, gcs_client, bq_client, datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))

    assert statuses(summary) == {"20240101": "loaded", "20240201": "loaded"}
    assert count_rows(bq_client, spec.raw_table_id(jan)) == 3
    assert spec.raw_table_id(feb).endswith(".scores__20240201")
    assert days_in_clean(bq_client, spec) == {"2024-02-01": 4}


def test_monthly_incremental(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", interval="Monthly",
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2})/scores\.parquet")
    months = [datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3)]
    for i, m in enumerate(months):
        drop(bucket, f"drops/{m:%Y-%m}/scores.parquet", score_rows(interval_start=m, count=i + 2))

    import_window(spec, gcs_client, bq_client, months[0], datetime(2024, 4, 1, tzinfo=UTC))

    assert rows_per_interval(bq_client, spec) == {m: i + 2 for i, m in enumerate(months)}


def test_weekly_groups_files_of_the_same_iso_week(bucket, gcs_client, bq_client, unique_name):
    """Files dated Wed 01-03 and Fri 01-05 are one interval (the week starting Monday 2024-01-01); 01-08 is the next."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", interval="Weekly")
    drop(bucket, "drops/2024-01-03/wed.parquet", score_rows(interval_start=day(3), count=2))
    drop(bucket, "drops/2024-01-05/fri.parquet", score_rows(interval_start=day(5), count=3))
    drop(bucket, "drops/2024-01-08/mon.parquet", score_rows(interval_start=day(8), count=1))

    summary = import_window(spec, gcs_client, bq_client, day(4), day(9))  # floors to Monday 01-01

    assert [(r.suffix, r.status, r.files) for r in summary.intervals] == [("20240101", "loaded", 2), ("20240108", "loaded", 1)]
    assert rows_per_interval(bq_client, spec) == {day(1): 5, day(8): 1}


def test_whole_bucket_when_path_base_is_empty(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Overwrite", path_base="", format="NEWLINE_DELIMITED_JSON", schema=None,
                     file_match=r"scores-(?P<interval_timestamp>\d{4}-\d{2}-\d{2})\.json")
    drop(bucket, "scores-2024-01-05.json", [{"n": 1}, {"n": 2}], fmt="NEWLINE_DELIMITED_JSON")
    drop(bucket, "nested/scores-2024-01-05.json", [{"n": 3}], fmt="NEWLINE_DELIMITED_JSON")  # full match required
    # listed (inside the interval's key range `scores-2024-01-05` .. `scores-2024-01-06`), not a full match
    drop(bucket, "scores-2024-01-05.json.bak", [{"n": 4}], fmt="NEWLINE_DELIMITED_JSON")

    summary = import_window(spec, gcs_client, bq_client, day(5))

    # the nested name sorts outside the interval's key range: never listed (README, step 1)
    assert summary.intervals[0].files == 1 and summary.ignored == 1 and summary.listed == 2
    assert sorted(r[0] for r in table_rows(bq_client, spec.clean_table_id)) == [1, 2]


def test_flexible_column_names_publish_incrementally(bucket, gcs_client, bq_client, unique_name):
    """Issue 9.5: BigQuery accepts flexible column names (dashes, leading digits, spaces); the Incremental
    publish used to reject them with ValueError. They are quoted (backticks escaped) instead."""
    from tests.emulators.worker_helpers import import_window, make_spec, rows_per_interval

    spec = make_spec(bucket.name, unique_name, mode="Incremental", format="CSV", schema=None,
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/[a-z]+\.csv")
    bucket.blob("drops/2024-01-05/flex.csv").upload_from_string("user-id,2fa,first name\nu1,true,Ann\nu2,false,Bo\n")
    import_window(spec, gcs_client, bq_client, day(5))
    assert rows_per_interval(bq_client, spec) == {day(5): 2}
    columns = {f.name for f in bq_client.get_table(spec.clean_table_id).schema}
    assert {"user-id", "2fa", "first name"} <= columns
