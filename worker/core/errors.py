"""Errors the worker raises on purpose: each message names the object, table or field and what to do."""

from __future__ import annotations

from google.api_core import exceptions as gexc


class WorkerError(RuntimeError):
    """A run could not complete. Nothing was deleted and no clean table was left half-written."""


class TransientError(WorkerError):
    """A failure that a later run of the same step is expected to get past (nothing about the input is wrong).

    The orchestrator retries the step (``dg.RetryRequested``) when the worker fails with one;
    its class name is in :data:`worker.core.contract.TRANSIENT_ERRORS`.
    """


class ServiceUnreachable(TransientError):
    """GCS or BigQuery stayed unreachable (or kept failing with 429/5xx) for the whole retry deadline.

    A run stops at the first one: every later call would wait out the same deadline.
    """


def explain_gcs_error(exc: Exception, *, bucket: str, action: str) -> WorkerError:
    """A WorkerError for a GCS client error, naming the bucket and the fix."""
    if isinstance(exc, gexc.RetryError):
        return ServiceUnreachable(
            f"GCS could not be reached or kept failing while {action} on bucket {bucket!r} (retried with backoff "
            "until the deadline): "
            f"{_first_line(exc)}. Check the network or STORAGE_EMULATOR_HOST, then re-run."
        )
    if isinstance(exc, gexc.NotFound):
        return WorkerError(f"GCS bucket {bucket!r} was not found while {action}: check bucket_name and project_id.")
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return WorkerError(
            f"Permission denied on GCS bucket {bucket!r} while {action}: grant the worker's service account "
            "roles/storage.objectViewer (and roles/storage.objectUser for retention deletes). "
            f"Server said: {_first_line(exc)}"
        )
    return WorkerError(f"GCS request failed on bucket {bucket!r} while {action}: {_first_line(exc)}")


def explain_bigquery_error(exc: Exception, *, table: str, action: str) -> WorkerError:
    """A WorkerError for a BigQuery client or job error, naming the table.

    403 is not always a permission: ``rateLimitExceeded`` is a short-term limit (retried with backoff until
    the run's deadline, then a :class:`TransientError`) and ``quotaExceeded`` a longer-term quota (named, not
    retried within seconds): https://cloud.google.com/bigquery/docs/troubleshoot-quotas
    """
    from worker.core.retries import is_quota_exceeded, is_rate_limited

    cause = exc.cause if isinstance(exc, gexc.RetryError) and exc.cause is not None else exc
    if is_rate_limited(cause):
        return TransientError(
            f"BigQuery kept answering rateLimitExceeded while {action} ({table}; retried with exponential backoff "
            f"until the run's retry deadline): {_quota_text(cause)}. A short-term limit (e.g. 5 updates of one table "
            "per 10 s): re-run, or run fewer imports of this table at once."
        )
    if is_quota_exceeded(cause):
        return WorkerError(
            f"BigQuery quota exceeded while {action} ({table}): {_quota_text(cause)}. This is a longer-term quota "
            "(per day or per project), so it was not retried: re-run after it resets, or request a higher quota "
            "(console: IAM & Admin > Quotas; see https://cloud.google.com/bigquery/docs/troubleshoot-quotas)."
        )
    if isinstance(exc, gexc.RetryError) and isinstance(cause, gexc.NotFound) and "job" in str(exc).lower():
        return TransientError(
            f"BigQuery accepted a job while {action} ({table}) but kept answering 404 for it until the run's retry "
            f"deadline: {_first_line(exc)}. Re-run: the re-run reattaches to the job if it ran."
        )
    if isinstance(exc, gexc.RetryError):
        return ServiceUnreachable(
            f"BigQuery could not be reached or kept failing while {action} ({table}; retried with backoff until "
            "the deadline): "
            f"{_first_line(exc)}. Check the network or BIGQUERY_EMULATOR_HOST, then re-run."
        )
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return WorkerError(
            f"Permission denied on BigQuery table {table} while {action}: grant the worker's service account "
            f"roles/bigquery.dataEditor on the dataset and roles/bigquery.jobUser on the project. "
            f"Server said: {_first_line(exc)}"
        )
    from worker.core.retries import is_dml_concurrency_error

    if is_dml_concurrency_error(exc):
        return TransientError(
            f"BigQuery kept refusing a concurrent update of {table} while {action} (retried with backoff until the "  # nosec B608 # an error message, not SQL
            f"deadline): {_job_errors(exc)}. Too many runs write this table at once: re-run, or lower the number of "
            "runs of this asset at once."
        )
    return WorkerError(f"BigQuery failed on {table} while {action}: {_job_errors(exc)}")


def _quota_text(exc: BaseException) -> str:
    """The message naming the limit or quota (BigQuery: ``Quota exceeded: Your project exceeded quota for ...``)."""
    for err in getattr(exc, "errors", None) or []:
        if isinstance(err, dict) and err.get("reason") in ("rateLimitExceeded", "quotaExceeded") and err.get("message"):
            return str(err["message"]).strip().splitlines()[0]
    return str(getattr(exc, "message", "") or "").strip().splitlines()[0] if getattr(exc, "message", "") else _first_line(exc)


def _job_errors(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or []
    parts = []
    for err in errors[:5]:
        if isinstance(err, dict):
            where = f" [{err['location']}]" if err.get("location") else ""
            parts.append(f"{err.get('message', '').strip()}{where}")
    return "; ".join(p for p in parts if p) or _first_line(exc)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain_unexpected(exc: Exception) -> str:
    """One line for an error no other handler named: credentials first (the common case), then the rest."""
    from google.auth import exceptions as auth_exc

    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return ("no Google credentials found: tried GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default "
                "credentials and the metadata server. Run `gcloud auth application-default login`, set "
                "GOOGLE_APPLICATION_CREDENTIALS to a key file, run on GKE with Workload Identity, or set "
                f"STORAGE_EMULATOR_HOST/BIGQUERY_EMULATOR_HOST for local emulators. ({_first_line(exc)})")
    if isinstance(exc, auth_exc.RefreshError | auth_exc.TransportError):
        return (f"the Google credentials could not be used ({type(exc).__name__}: {_first_line(exc)}): check that "
                "the key or the login is still valid and that oauth2.googleapis.com (or the metadata server) is reachable.")
    if isinstance(exc, OverflowError):
        return f"a date is out of range ({_first_line(exc)}): use dates between 1970 and 9998."
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} (re-run with GCS_IMPORT_DEBUG=1 for the traceback)"
