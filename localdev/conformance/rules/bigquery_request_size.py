"""At most 10 MB per BigQuery API request (query parameters included)."""

from __future__ import annotations

from localdev.conformance.exchange import Exchange, Reply, Service, bigquery_error
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

#: "Maximum request size: 10 MB" (https://cloud.google.com/bigquery/quotas#api_request_quotas)
MAX_REQUEST_BYTES = 10 * 1024 * 1024


class RequestSize(Rule):
    name = "bigquery_request_size"
    doc = "https://cloud.google.com/bigquery/quotas#api_request_quotas"
    service = Service.BIGQUERY
    assumed = "the error payload (400 badRequest; Google documents the limit, not the answer)"

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        if len(exchange.body) <= MAX_REQUEST_BYTES:
            return None
        return bigquery_error(400, "badRequest", f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
