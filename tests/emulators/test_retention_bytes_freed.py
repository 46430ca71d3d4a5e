"""Retention's ``bytes_freed`` on buckets that keep deleted objects: soft delete (Google's default for new
buckets, 7 days; gcp-storage-emulator reports the same policy) and object versioning keep the deleted
bytes billed, so freed is 0 (``bytes_deleted`` says what was deleted); a bucket that keeps nothing frees
them at once; an unreadable bucket policy (no ``storage.buckets.get``) reports freed as unknown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.api_core import exceptions as gexc

from tests.emulators.worker_helpers import day, drop_days, import_window, make_spec, retain
from worker.core.retries import RetryBudget
from worker.reporting import retention_summary_json
from worker.results import BucketRetention, RetentionOutcome
from worker.retention import read_bucket_retention

AS_OF = datetime(2024, 1, 12, 6, tzinfo=UTC)  # retention_days=3: 01-05 and 01-06 are past


def _deleted_by_retention(bucket, gcs_client, bq_client, unique_name):
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    drop_days(bucket, spec, [day(5), day(6)], rows=2)
    import_window(spec, gcs_client, bq_client, day(5), day(7))
    return spec, retain(spec, gcs_client, bq_client, as_of=AS_OF)


def test_soft_delete_keeps_the_bytes_billed_so_nothing_is_freed_yet(bucket, gcs_client, bq_client, unique_name):
    assert gcs_client.get_bucket(bucket.name).soft_delete_policy.retention_duration_seconds == 604800
    _, summary = _deleted_by_retention(bucket, gcs_client, bq_client, unique_name)
    report = retention_summary_json(summary)
    assert report["objects_deleted"] == 2 and report["bytes_deleted"] > 0
    assert report["bytes_freed"] == 0
    assert report["bytes_freed_note"] == "not yet: soft delete keeps them for 7 days"


def test_versioning_keeps_noncurrent_versions(bucket, gcs_client, bq_client, unique_name):
    bucket.versioning_enabled = True
    bucket.soft_delete_policy.retention_duration_seconds = 0
    bucket.patch()
    _, summary = _deleted_by_retention(bucket, gcs_client, bq_client, unique_name)
    assert summary.outcome.bucket == BucketRetention(soft_delete_seconds=0, versioning=True)
    assert summary.outcome.bytes_freed == 0 and summary.outcome.bytes_deleted > 0
    assert "noncurrent versions" in summary.outcome.freed_note


def test_a_bucket_that_keeps_nothing_frees_what_was_deleted(bucket, gcs_client, bq_client, unique_name):
    bucket.soft_delete_policy.retention_duration_seconds = 0
    bucket.patch()
    _, summary = _deleted_by_retention(bucket, gcs_client, bq_client, unique_name)
    if summary.outcome.bucket != BucketRetention():
        pytest.skip(f"the emulator kept another policy on patch: {summary.outcome.bucket}")
    assert summary.outcome.bytes_freed == summary.outcome.bytes_deleted > 0
    assert summary.outcome.freed_note == ""


def test_without_storage_buckets_get_freed_is_unknown(monkeypatch, bucket, gcs_client, unique_name):
    spec = make_spec(bucket.name, unique_name)

    def forbidden(self, *args, **kwargs):
        raise gexc.Forbidden("caller does not have storage.buckets.get access to the Google Cloud Storage bucket")

    monkeypatch.setattr(type(bucket), "reload", forbidden)
    assert read_bucket_retention(spec=spec, gcs=gcs_client, budget=RetryBudget()) is None
    outcome = RetentionOutcome(plan=None, dry_run=False, deleted=[_Loaded(10)], bucket=None)  # type: ignore[arg-type]
    assert outcome.bytes_freed is None and outcome.bytes_deleted == 10
    assert "storage.buckets.get" in outcome.freed_note


class _Loaded:
    def __init__(self, size: int) -> None:
        self.size = size
