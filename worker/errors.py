"""Errors the worker raises on purpose: each message names the object, table or field and what to do."""

from __future__ import annotations

from google.api_core import exceptions as gexc


class WorkerError(RuntimeError):
    """A run could not complete. Nothing was deleted and no clean table was left half-written."""


class TransientError(WorkerError):
    """A failure that a later run of the same step is expected to get past (nothing about the input is wrong).

    The orchestrator retries the step (``dg.RetryRequested``) when the worker fails with one;
    its class name is in :data:`worker.contract.TRANSIENT_ERRORS`.
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
    """A WorkerError for a BigQuery client or job error, naming the table."""
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
    from worker.clients import is_dml_concurrency_error

    if is_dml_concurrency_error(exc):
        return TransientError(
            f"BigQuery kept refusing a concurrent update of {table} while {action} (retried with backoff until the "
            f"deadline): {_job_errors(exc)}. Too many runs write this table at once: re-run, or lower the number of "
            "runs of this asset at once."
        )
    return WorkerError(f"BigQuery failed on {table} while {action}: {_job_errors(exc)}")


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
