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
from google.api_core import retry as api_retry
from google.cloud import bigquery

from worker.clients import RetryBudget
from worker.errors import WorkerError

JobT = TypeVar("JobT", bound=bigquery.job._AsyncJob)

#: Failed attempts tolerated for one job base before giving up.
MAX_ATTEMPTS = 20


def find_succeeded(client: bigquery.Client, base: str, *, budget: RetryBudget) -> bigquery.job._AsyncJob | None:
    """The successful attempt of ``base``, if one exists (attempts are tried in order)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            job = client.get_job(f"{base}_a{attempt}", retry=budget.retry, timeout=budget.request_timeout)
        except gexc.NotFound:
            return None
        if job.state == "DONE" and not job.error_result:
            return job
    return None


def run_or_reattach(client: bigquery.Client, base: str, start: Callable[[str], JobT], *, budget: RetryBudget,
                    reuse_succeeded: bool = True) -> tuple[JobT, bool]:
    """Return ``(finished job, reattached)`` for ``base``; raises the job's error if the new attempt fails.

    With ``reuse_succeeded=False`` an earlier successful attempt is history too (its output is
    known to be gone), so a new attempt runs.
    """
    for attempt in range(MAX_ATTEMPTS):
        job_id = f"{base}_a{attempt}"
        try:
            job = client.get_job(job_id, retry=budget.retry, timeout=budget.request_timeout)
        except gexc.NotFound:
            job = None
        if job is not None:
            if not _finished_ok(job, budget=budget) or not reuse_succeeded:
                continue
            return job, True
        try:
            job = start(job_id)
        except gexc.Conflict:
            job = _get_after_conflict(client, job_id, budget=budget)  # another worker started it first: wait on theirs
            if not _finished_ok(job, budget=budget):
                continue
            return job, True
        job.result(retry=budget.retry)
        return job, False
    raise WorkerError(f"{MAX_ATTEMPTS} failed attempts of BigQuery job {base}: inspect them with bq show -j {base}_a0, "
                      "fix the cause and re-run.")


def _finished_ok(job: bigquery.job._AsyncJob, *, budget: RetryBudget) -> bool:
    """Wait for a job someone else started; False when it failed (its id is then history)."""
    if job.state != "DONE":
        try:
            job.result(retry=budget.retry)
        except gexc.GoogleAPIError:
            if not job.error_result:
                raise  # the job did not fail: BigQuery could not be reached
    return not job.error_result


def _get_after_conflict(client: bigquery.Client, job_id: str, *, budget: RetryBudget) -> bigquery.job._AsyncJob:
    """The job that answered 409 for ``job_id``: ``jobs.get`` can briefly answer 404 right after the conflict."""
    # https://cloud.google.com/bigquery/docs/error-messages (409 duplicate: the job already exists)
    not_yet = api_retry.Retry(predicate=api_retry.if_exception_type(gexc.NotFound), initial=0.5, maximum=4.0,
                              timeout=min(30.0, budget.deadline_seconds))
    return not_yet(lambda: client.get_job(job_id, retry=budget.retry, timeout=budget.request_timeout))()
