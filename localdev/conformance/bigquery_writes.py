"""Which tables a BigQuery request writes, and how: the one classification the BigQuery rules share.

Google's limits count writes differently: the table metadata update rate counts ``tables.insert``,
``tables.patch``/``update``, DDL and jobs that write a destination table; DML statements have their
own concurrency limits. This module reads a request (a ``jobs.insert`` body, a ``jobs.query`` body, a
``tables.*`` call) and names each table it writes with the kind of write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from localdev.conformance.exchange import BigQueryCall, Exchange, TableRef


class WriteKind(Enum):
    TABLE_CALL = "tables.insert/patch/update"
    DDL = "DDL statement"
    JOB_OUTPUT = "job writing a destination table"
    DML = "DML statement"


class JobKind(Enum):
    LOAD = "load"
    COPY = "copy"
    QUERY = "query"
    EXTRACT = "extract"


@dataclass(frozen=True)
class TableWrite:
    table: TableRef
    kind: WriteKind
    statement: str = ""


_NAME = r"(?:`[^`]+`|[A-Za-z_][\w-]*)(?:\.(?:`[^`]+`|[A-Za-z_][\w-]*))*"
_STATEMENTS = [
    (WriteKind.DML, re.compile(rf"^\s*INSERT\s+(?:INTO\s+)?({_NAME})", re.I)),
    (WriteKind.DML, re.compile(rf"^\s*UPDATE\s+({_NAME})", re.I)),
    (WriteKind.DML, re.compile(rf"^\s*DELETE\s+(?:FROM\s+)?({_NAME})", re.I)),
    (WriteKind.DML, re.compile(rf"^\s*MERGE\s+(?:INTO\s+)?({_NAME})", re.I)),
    (WriteKind.DML, re.compile(rf"^\s*TRUNCATE\s+TABLE\s+({_NAME})", re.I)),
    (WriteKind.DDL, re.compile(rf"^\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?({_NAME})", re.I)),
    (WriteKind.DDL, re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})", re.I)),
    (WriteKind.DDL, re.compile(rf"^\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?({_NAME})", re.I)),
]
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


def table_name(text: str, *, default_project: str, default_dataset: str | None = None) -> TableRef | None:
    """``p.d.t`` / `` `p`.`d`.`t` `` / ``d.t`` → a TableRef (None when the dataset is unknown)."""
    parts = [p for chunk in re.findall(r"`[^`]+`|[^.`]+", text) for p in chunk.strip("`").split(".")]
    if len(parts) == 3:
        return TableRef(*parts)
    if len(parts) == 2:
        return TableRef(default_project, *parts)
    if len(parts) == 1 and default_dataset:
        return TableRef(default_project, default_dataset, parts[0])
    return None


def statement_writes(sql: str, *, default_project: str, default_dataset: str | None = None) -> list[TableWrite]:
    """Each DML or DDL statement of ``sql`` (a script too) with the table it writes."""
    writes = []
    for statement in _COMMENT.sub(" ", sql).split(";"):
        for kind, pattern in _STATEMENTS:
            if found := pattern.match(statement):
                table = table_name(found.group(1), default_project=default_project, default_dataset=default_dataset)
                if table is not None:
                    writes.append(TableWrite(table, kind, statement.strip()))
                break
    return writes


def job_kind(exchange: Exchange) -> tuple[JobKind, dict] | None:
    """The kind of job a jobs.insert creates, with its configuration block (None for other calls)."""
    route = exchange.bigquery_route
    if route is None or route.call is not BigQueryCall.JOBS_INSERT:
        return None
    configuration = exchange.json.get("configuration") or {}
    for kind in JobKind:
        if kind.value in configuration:
            return kind, configuration[kind.value]
    return None


def job_config(exchange: Exchange, kind: JobKind) -> dict | None:
    """The configuration block of a jobs.insert creating a ``kind`` job (``configuration.load`` ...), else None;
    a rule that changes it changes the request (then :meth:`Exchange.set_json`)."""
    found = job_kind(exchange)
    return found[1] if found and found[0] is kind else None


def query_text(exchange: Exchange) -> tuple[str, str | None] | None:
    """(SQL, default dataset) of a query job or a jobs.query call, else None."""
    route = exchange.bigquery_route
    if route is None:
        return None
    if route.call is BigQueryCall.JOBS_QUERY:
        body = exchange.json
        return body.get("query", ""), (body.get("defaultDataset") or {}).get("datasetId")
    found = job_kind(exchange)
    if found and found[0] is JobKind.QUERY:
        config = found[1]
        return config.get("query", ""), (config.get("defaultDataset") or {}).get("datasetId")
    return None


def table_writes(exchange: Exchange) -> list[TableWrite]:
    """Every table the request writes, with how."""
    route = exchange.bigquery_route
    if route is None:
        return []
    if route.call in (BigQueryCall.TABLES_INSERT, BigQueryCall.TABLES_PATCH, BigQueryCall.TABLES_UPDATE):
        return [TableWrite(route.table, WriteKind.TABLE_CALL)] if route.table else []
    if (sql := query_text(exchange)) is not None:
        writes = statement_writes(sql[0], default_project=route.project, default_dataset=sql[1])
        found = job_kind(exchange)
        destination = TableRef.from_resource((found[1] if found else {}).get("destinationTable"),
                                             default_project=route.project)
        if destination is not None and not writes:
            writes.append(TableWrite(destination, WriteKind.JOB_OUTPUT))
        return writes
    found = job_kind(exchange)
    if found and found[0] in (JobKind.LOAD, JobKind.COPY):
        destination = TableRef.from_resource(found[1].get("destinationTable"), default_project=route.project)
        return [TableWrite(destination, WriteKind.JOB_OUTPUT)] if destination else []
    return []
