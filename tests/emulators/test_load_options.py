"""Load options through the emulators: a load job carrying them is accepted and loads the interval.

bqemulator reads files with DuckDB's own sniffing and ignores these options (seen here:
``null_marker`` and ``ignore_unknown_values`` have no effect), so what each option does is checked as
the load job payload BigQuery acts on, in tests/unit/test_worker_load_config.py. This test guards the
path end to end: the options travel from the spec through the worker's JSON spec into the job.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from localdev.samples import upload
from tests.emulators.worker_helpers import day, import_window, make_spec, retain, statuses, table_rows

SCHEMA = [{"name": "id", "type": "INT64"}, {"name": "name", "type": "STRING"}]


def test_a_load_with_options_is_accepted_and_recorded_with_them(bucket, gcs_client, bq_client, unique_name):
    upload(bucket, "drops/2024-01-05/rows.csv", b"id,name\n1,a\n2,b\n")
    options = {"quote": "'", "encoding": "UTF-8", "allow_jagged_rows": True, "allow_quoted_newlines": True,
               "time_zone": "UTC"}
    spec = make_spec(bucket.name, unique_name, mode="Incremental", format="CSV", schema=SCHEMA,
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/rows\.csv", load_options=options)
    summary = import_window(spec, gcs_client, bq_client, day(5))
    assert [r[:2] for r in table_rows(bq_client, spec.clean_table_id)] == [(1, "a"), (2, "b")]
    job = bq_client.get_job(summary.intervals[0].job_ids[0])
    assert job.quote_character == "'" and job.allow_jagged_rows is True and job.time_zone == "UTC"


def test_a_settings_change_after_retention_keeps_the_interval_and_names_its_deleted_files(
    bucket, gcs_client, bq_client, unique_name,
):
    upload(bucket, "drops/2024-01-05/rows.csv", b"id,name\n1,a\n2,b\n")
    spec = make_spec(bucket.name, unique_name, mode="Incremental", format="CSV", schema=SCHEMA, retention_days=1,
                     file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/rows\.csv")
    import_window(spec, gcs_client, bq_client, day(5))
    retain(spec, gcs_client, bq_client, as_of=day(5) + timedelta(days=30))
    assert not list(bucket.list_blobs(prefix="drops/"))
    changed = dataclasses.replace(spec, load_options={"null_marker": "NA"})

    summary = import_window(changed, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "retained"}
    note = summary.intervals[0].note
    assert "load settings changed" in note and f"gs://{bucket.name}/drops/2024-01-05/rows.csv" in note
    assert [r[:2] for r in table_rows(bq_client, spec.clean_table_id)] == [(1, "a"), (2, "b")]  # rows as loaded
