"""Defect 2: which answers the run's retry budget retries, and how a 403 that is not a permission is reported.

https://cloud.google.com/bigquery/docs/troubleshoot-quotas (rateLimitExceeded: retry with backoff;
quotaExceeded: a longer-term quota), https://cloud.google.com/bigquery/docs/error-messages#errortable
"""

from __future__ import annotations

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from worker.core.errors import ServiceUnreachable, TransientError, WorkerError, explain_bigquery_error
from worker.core.retries import is_rerunnable_job_failure, is_transient

RATE = "Exceeded rate limits: too many table update operations for this table."
QUOTA = "Quota exceeded: Your project exceeded quota for free query bytes scanned."


def _error(cls, reason: str, message: str):
    return cls(message, errors=[{"reason": reason, "message": message, "domain": "global"}])


def test_the_predicate_retries_what_the_client_library_retries():
    assert is_transient(_error(gexc.Forbidden, "rateLimitExceeded", RATE))
    assert is_transient(_error(gexc.BadRequest, "backendError", "An internal error occurred"))
    assert is_transient(auth_exc.TransportError("metadata server unreachable"))
    assert is_transient(gexc.ServiceUnavailable("down"))
    assert not is_transient(_error(gexc.Forbidden, "quotaExceeded", QUOTA))
    assert not is_transient(_error(gexc.Forbidden, "accessDenied", "Access Denied"))
    assert not is_transient(requests.exceptions.SSLError("bad certificate"))


def test_a_job_that_failed_on_a_rate_limit_runs_again_but_an_exhausted_retry_does_not():
    assert is_rerunnable_job_failure(_error(gexc.Forbidden, "rateLimitExceeded", RATE))
    assert not is_rerunnable_job_failure(gexc.RetryError("deadline", _error(gexc.Forbidden, "rateLimitExceeded", RATE)))
    assert not is_rerunnable_job_failure(_error(gexc.Forbidden, "quotaExceeded", QUOTA))


def test_a_rate_limit_is_transient_and_never_called_permission_denied():
    for exc in (_error(gexc.Forbidden, "rateLimitExceeded", RATE),
                gexc.RetryError("deadline exceeded", _error(gexc.Forbidden, "rateLimitExceeded", RATE))):
        error = explain_bigquery_error(exc, table="p.d.t", action="loading")
        assert isinstance(error, TransientError) and not isinstance(error, ServiceUnreachable)
        assert "Permission denied" not in str(error) and "p.d.t" in str(error) and RATE in str(error)
        assert "\n" not in str(error)


def test_quota_exceeded_names_the_quota():
    error = explain_bigquery_error(_error(gexc.Forbidden, "quotaExceeded", QUOTA), table="p.d.t", action="loading")
    assert type(error) is WorkerError
    assert QUOTA in str(error) and "Permission denied" not in str(error) and "\n" not in str(error)


def test_access_denied_is_still_a_permission_problem():
    error = explain_bigquery_error(_error(gexc.Forbidden, "accessDenied", "Access Denied"), table="p.d.t",
                                   action="loading")
    assert "Permission denied" in str(error) and "roles/bigquery.dataEditor" in str(error)
