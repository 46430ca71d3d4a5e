"""Job ids: a reused id answers 409; another principal's job answers 403 to jobs.get."""

from __future__ import annotations

import threading

from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, bigquery_error
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World


class DuplicateJobId(Rule):
    """jobs.insert with the id of a job that exists answers 409 ``duplicate`` (bqemulator accepts it)."""

    name = "bigquery_duplicate_job_id"
    doc = "https://cloud.google.com/bigquery/docs/error-messages#errortable"  # duplicate: 409
    service = Service.BIGQUERY

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        route = exchange.bigquery_route
        if route.call is not BigQueryCall.JOBS_INSERT or not route.job_id:
            return None
        location = (exchange.json.get("jobReference") or {}).get("location")
        if world.jobs.get(route.job_id) is not None or world.upstream.bigquery(
                "GET", f"/bigquery/v2/projects/{route.project}/jobs/{route.job_id}")[0] == 200:
            where = f"{location}." if location else ""
            return bigquery_error(409, "duplicate", f"Already Exists: Job {route.project}:{where}{route.job_id}")
        return None


class ForeignJobs(Rule):
    """jobs.get of a job another principal created answers 403 ``accessDenied`` unless the caller holds
    ``bigquery.jobs.get`` on the project (jobs.list/get: "requires the Can View project role, or ...
    bigquery.jobs.get ... to view jobs of other users"). A test marks job ids as created by someone else: such
    a job exists, so jobs.insert of its id answers 409 ``duplicate`` (whoever created it), then jobs.get 403."""

    name = "bigquery_foreign_jobs"
    doc = "https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/get"
    service = Service.BIGQUERY
    assumed = "the error payload's exact message (Google documents the permission, not the text)"

    def __init__(self) -> None:
        self._foreign: set[str] = set()
        self._lock = threading.Lock()

    def mark_foreign(self, *job_ids: str) -> None:
        with self._lock:
            self._foreign.update(job_ids)

    def reset(self) -> None:
        with self._lock:
            self._foreign.clear()

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        route = exchange.bigquery_route
        if route.job_id not in self._foreign:
            return None
        if route.call is BigQueryCall.JOBS_INSERT:
            location = (exchange.json.get("jobReference") or {}).get("location")
            where = f"{location}." if location else ""
            return bigquery_error(409, "duplicate", f"Already Exists: Job {route.project}:{where}{route.job_id}")
        if route.call not in (BigQueryCall.JOBS_GET, BigQueryCall.JOBS_RESULTS):
            return None
        return bigquery_error(403, "accessDenied",
                              f"Access Denied: Job {route.project}:{route.job_id}: User does not have "
                              f"bigquery.jobs.get permission for job {route.project}:{route.job_id}.")
