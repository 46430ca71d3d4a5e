"""Load job ``sourceUris`` as BigQuery reads them: ``*`` is a wildcard, consecutive slashes collapse.

BigQuery: "Each URI can contain one '*' wildcard character and it must come after the 'bucket' name"
(JobConfigurationLoad.sourceUris, https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad.FIELDS.source_uris);
the wildcard matches any characters, ``/`` included (https://cloud.google.com/bigquery/docs/batch-loading-data#load-wildcards).
And "BigQuery does not support source URIs that include multiple consecutive slashes after the initial
double slash ... BigQuery converts multiple consecutive slashes into a single slash"
(https://cloud.google.com/bigquery/docs/loading-data-cloud-storage#gcs-uri) — such a name reaches a
different object; that holds for the slash after the bucket too (``gs://b//x`` reads ``x``).
bqemulator hands URIs to DuckDB (``*`` does not cross ``/``; ``//`` is a different path). The rule
rewrites the URIs into the explicit objects BigQuery would read, so the emulator loads exactly those,
and fails a load whose URI has more than one ``*``.
"""

from __future__ import annotations

import re
import urllib.parse

from localdev.conformance.bigquery_writes import JobKind, job_config
from localdev.conformance.exchange import Exchange, Reply, Service, failed_job
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World


class LoadUris(Rule):
    name = "bigquery_load_uris"
    doc = "https://cloud.google.com/bigquery/docs/batch-loading-data#load-wildcards"
    service = Service.BIGQUERY
    assumed = ("the failure of a URI with two or more '*' (a failed job, reason invalid) and of a wildcard that "
               "matches nothing (notFound): Google documents the limits, not the answers")

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        config = job_config(exchange, JobKind.LOAD)
        if config is None:
            return None
        uris = config.get("sourceUris") or []
        read: list[str] = []
        for uri in uris:
            bucket, _, name = re.sub(r"/{2,}", "/", uri.removeprefix("gs://")).partition("/")
            if name.count("*") > 1:
                return failed_job(exchange, reason="invalid",
                                  message=f"Invalid source URI {uri}: only one '*' wildcard is allowed per URI")
            if "*" not in name:
                read.append(_literal(bucket, name))
                continue
            names = _matching(world, bucket, name)
            if not names:
                return failed_job(exchange, reason="notFound", message=f"Not found: URI {uri}")
            read.extend(_literal(bucket, n) for n in names)
        if read != uris:
            config["sourceUris"] = read
            exchange.set_json(exchange.json)
        return None


def _matching(world: World, bucket: str, pattern: str) -> list[str]:
    prefix = pattern.split("*", 1)[0]
    regex = re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$", re.S)
    names, token = [], None
    while True:
        query = {"prefix": prefix, "fields": "items(name),nextPageToken"}
        if token:
            query["pageToken"] = token
        status, body = world.upstream.storage("GET", f"/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?"
                                                     + urllib.parse.urlencode(query))
        if status != 200:
            return []
        names += [item["name"] for item in body.get("items", []) if regex.match(item["name"])]
        token = body.get("nextPageToken")
        if not token:
            return names


def _literal(bucket: str, name: str) -> str:
    """A URI that the emulator (DuckDB globbing) reads as exactly this one object."""
    return f"gs://{bucket}/" + re.sub(r"([*?\[])", r"[\1]", name)
