"""Deterministic BigQuery job ids: reattach to a job that already ran instead of running it twice.

A job id is ``{base}_a{attempt}``. For each attempt in order the job is inserted; BigQuery answers 409
to an id that exists, and that job is read (``jobs.get``): one that succeeded is reused (a retried worker
does not load twice); one still running is waited on; one that failed is history, so the next attempt
id is tried. An unused id starts a new job (no lookup first: the insert is the lookup). The 409 makes
this safe under concurrent workers too.

Real BigQuery answers that the emulator does not (https://cloud.google.com/bigquery/docs/error-messages):

- a job that FAILED with a transient reason (``rateLimitExceeded``: e.g. more than 5 updates of one table
  in 10 s, https://cloud.google.com/bigquery/quotas#standard_tables; ``backendError``) is history like any
  failed attempt: the next attempt id runs, after an exponential backoff (1 s, 2 s, ... 32 s, the SLA's
  back-off, https://cloud.google.com/bigquery/sla), within the run's retry deadline;
- ``jobs.get`` may answer 404 right after ``jobs.insert`` created the job
  (https://github.com/googleapis/python-bigquery/issues/2134): polled again within the deadline; a job
  still unknown is inserted again under the *same* id (409 when it exists, then it is waited on), never
  under the next one, so attempts stay contiguous and :func:`find_succeeded` never skips one;
- ``jobs.get`` of a job another principal created answers 403 without ``bigquery.jobs.get`` on the project
  (https://cloud.google.com/bigquery/docs/managing-jobs#required_permissions): one line naming the job and
  the grant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import retry as api_retry
from google.cloud import bigquery

from worker.core.errors import WorkerError
from worker.core.retries import RETRYABLE_REASONS, RetryBudget, error_reasons, is_transient

JobT = TypeVar("JobT", bound=bigquery.job._AsyncJob)

#: Failed attempts tolerated for one job base before giving up.
MAX_ATTEMPTS = 20


def find_succeeded(client: bigquery.Client, base: str, *, budget: RetryBudget) -> bigquery.job._AsyncJob | None:
    """The successful attempt of ``base``, if one exists (attempts are tried in order)."""
    for attempt in range(MAX_ATTEMPTS):
        job = _lookup(client, f"{base}_a{attempt}", budget=budget)
        if job is None:
            return None
        if job.state == "DONE" and not job.error_result:
            return job
    return None


def run_or_reattach(client: bigquery.Client, base: str, start: Callable[[str], JobT], *, budget: RetryBudget,
                    reuse_succeeded: bool = True) -> tuple[JobT, bool]:
    """Return ``(finished job, reattached)`` for ``base``; raises the job's error if the new attempt fails.

    With ``reuse_succeeded=False`` an earlier successful attempt is history too (its output is
    known to be gone), so a new attempt runs. A new attempt that fails with a transient reason
    (``rateLimitExceeded``, ``backendError``) is followed by the next one after a backoff, until the
    budget's deadline; then its error is raised.

    Raises:
        WorkerError: an attempt belongs to another principal (403 on ``jobs.get``), or too many attempts failed.
    """
    backoff = _Backoff(budget)
    resubmitted = False
    attempt = 0
    while attempt < MAX_ATTEMPTS:
        job_id = f"{base}_a{attempt}"
        try:
            job = start(job_id)  # inserted first: a 409 says the attempt exists (one round trip less than a lookup)
        except gexc.Conflict:
            # An earlier or concurrent worker ran this attempt: reattach to it (403: another principal's job).
            job = _get_after_conflict(client, job_id, budget=budget)
            if not _finished_ok(job, budget=budget) or not reuse_succeeded:
                attempt += 1  # it failed (or its output is known to be gone): its id is history
                continue
            return job, True
        try:
            wait_for(job, budget=budget)
        except gexc.RetryError as exc:
            if isinstance(exc.cause, gexc.NotFound) and not resubmitted:
                # Accepted, then unknown for the whole deadline: insert it again under the same id (409 when it
                # exists after all, then it is waited on): never two jobs of one attempt, never a gap in the ids.
                resubmitted = True
                continue
            raise
        except gexc.GoogleAPIError as exc:
            if not (job.error_result and error_reasons(exc) & RETRYABLE_REASONS):
                raise
            backoff.wait(exc)  # the job failed on a short-term limit: the next attempt, a little later
            attempt += 1
            continue
        return job, False
    raise WorkerError(f"{MAX_ATTEMPTS} failed attempts of BigQuery job {base}: inspect them with bq show -j {base}_a0, "
                      "fix the cause and re-run.")


def wait_for(job: Any, *, budget: RetryBudget, **result_args: Any) -> Any:
    """``job.result()``: the finished job's result, or the job's failure raised.

    Polling goes on through answers that say nothing about the job itself, for up to the budget's
    deadline of them in a row, with backoff: a 404 right after the insert created the job
    (https://github.com/googleapis/python-bigquery/issues/2134), and a transient answer to a poll
    (``jobs.getQueryResults`` answers a job's own failure with its reason, so the next poll asks
    ``jobs.get`` whether the job failed: then that failure is raised, and the caller runs a new job).

    Raises:
        google.api_core.exceptions.RetryError: still unanswered at the deadline (``cause``: the last answer).
    """
    failing_since: float | None = None
    delay = 0.5
    while True:
        polled = time.monotonic()
        try:
            return job.result(retry=budget.poll_retry, **result_args)
        except gexc.GoogleAPIError as exc:
            if job.error_result or not (isinstance(exc, gexc.NotFound) or is_transient(exc)):
                raise  # the job failed (or the answer is final)
            now = time.monotonic()
            if failing_since is None or now - polled > 60:
                failing_since, delay = polled, 0.5  # a new run of failed polls
            if now + delay - failing_since > budget.deadline_seconds:
                raise gexc.RetryError(f"BigQuery job {job.job_id} could not be polled for {budget.deadline_seconds:g} s "
                                      f"(last answer: {exc.message if hasattr(exc, 'message') else exc})", exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


class _Backoff:
    """Exponential backoff between attempts that failed on a short-term limit: 1, 2, 4, ... 32 s, within the
    budget's deadline (counted from the first such failure); past it, the failure is raised."""

    def __init__(self, budget: RetryBudget) -> None:
        self._deadline = budget.deadline_seconds
        self._since: float | None = None
        self._delay = 1.0

    def wait(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._since is None:
            self._since = now
        if now + self._delay - self._since > self._deadline:
            raise exc
        time.sleep(self._delay)
        self._delay = min(self._delay * 2, 32.0)


def _lookup(client: bigquery.Client, job_id: str, *, budget: RetryBudget) -> bigquery.job._AsyncJob | None:
    """``jobs.get`` of one attempt: None when it does not exist."""
    try:
        return client.get_job(job_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return None
    except gexc.Forbidden as exc:
        raise foreign_job_error(client, job_id, exc) from exc


def foreign_job_error(client: bigquery.Client, job_id: str, exc: Exception) -> WorkerError:
    """The one line for a ``jobs.get`` answered 403: the job belongs to another principal."""
    project = client.project
    said = getattr(exc, "message", None) or str(exc).splitlines()[0]
    return WorkerError(
        f"BigQuery job {project}:{job_id} exists but belongs to another principal (an earlier or concurrent worker "
        "running as another service account started it), and this worker may not read it (jobs.get answered 403), "
        "so it cannot reattach to it instead of running it again: grant this worker's service account "
        f"bigquery.jobs.get on project {project} (e.g. roles/bigquery.resourceViewer), or run every worker of this "
        f"asset as one service account, then re-run. BigQuery said: {said}"
    )


def _finished_ok(job: bigquery.job._AsyncJob, *, budget: RetryBudget) -> bool:
    """Wait for a job someone else started; False when it failed (its id is then history)."""
    if job.state != "DONE":
        try:
            wait_for(job, budget=budget)
        except gexc.GoogleAPIError:
            if not job.error_result:
                raise  # the job did not fail: BigQuery could not be reached
    return not job.error_result


def _get_after_conflict(client: bigquery.Client, job_id: str, *, budget: RetryBudget) -> bigquery.job._AsyncJob:
    """The job that answered 409 for ``job_id``: ``jobs.get`` can briefly answer 404 right after the conflict."""
    # https://cloud.google.com/bigquery/docs/error-messages (409 duplicate: the job already exists)
    not_yet = api_retry.Retry(predicate=api_retry.if_exception_type(gexc.NotFound), initial=0.5, maximum=4.0,
                              timeout=min(30.0, budget.deadline_seconds))
    try:
        return not_yet(lambda: client.get_job(job_id, retry=budget.retry, timeout=budget.request_timeout))()
    except gexc.Forbidden as exc:
        raise foreign_job_error(client, job_id, exc) from exc
