"""A query job that would modify more than 4,000 partitions of a partitioned table fails.

Google's limits for partitioned tables, "Number of partitions modified by a single job: 4,000 —
Each job operation (query or load) can affect up to 4,000 partitions. BigQuery rejects any query or
load job that attempts to modify more than 4,000 partitions." BigQuery's answer is the failed job
"Too many partitions produced by query, allowed 4000, query produces at least N partitions".
bqemulator writes any number of partitions.

What the rule counts, before forwarding (on the emulator, with the job's query parameters):

- ``INSERT INTO t [(columns)] SELECT ...`` into a time-unit column-partitioned ``t``: the distinct
  partitions (the partition column truncated to the table's unit) the SELECT produces;
- a query job with a ``destinationTable`` that is column-partitioned: the distinct partitions of the
  query's result.

Not counted: copy jobs (the page names query and load jobs only, and its copy-job limits list no
partition limit), load jobs (the rule would have to read the files; the worker loads into
unpartitioned per-interval tables), ``VALUES`` inserts, UPDATE/DELETE/MERGE (the worker's statements
on partitioned tables each touch one interval, or the intervals a retention run seals), ingestion-time
and integer-range partitioning.
"""

from __future__ import annotations

import re

from localdev.conformance.bigquery_writes import JobKind, WriteKind, job_config, query_text, statement_writes
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef, bigquery_error, failed_job
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

LIMIT = 4000

_INSERT = re.compile(r"^\s*INSERT\s+(?:INTO\s+)?(?:`[^`]+`|[\w.-]+)(?:\.(?:`[^`]+`|[\w-]+))*\s*"
                     r"(?:\(([^()]*)\))?\s*((?:WITH|SELECT|\().*)$", re.I | re.S)
_TRUNC = {"TIMESTAMP": "TIMESTAMP_TRUNC", "DATETIME": "DATETIME_TRUNC", "DATE": "DATE_TRUNC"}


def message(count: int) -> str:
    return f"Too many partitions produced by query, allowed {LIMIT}, query produces at least {count} partitions"


class PartitionsPerJob(Rule):
    name = "bigquery_partitions_per_job"
    doc = "https://cloud.google.com/bigquery/quotas#partitioned_tables"
    service = Service.BIGQUERY
    assumed = ("the failed job's reason 'invalid' (the message is the one BigQuery's users quote; Google's page "
               "states the limit, not the payload); 'at least N' is the exact count here")

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        found = query_text(exchange)
        if found is None:
            return None
        sql, default_dataset = found
        route = exchange.bigquery_route
        params = _parameters(exchange)
        count = 0
        for write in statement_writes(sql, default_project=route.project, default_dataset=default_dataset):
            if write.kind is WriteKind.DML and write.statement.upper().startswith("INSERT"):
                count = max(count, inserted_partitions(world, write.table, write.statement, params))
        destination = TableRef.from_resource((job_config(exchange, JobKind.QUERY) or {}).get("destinationTable"),
                                             default_project=route.project)
        if destination is not None and not count:
            partitioning = _partitioning(world, destination)
            if partitioning is not None:
                count = _count(world, route.project, sql, partitioning[0], partitioning[1:], params)
        if count <= LIMIT:
            return None
        if route.call is BigQueryCall.JOBS_INSERT:
            return failed_job(exchange, reason="invalid", message=message(count))
        return bigquery_error(400, "invalid", message(count))


def _parameters(exchange: Exchange) -> dict:
    """The request's query parameters, as the emulator's jobs.query takes them."""
    route = exchange.bigquery_route
    config = exchange.json if route.call is BigQueryCall.JOBS_QUERY else \
        ((exchange.json.get("configuration") or {}).get("query") or {})
    return {k: config[k] for k in ("queryParameters", "parameterMode") if config.get(k)}


def _partitioning(world: World, table: TableRef) -> tuple[str, str, str] | None:
    """(column, its type, unit) of a time-unit column-partitioned table, else None."""
    resource = world.upstream.table(table)
    partitioning = (resource or {}).get("timePartitioning") or {}
    column = partitioning.get("field")
    if not column:
        return None
    types = {f["name"].lower(): f.get("type", "TIMESTAMP").upper()
             for f in ((resource.get("schema") or {}).get("fields") or [])}
    return column, types.get(column.lower(), "TIMESTAMP"), partitioning.get("type", "DAY").upper()


def inserted_partitions(world: World, table: TableRef, statement: str, params: dict) -> int:
    """Distinct partitions of ``table`` an ``INSERT ... SELECT`` writes (0 when it is not counted here)."""
    found = _INSERT.match(statement)
    partitioning = _partitioning(world, table)
    if found is None or partitioning is None:
        return 0
    column, type_, unit = partitioning
    listed, select = found.group(1), found.group(2)
    if listed is not None:
        names = [n.strip().strip("`") for n in listed.split(",")]
    else:
        names = [f["name"] for f in ((world.upstream.table(table) or {}).get("schema") or {}).get("fields") or []]
    lowered = [n.lower() for n in names]
    if column.lower() not in lowered:
        return 1  # every row goes to the NULL partition
    position = lowered.index(column.lower())
    output = _query(world, table.project, f"SELECT * FROM ({select}) LIMIT 0", params, schema=True)
    if output is None or position >= len(output):
        return 0
    return _count(world, table.project, select, output[position], (type_, unit), params)


def _count(world: World, project: str, select: str, column: str, partitioning: tuple[str, str], params: dict) -> int:
    type_, unit = partitioning
    trunc = _TRUNC.get(type_, "TIMESTAMP_TRUNC")
    rows = _query(world, project, f"SELECT COUNT(DISTINCT {trunc}(`{column}`, {unit})) FROM ({select}) AS _rows",
                  params)
    return int(rows[0][0] or 0) if rows else 0


def _query(world: World, project: str, sql: str, params: dict, *, schema: bool = False):
    status, body = world.upstream.bigquery("POST", f"/bigquery/v2/projects/{project}/queries", {
        "query": sql, "useLegacySql": False, "timeoutMs": 600000, **params})
    if status != 200 or body.get("errors"):
        return None  # the emulator cannot run it: let the job itself answer
    if schema:
        return [f["name"] for f in (body.get("schema") or {}).get("fields") or []]
    return [[cell.get("v") for cell in row.get("f", [])] for row in body.get("rows", [])]
