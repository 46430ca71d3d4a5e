"""A WRITE_TRUNCATE copy replaces the destination's data *and schema* with the source's.

bqemulator answers 500 to a WRITE_TRUNCATE copy whose source has other columns (and leaves the
destination empty). Job configuration ``copy.writeDisposition`` WRITE_TRUNCATE: "overwrites the table
data and uses the schema from the source table". The rule drops the destination first when the
columns differ, which is what BigQuery's copy amounts to.
"""

from __future__ import annotations

from localdev.conformance.bigquery_writes import JobKind, job_config
from localdev.conformance.exchange import Exchange, Reply, Service, TableRef
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World


class TruncatingCopyReplacesSchema(Rule):
    name = "bigquery_truncating_copy_replaces_schema"
    doc = "https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationTableCopy"
    service = Service.BIGQUERY

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        config = job_config(exchange, JobKind.COPY)
        if config is None or config.get("writeDisposition") != "WRITE_TRUNCATE":
            return None
        project = exchange.bigquery_route.project
        sources = config.get("sourceTables") or [config.get("sourceTable")]
        destination = TableRef.from_resource(config.get("destinationTable"), default_project=project)
        source = TableRef.from_resource(sources[0], default_project=project) if sources and sources[0] else None
        if destination is None or source is None:
            return None
        before, after = world.upstream.table(destination), world.upstream.table(source)
        if before is None or after is None:
            return None
        if _columns(before) != _columns(after):
            world.upstream.bigquery("DELETE", destination.path)
        return None


def _columns(table: dict) -> list[tuple[str, str]]:
    return [(f["name"], f.get("type", "")) for f in (table.get("schema") or {}).get("fields") or []]
