"""The load-URI and Avro logical-type rules of the conformance proxy on hand-built requests (no emulator)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import fastavro

from localdev.conformance.exchange import Exchange
from localdev.conformance.rules.bigquery_avro_logical_types import RAW_COPIES, AvroLogicalTypes
from localdev.conformance.rules.bigquery_load_uris import LoadUris
from localdev.conformance.world import Clock, Upstream, World

P = "/bigquery/v2/projects/p"
SCHEMA = {"type": "record", "name": "E", "fields": [
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
    {"name": "n", "type": "long"},
]}
TS = datetime(2024, 1, 5, 12, 30, tzinfo=UTC)


def world(root: Path | None = None) -> World:
    return World(clock=Clock(), upstream=Upstream("http://127.0.0.1:9", "http://127.0.0.1:9", root))


def load_job(**config) -> Exchange:
    body = {"jobReference": {"projectId": "p", "jobId": "j1"}, "configuration": {
        "load": {"destinationTable": {"projectId": "p", "datasetId": "d", "tableId": "t"}, **config}}}
    return Exchange.parse(method="POST", target=f"{P}/jobs", headers={}, body=json.dumps(body).encode())


def test_consecutive_slashes_collapse_after_the_bucket_too():
    exchange = load_job(sourceUris=["gs://b//x//y.csv", "gs://b/plain.csv"])
    assert LoadUris().before(exchange, world()) is None
    assert exchange.json["configuration"]["load"]["sourceUris"] == ["gs://b/x/y.csv", "gs://b/plain.csv"]


def test_a_uri_with_two_wildcards_fails_the_load():
    reply = LoadUris().before(load_job(sourceUris=["gs://b/a*/b*.csv"]), world())
    assert reply is not None and reply.json["status"]["errorResult"]["reason"] == "invalid"


def _avro_file(root: Path, name: str = "b/e.avro") -> str:
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(SCHEMA), [{"ts": TS, "day": date(2024, 1, 5), "n": 7}])
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return f"gs://{name}"


def test_without_the_flag_logical_fields_load_as_raw_integers(tmp_path):
    uri = _avro_file(tmp_path)
    exchange = load_job(sourceFormat="AVRO", sourceUris=[uri])

    assert AvroLogicalTypes().before(exchange, world(tmp_path)) is None

    load = exchange.json["configuration"]["load"]
    assert load["schema"]["fields"] == [{"name": "ts", "type": "INTEGER", "mode": "REQUIRED"},
                                        {"name": "day", "type": "INTEGER", "mode": "NULLABLE"},
                                        {"name": "n", "type": "INTEGER", "mode": "REQUIRED"}]
    (copied,) = load["sourceUris"]
    assert copied.startswith(f"gs://{RAW_COPIES}/")
    with (tmp_path / copied.removeprefix("gs://")).open("rb") as handle:
        (record,) = list(fastavro.reader(handle))
    assert record == {"ts": int(TS.timestamp() * 1_000_000), "day": (date(2024, 1, 5) - date(1970, 1, 1)).days, "n": 7}


def test_with_the_flag_logical_fields_get_their_bigquery_types_and_the_file_is_read_as_is(tmp_path):
    uri = _avro_file(tmp_path)
    exchange = load_job(sourceFormat="AVRO", sourceUris=[uri], useAvroLogicalTypes=True)

    assert AvroLogicalTypes().before(exchange, world(tmp_path)) is None

    load = exchange.json["configuration"]["load"]
    assert [(f["name"], f["type"]) for f in load["schema"]["fields"]] == [
        ("ts", "TIMESTAMP"), ("day", "DATE"), ("n", "INTEGER")]
    assert load["sourceUris"] == [uri]


def test_a_declared_timestamp_column_fails_a_load_without_the_flag(tmp_path):
    uri = _avro_file(tmp_path)
    schema = {"fields": [{"name": "ts", "type": "TIMESTAMP"}, {"name": "day", "type": "DATE"}, {"name": "n", "type": "INT64"}]}

    reply = AvroLogicalTypes().before(load_job(sourceFormat="AVRO", sourceUris=[uri], schema=schema), world(tmp_path))

    assert reply is not None
    error = reply.json["status"]["errorResult"]
    assert error["reason"] == "invalid" and "Field ts" in error["message"]
    flagged = load_job(sourceFormat="AVRO", sourceUris=[uri], schema=schema, useAvroLogicalTypes=True)
    assert AvroLogicalTypes().before(flagged, world(tmp_path)) is None, "with the flag the declared types match"


def test_other_formats_and_files_without_logical_types_are_left_alone(tmp_path):
    csv = load_job(sourceFormat="CSV", sourceUris=["gs://b/e.csv"])
    assert AvroLogicalTypes().before(csv, world(tmp_path)) is None and "schema" not in csv.json["configuration"]["load"]
    buffer = io.BytesIO()
    plain = {"type": "record", "name": "P", "fields": [{"name": "n", "type": "long"}]}
    fastavro.writer(buffer, fastavro.parse_schema(plain), [{"n": 1}])
    (tmp_path / "b").mkdir()
    (tmp_path / "b/p.avro").write_bytes(buffer.getvalue())
    exchange = load_job(sourceFormat="AVRO", sourceUris=["gs://b/p.avro"])
    assert AvroLogicalTypes().before(exchange, world(tmp_path)) is None
    assert exchange.json["configuration"]["load"]["sourceUris"] == ["gs://b/p.avro"]
