"""A copy job onto an existing table fails when the source's partitioning or clustering differs.

Google (managing-partitioned-tables#copy_partitioned_tables): copying into an existing partitioned
table needs "the partition specifications for the source and destination tables" to match, for
appends and overwrites alike; a copy only *creates* a destination with the source's layout when the
destination does not exist yet. BigQuery refuses a mismatch with ``invalid`` "Incompatible table
partitioning specification. Expects partitioning specification <destination>, but input partitioning
specification is <source>", where the specification includes the clustering columns (``clustering(a,b)``).
bqemulator copies whatever it is given.
"""

from __future__ import annotations

from localdev.conformance.bigquery_writes import JobKind, job_config
from localdev.conformance.exchange import Exchange, Reply, Service, TableRef, failed_job
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World


class CopyLayout(Rule):
    name = "bigquery_copy_layout"
    doc = "https://cloud.google.com/bigquery/docs/managing-partitioned-tables#copy_partitioned_tables"
    service = Service.BIGQUERY
    assumed = ("the clustering columns are part of the compared specification, for WRITE_TRUNCATE too (Google's "
               "page states the rule for partitioning; its error text prints clustering inside the specification); "
               "copies of single partitions (table$decorator) are not checked")

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        config = job_config(exchange, JobKind.COPY)
        if config is None:
            return None
        if config.get("writeDisposition") not in ("WRITE_APPEND", "WRITE_TRUNCATE"):
            return None  # WRITE_EMPTY (the default) onto an existing table fails on its own
        project = exchange.bigquery_route.project
        sources = [s for s in (config.get("sourceTables") or [config.get("sourceTable")]) if s]
        resources = [config.get("destinationTable") or {}, *sources]
        if any("$" in (r.get("tableId") or "") for r in resources):
            return None
        destination = TableRef.from_resource(resources[0], default_project=project)
        existing = world.upstream.table(destination) if destination else None
        if existing is None:
            return None
        want = layout_spec(existing)
        for source in sources:
            ref = TableRef.from_resource(source, default_project=project)
            table = world.upstream.table(ref) if ref else None
            if table is not None and (have := layout_spec(table)) != want:
                return failed_job(exchange, reason="invalid", message=(
                    f"Incompatible table partitioning specification. Expects partitioning specification {want}, "
                    f"but input partitioning specification is {have}"))
        return None


def layout_spec(table: dict) -> str:
    """A table's partitioning and clustering as BigQuery prints them in the error (``none`` for neither)."""
    parts = []
    if time_partitioning := table.get("timePartitioning"):
        field = f",field:{time_partitioning['field']}" if time_partitioning.get("field") else ""
        parts.append(f"interval(type:{time_partitioning.get('type', 'DAY').lower()}{field})")
    if range_partitioning := table.get("rangePartitioning"):
        bounds = range_partitioning.get("range") or {}
        parts.append(f"range(field:{range_partitioning.get('field')},start:{bounds.get('start')},"
                     f"end:{bounds.get('end')},interval:{bounds.get('interval')})")
    if fields := (table.get("clustering") or {}).get("fields"):
        parts.append(f"clustering({','.join(fields)})")
    return " ".join(parts) or "none"
