"""The one retry policy of a run, and which Google API errors a later attempt gets past.

Both sides use it: the worker retries every GCS and BigQuery call with :class:`RetryBudget`; the
orchestrator's sensor and the error wording (:mod:`worker.core.errors`) use the same predicates.
Only ``google.api_core``, ``google.auth`` and ``requests``: no BigQuery import.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from google.api_core import retry as api_retry

#: Seconds to keep retrying an unreachable endpoint before failing (overridable per run).
DEFAULT_RETRY_DEADLINE_SECONDS = 120.0


#: Error reasons a later attempt gets past, whatever the HTTP status (BigQuery answers a short-term rate
#: limit with 403 ``rateLimitExceeded``): the reasons google-cloud-bigquery's own predicate retries
#: (``google.cloud.bigquery.retry._should_retry``), which the run's budget replaces.
#: https://cloud.google.com/bigquery/docs/error-messages#errortable
#: https://cloud.google.com/bigquery/docs/troubleshoot-quotas ("rateLimitExceeded ... retry the operation after
#: few seconds. Use exponential backoff"; ``quotaExceeded`` is a longer-term quota and is not retried here)
RETRYABLE_REASONS = frozenset({"rateLimitExceeded", "backendError", "internalError", "badGateway"})


def error_reasons(exc: BaseException) -> set[str]:
    """The ``reason`` of each error a Google API error carries (its payload's ``errors[]``)."""
    return {str(e.get("reason")) for e in (getattr(exc, "errors", None) or []) if isinstance(e, dict) and e.get("reason")}


def is_rate_limited(exc: BaseException) -> bool:
    """A short-term limit (403/429 ``rateLimitExceeded``) that succeeds when tried again after a backoff."""
    return "rateLimitExceeded" in error_reasons(exc)


def is_quota_exceeded(exc: BaseException) -> bool:
    """A longer-term (daily or per-project) quota: retrying within seconds cannot succeed."""
    return "quotaExceeded" in error_reasons(exc)


def is_transient(exc: BaseException) -> bool:
    """Connection errors, 429, 5xx, google-auth transport errors, and any answer with a reason in
    :data:`RETRYABLE_REASONS` (a 403 ``rateLimitExceeded`` too); never an SSL error (a configuration problem)."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if error_reasons(exc) & RETRYABLE_REASONS:
        return True
    return isinstance(exc, (
        ConnectionError,
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.Timeout,
        auth_exc.TransportError,
        gexc.TooManyRequests,
        gexc.InternalServerError,
        gexc.BadGateway,
        gexc.ServiceUnavailable,
        gexc.GatewayTimeout,
    ))


def transient_retry(*, deadline_seconds: float) -> api_retry.Retry:
    """Exponential backoff on :func:`is_transient` errors (connection errors, 429, 5xx, 403
    ``rateLimitExceeded``, ...), giving up after ``deadline_seconds`` (then ``RetryError``)."""
    return api_retry.Retry(predicate=is_transient, initial=0.5, maximum=10.0, multiplier=2.0,
                           timeout=deadline_seconds)


#: Failures of a DML statement that BigQuery documents as transient and the client does not retry:
#: conflicting concurrent mutations of one table and a full DML queue.
#: https://cloud.google.com/bigquery/docs/data-manipulation-language#dml_statement_conflicts
#: https://cloud.google.com/bigquery/quotas#data-manipulation-language-statements
DML_CONCURRENCY_MESSAGES = ("could not serialize access to table", "too many dml statements outstanding")


def is_dml_concurrency_error(exc: BaseException) -> bool:
    """True for the documented concurrent-DML failures, which succeed when the statement is run again."""
    from google.api_core import exceptions as gexc

    if not isinstance(exc, gexc.GoogleAPIError):
        return False
    texts = [str(exc), *(str(e.get("message", "")) for e in (getattr(exc, "errors", None) or []) if isinstance(e, dict))]
    return any(marker in text.lower() for text in texts for marker in DML_CONCURRENCY_MESSAGES)


def is_rerunnable_job_failure(exc: BaseException) -> bool:
    """A query job failure that a new job of the same statement gets past: a concurrent-DML refusal, or a job
    that FAILED with a transient reason (an API call's transient error never gets here: the budget's retry
    retried it, and ends in ``RetryError``)."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.RetryError):
        return False
    return is_dml_concurrency_error(exc) or bool(error_reasons(exc) & RETRYABLE_REASONS)


@dataclass(frozen=True)
class RetryBudget:
    """The one retry policy of a run: every GCS and BigQuery call of the run is retried with it.

    ``deadline_seconds`` bounds how long a call keeps retrying an unreachable endpoint, a 429, a 5xx or
    a 403 ``rateLimitExceeded`` (then the run fails naming the service, as a transient error);
    ``request_timeout`` bounds one HTTP request.
    """

    deadline_seconds: float = DEFAULT_RETRY_DEADLINE_SECONDS

    @property
    def request_timeout(self) -> float:
        return max(5.0, min(60.0, self.deadline_seconds))

    @cached_property
    def retry(self) -> api_retry.Retry:
        return transient_retry(deadline_seconds=self.deadline_seconds)

    @cached_property
    def poll_retry(self) -> api_retry.Retry:
        """For the calls that poll a job (``job.result``): connection errors and bare 5xx only. An answer with a
        reason (``rateLimitExceeded``, ``backendError``) is ambiguous there, since ``jobs.getQueryResults``
        answers a job's own failure that way: :func:`worker.bigquery_jobs.wait_for` asks ``jobs.get`` instead."""
        return api_retry.Retry(predicate=lambda exc: is_transient(exc) and not error_reasons(exc) & RETRYABLE_REASONS,
                               initial=0.5, maximum=10.0, multiplier=2.0, timeout=self.deadline_seconds)

    @cached_property
    def dml_retry(self) -> api_retry.Retry:
        """Re-runs a query job that failed with a documented concurrent-DML error, or that failed with a
        transient reason (``rateLimitExceeded``: a DDL statement over the table update rate; ``backendError``),
        as a new job (new job id each time), with backoff."""
        return api_retry.Retry(predicate=is_rerunnable_job_failure, initial=1.0, maximum=30.0, multiplier=2.0,
                               timeout=self.deadline_seconds)


#: The budget of calls made without a run's own (tests and helpers).
DEFAULT_BUDGET = RetryBudget()
