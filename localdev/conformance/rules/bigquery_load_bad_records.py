"""``maxBadRecords`` applies to CSV and JSON only: "This is only supported for CSV and
NEWLINE_DELIMITED_JSON file formats" — BigQuery ignores it for Avro, Parquet and ORC, so a bad
file of those formats fails the load whatever the setting. The rule drops the setting for them."""

from __future__ import annotations

from localdev.conformance.bigquery_writes import JobKind, job_config
from localdev.conformance.exchange import Exchange, Reply, Service
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

_APPLIES_TO = {"CSV", "NEWLINE_DELIMITED_JSON"}


class LoadBadRecords(Rule):
    name = "bigquery_load_bad_records"
    doc = "https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad.FIELDS.max_bad_records"
    service = Service.BIGQUERY

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        config = job_config(exchange, JobKind.LOAD)
        if config is None:
            return None
        if config.get("sourceFormat", "CSV") not in _APPLIES_TO and "maxBadRecords" in config:
            del config["maxBadRecords"]
            exchange.set_json(exchange.json)
        return None
