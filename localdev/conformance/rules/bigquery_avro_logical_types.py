"""Avro loads without ``useAvroLogicalTypes`` read logical-typed fields as their raw types.

BigQuery: "If sourceFormat is set to "AVRO", indicates whether to interpret logical types as the
corresponding BigQuery data type (for example, TIMESTAMP), instead of using the raw type (for example,
INTEGER)" (JobConfigurationLoad.useAvroLogicalTypes, https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad.FIELDS.use_avro_logical_types),
with the mapping in https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-avro#logical_types:
``date`` → DATE, ``time-millis``/``time-micros`` → TIME, ``timestamp-millis``/``timestamp-micros`` →
TIMESTAMP, ``local-timestamp-millis``/``-micros`` → DATETIME; without the flag ``date`` and ``time-millis``
(Avro ``int``) and the others (Avro ``long``) load as INTEGER. The table schema of a load without one is
the file's ("the table schema is automatically retrieved using the source data").

bqemulator reads Avro with DuckDB, which always converts logical types, and creates no table from an Avro
file. The rule makes the emulator load what BigQuery loads, for files whose top-level fields are flat:

- no explicit schema: the load gets the schema BigQuery derives from the file (raw or logical types);
- without the flag, the source URIs are rewritten to copies of the files with the logical types stripped
  (``gs://_conformance_avro/...``, a directory no bucket can be named), so the values are the raw integers;
- a declared type (explicit schema, or the table an append writes) that differs from what the file gives a
  logical-typed field fails the job, as BigQuery refuses a load whose schema does not match.

The files are read from the GCS emulator's disk (``world.upstream.gcs_root``) with fastavro.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from localdev.conformance.bigquery_writes import JobKind, job_config
from localdev.conformance.exchange import Exchange, Reply, Service, TableRef, failed_job
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

#: logical type -> (BigQuery type with useAvroLogicalTypes, raw BigQuery type without)
_LOGICAL = {
    "date": ("DATE", "INTEGER"),
    "time-millis": ("TIME", "INTEGER"),
    "time-micros": ("TIME", "INTEGER"),
    "timestamp-millis": ("TIMESTAMP", "INTEGER"),
    "timestamp-micros": ("TIMESTAMP", "INTEGER"),
    "local-timestamp-millis": ("DATETIME", "INTEGER"),
    "local-timestamp-micros": ("DATETIME", "INTEGER"),
}
_PRIMITIVE = {"boolean": "BOOLEAN", "int": "INTEGER", "long": "INTEGER", "float": "FLOAT", "double": "FLOAT",
              "bytes": "BYTES", "fixed": "BYTES", "string": "STRING", "enum": "STRING"}
_SAME = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}
#: Where the raw copies go under the GCS emulator's root (no bucket name can start with '_').
RAW_COPIES = "_conformance_avro"


class AvroLogicalTypes(Rule):
    name = "bigquery_avro_logical_types"
    doc = "https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-avro#logical_types"
    service = Service.BIGQUERY
    assumed = ("the failure of a load whose declared type differs from the type the file gives a logical-typed "
               "field (a failed job, reason invalid, 'Provided Schema does not match Table'); decimal and uuid "
               "are left as the emulator reads them; files with nested fields are left alone")

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        config = job_config(exchange, JobKind.LOAD)
        root = world.upstream.gcs_root
        if config is None or root is None:
            return None
        if str(config.get("sourceFormat", "")).upper() != "AVRO":
            return None
        logical = bool(config.get("useAvroLogicalTypes"))
        uris = list(config.get("sourceUris") or [])
        schemas = [writer_schema(local_path(root, uri)) for uri in uris]
        if not schemas or any(s is None for s in schemas):
            return None  # unreadable or missing: the emulator's own error names it
        columns = bigquery_columns(schemas[0], logical=logical)
        if columns is None:
            return None
        typed = {name for name, _, _ in columns if name in logical_fields(schemas[0])}
        if not typed:
            return None
        declared = _declared(config, exchange, world)
        for name, bq_type, _ in columns:
            want = declared.get(name)
            if name in typed and want is not None and _SAME.get(want, want) != bq_type:
                table = config.get("destinationTable") or {}
                return failed_job(exchange, reason="invalid", message=(
                    f"Provided Schema does not match Table {table.get('projectId')}:{table.get('datasetId')}."
                    f"{table.get('tableId')}. Field {name} has changed type from {want} to {bq_type}"))
        if not (config.get("schema") or {}).get("fields"):
            config["schema"] = {"fields": [{"name": n, "type": t, "mode": m} for n, t, m in columns]}
        if not logical:
            config["sourceUris"] = [raw_copy(root, local_path(root, uri), schema)
                                    for uri, schema in zip(uris, schemas, strict=True)]
        exchange.set_json(exchange.json)
        return None


def local_path(root: Path, uri: str) -> Path:
    """The GCS emulator's file of ``uri`` (DuckDB glob escapes like ``[*]`` undone)."""
    return root / re.sub(r"\[(.)\]", r"\1", uri.removeprefix("gs://"))


def writer_schema(path: Path) -> dict | None:
    import fastavro

    try:
        with path.open("rb") as handle:
            schema = fastavro.reader(handle).writer_schema
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return schema if isinstance(schema, dict) and schema.get("type") == "record" else None


def _field_type(avro_type: Any) -> tuple[Any, str]:
    """(the non-null branch, mode) of a field type: ``["null", T]`` is a NULLABLE T."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return (branches[0] if len(branches) == 1 else None), "NULLABLE"
    return avro_type, "REQUIRED"


def logical_fields(schema: dict) -> set[str]:
    """Top-level fields whose type is one of the logical types the flag converts."""
    names = set()
    for field in schema.get("fields", []):
        branch, _ = _field_type(field.get("type"))
        if isinstance(branch, dict) and branch.get("logicalType") in _LOGICAL:
            names.add(field["name"])
    return names


def bigquery_columns(schema: dict, *, logical: bool) -> list[tuple[str, str, str]] | None:
    """``(name, type, mode)`` of each top-level field as BigQuery loads it; None for nested or unknown types."""
    columns = []
    for field in schema.get("fields", []):
        branch, mode = _field_type(field.get("type"))
        if isinstance(branch, dict):
            logical_type = branch.get("logicalType")
            if logical_type in _LOGICAL:
                columns.append((field["name"], _LOGICAL[logical_type][0 if logical else 1], mode))
                continue
            if logical_type is not None or branch.get("type") not in _PRIMITIVE:
                return None
            branch = branch["type"]
        if branch not in _PRIMITIVE:
            return None
        columns.append((field["name"], _PRIMITIVE[branch], mode))
    return columns


def _declared(config: dict, exchange: Exchange, world: World) -> dict[str, str]:
    """Column types the load must match: its explicit schema, or the table a WRITE_APPEND writes."""
    fields = (config.get("schema") or {}).get("fields")
    if not fields and config.get("writeDisposition") == "WRITE_APPEND":
        route = exchange.bigquery_route
        table = TableRef.from_resource(config.get("destinationTable"), default_project=route.project if route else "")
        found = world.upstream.table(table) if table else None
        fields = ((found or {}).get("schema") or {}).get("fields")
    return {f["name"]: str(f.get("type", "")).upper() for f in fields or []}


def _strip_logical(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_logical(v) for k, v in schema.items() if k != "logicalType" or v not in _LOGICAL}
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    return schema


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _raw(logical_type: str | None, value: Any) -> Any:
    """The Avro integer a decoded logical value was written as."""
    if value is None or logical_type not in _LOGICAL:
        return value
    if logical_type == "date":
        return (value - date(1970, 1, 1)).days
    if logical_type.startswith("time-"):
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
        return micros // 1000 if logical_type.endswith("millis") else micros
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)  # local-timestamp-*: naive
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros // 1000 if logical_type.endswith("millis") else micros


def raw_copy(root: Path, path: Path, schema: dict) -> str:
    """A copy of the Avro file at ``path`` whose fields carry no logical types (the values stay the raw
    integers), under ``root/_conformance_avro``; its ``gs://`` URI for the emulator."""
    import fastavro

    data = path.read_bytes()
    key = hashlib.sha256(data + json.dumps(schema, sort_keys=True).encode()).hexdigest()[:24]
    target = root / RAW_COPIES / f"{key}.avro"
    if not target.exists():
        stripped = fastavro.parse_schema(_strip_logical(copy.deepcopy(schema)))
        kinds = {f["name"]: _field_type(f["type"])[0].get("logicalType") for f in schema["fields"]
                 if isinstance(_field_type(f["type"])[0], dict)}
        with path.open("rb") as handle:  # fastavro decodes logical types: encode them back to the raw integers
            records = [{k: _raw(kinds.get(k), v) for k, v in record.items()} for record in fastavro.reader(handle)]
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with partial.open("wb") as out:
            fastavro.writer(out, stripped, records)
        partial.replace(target)
    return f"gs://{RAW_COPIES}/{key}.avro"
