"""Deterministic BigQuery job ids: reattach to a job that already ran instead of running it twice.

A job id is ``{base}_a{attempt}``. For each attempt in order: a job that succeeded
is reused (a retried worker does not load twice); a job still running is waited
on; a job that failed is history, so the next attempt id is tried; an unused id
starts a new job. BigQuery answers 409 to a reused id, which makes this safe
under concurrent workers too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.cloud import bigquery

JobT = TypeVar("JobT", bound=bigquery.job._AsyncJob)

#: Failed attempts tolerated for one job base before giving up.
MAX_ATTEMPTS = 20


def find_succeeded(client: bigquery.Client, base: str) -> bigquery.job._AsyncJob | None:
    """The successful attempt of ``base``, if one exists (attempts are tried in order)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            job = client.get_job(f"{base}_a{attempt}")
        except gexc.NotFound:
            return None
        if job.state == "DONE" and not job.error_result:
            return job
    return None


def run_or_reattach(client: bigquery.Client, base: str, start: Callable[[str], JobT], *,
                    reuse_succeeded: bool = True, timeout: float | None = None) -> tuple[JobT, bool]:
    """Return ``(finished job, reattached)`` for ``base``; raises the job's error if the new attempt fails.

    With ``reuse_succeeded=False`` an earlier successful attempt is history too (its output is
    known to be gone), so a new attempt runs.
    """
    for attempt in range(MAX_ATTEMPTS):
        job_id = f"{base}_a{attempt}"
        try:
            job = client.get_job(job_id)
        except gexc.NotFound:
            job = None
        if job is not None:
            if job.state != "DONE":
                job.result(timeout=timeout)
                if job.error_result or not reuse_succeeded:
                    continue
                return job, True
            if job.error_result or not reuse_succeeded:
                continue
            return job, True
        try:
            job = start(job_id)
        except gexc.Conflict:
            job = client.get_job(job_id)  # another worker started it first: wait on theirs
        job.result(timeout=timeout)
        return job, False
    raise RuntimeError(f"{MAX_ATTEMPTS} failed attempts of BigQuery job {base}; inspect them with bq show -j {base}_a0")
