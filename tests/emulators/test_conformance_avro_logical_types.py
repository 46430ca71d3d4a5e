"""Avro logical types through the conformance proxy (rule ``bigquery_avro_logical_types``): BigQuery loads
``timestamp-micros`` and ``date`` fields as INTEGER unless the load sets ``useAvroLogicalTypes``
(https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-avro#logical_types).

New imports load them as TIMESTAMP and DATE; a clean table an earlier release filled with the raw integers
keeps receiving integers (with a warning naming the option), so no column type change stops the feed.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import fastavro
import pytest

from tests.emulators.worker_helpers import day, make_spec, query, statuses, upload
from worker.core.load_options import LoadOptions
from worker.run import run_import

AVRO_MATCH = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/[a-z0-9_]+\.avro"
SCHEMA = {"type": "record", "name": "Event", "fields": [
    {"name": "address", "type": "string"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
]}
RULE = "bigquery_avro_logical_types"


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def _drop(bucket, when: datetime, count: int = 2) -> None:
    rows = [{"address": f"0x{i:04x}", "ts": when.replace(hour=12, second=i), "day": when.date()} for i in range(count)]
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(SCHEMA), rows)
    upload(bucket, f"drops/{when:%Y-%m-%d}/events.avro", buffer.getvalue())


def _spec(bucket, unique_name, **overrides):
    fields = {"format": "AVRO", "schema": None, "mode": "Incremental", "file_match": AVRO_MATCH}
    return make_spec(bucket.name, unique_name, **{**fields, **overrides})


def _import(spec, gcs, bq, start):
    reporter = Recorder()
    summary = run_import(spec=spec, window_start=start, window_end=spec.interval.next_start(start), gcs=gcs, bq=bq,
                         reporter=reporter)
    return summary, reporter


def _column_types(bq, table_id: str) -> dict[str, str]:
    return {f.name: f.field_type for f in bq.get_table(table_id).schema}


def test_a_new_avro_import_loads_logical_types(bucket, gcs_client, bq_client, unique_name, conformance):
    spec = _spec(bucket, unique_name)
    _drop(bucket, day(5))

    summary, reporter = _import(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert conformance.answered[RULE] >= 1, "the rule saw the Avro load"
    types = _column_types(bq_client, spec.clean_table_id)
    assert (types["ts"], types["day"]) == ("TIMESTAMP", "DATE")
    project, dataset, table = spec.clean_table_id.split(".")
    rows = query(bq_client, f"SELECT ts, day FROM `{project}`.`{dataset}`.`{table}` ORDER BY ts")
    assert [(r["ts"].astimezone(UTC), r["day"]) for r in rows] == [
        (datetime(2024, 1, 5, 12, 0, 0, tzinfo=UTC), date(2024, 1, 5)),
        (datetime(2024, 1, 5, 12, 0, 1, tzinfo=UTC), date(2024, 1, 5))]
    assert not reporter.warnings


def test_an_explicit_schema_with_timestamp_columns_loads_logical_types(bucket, gcs_client, bq_client, unique_name):
    schema = [{"name": "address", "type": "STRING", "mode": "REQUIRED"},
              {"name": "ts", "type": "TIMESTAMP", "mode": "REQUIRED"}, {"name": "day", "type": "DATE"}]
    spec = _spec(bucket, unique_name, schema=schema)
    _drop(bucket, day(5))

    summary, _ = _import(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}, summary.intervals[0].error
    assert _column_types(bq_client, spec.clean_table_id)["ts"] == "TIMESTAMP"


def test_a_clean_table_holding_raw_integers_keeps_them_with_a_warning(bucket, gcs_client, bq_client, unique_name):
    raw = _spec(bucket, unique_name, load_options={"use_avro_logical_types": False})
    _drop(bucket, day(5))
    _drop(bucket, day(6))
    first, _ = _import(raw, gcs_client, bq_client, day(5))  # what an earlier release did: raw integers
    assert statuses(first) == {"20240105": "loaded"}
    assert _column_types(bq_client, raw.clean_table_id)["ts"] == "INTEGER"

    unset = _spec(bucket, unique_name)  # the option unset: logical types, except for this table
    assert unset.load_options == LoadOptions() and unset.fingerprint() != raw.fingerprint()
    second, reporter = _import(unset, gcs_client, bq_client, day(6))

    assert statuses(second) == {"20240106": "loaded"}, second.intervals[0].error
    types = _column_types(bq_client, unset.clean_table_id)
    assert (types["ts"], types["day"]) == ("INTEGER", "INTEGER"), "no column changed type"
    project, dataset, table = unset.clean_table_id.split(".")
    days = (date(2024, 1, 6) - date(1970, 1, 1)).days  # the raw Avro date: days since the epoch
    micros = query(bq_client, f"SELECT ts FROM `{project}`.`{dataset}`.`{table}` WHERE day = {days}")
    assert sorted(r["ts"] for r in micros) == [int(datetime(2024, 1, 6, 12, 0, s, tzinfo=UTC).timestamp() * 1_000_000)
                                               for s in (0, 1)]
    warned = [w for w in reporter.warnings if "use_avro_logical_types" in w]
    assert len(warned) == 1 and "ts" in warned[0] and "day" in warned[0], reporter.warnings


@pytest.mark.parametrize("flag", [True, False])
def test_the_option_is_sent_as_use_avro_logical_types(bucket, gcs_client, bq_client, unique_name, conformance, flag):
    spec = _spec(bucket, unique_name, load_options={"use_avro_logical_types": flag})
    _drop(bucket, day(5))

    summary, _ = _import(spec, gcs_client, bq_client, day(5))

    assert statuses(summary) == {"20240105": "loaded"}
    assert _column_types(bq_client, spec.clean_table_id)["ts"] == ("TIMESTAMP" if flag else "INTEGER")
