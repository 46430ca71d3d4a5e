"""Retention: delete the GCS objects of intervals past ``retention_days`` — only objects the ledger recorded as loaded.

The plan (which objects) is pure, in :mod:`worker.planning`. Before any delete,
the intervals it deletes from are sealed in the ledger (imports never rebuild a
sealed interval from a listing). Deletes go out in batch requests of up to 100,
each with ``if_generation_match`` set to the loaded generation, so an object
re-uploaded after its load is never deleted (the server refuses with 412 and the
object is reported as kept); transient failures are retried within the run's budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime

import requests
from google.api_core import exceptions as gexc
from google.cloud import storage

from worker.checkpoints import checkpoint
from worker.core.errors import WorkerError, explain_gcs_error
from worker.core.gcs import list_ranges
from worker.core.listing_ranges import ListingRanges, plan_listing_ranges
from worker.core.records import LoadedObject
from worker.core.retries import RetryBudget, is_transient
from worker.core.spec import ImportSpec
from worker.ledger import Ledger
from worker.planning import RetentionPlan, plan_retention, retention_cutoff
from worker.results import BucketRetention, DeleteProgress


def read_bucket_retention(*, spec: ImportSpec, gcs: storage.Client, budget: RetryBudget) -> BucketRetention | None:
    """The bucket's versioning and soft delete policy (one ``buckets.get``, billed to ``billing_project``),
    or None when it cannot be read: the worker's documented grants are object roles, without
    ``storage.buckets.get``, and a metric is no reason to fail a retention run that deleted objects."""
    bucket = spec.gcs_bucket(gcs)
    try:
        bucket.reload(retry=budget.retry, timeout=budget.request_timeout)
    except (gexc.GoogleAPIError, requests.exceptions.RequestException):
        return None
    seconds = bucket.soft_delete_policy.retention_duration_seconds if bucket.soft_delete_policy else None
    return BucketRetention(soft_delete_seconds=int(seconds or 0), versioning=bool(bucket.versioning_enabled))


def plan_from_services(*, spec: ImportSpec, gcs: storage.Client, ledger: Ledger, as_of: datetime,
                       budget: RetryBudget, on_listing: Callable[[ListingRanges], None] | None = None) -> RetentionPlan:
    """Read the ledger and the current generations of recorded objects, then plan.

    Only the key ranges of the recorded intervals are listed when the layout sorts like time and every
    recorded name lies in them (:func:`retention_listing`); ``on_listing`` gets what is listed (for the log).
    """
    cutoff = retention_cutoff(spec, as_of=as_of)
    recorded = ledger.recorded(end=cutoff, include_deleted=False)
    names = {obj.name for obj in recorded}
    current: dict[str, int] = {}
    if names:  # nothing recorded: nothing to delete, nothing to list
        ranges = retention_listing(spec, recorded=recorded)
        if on_listing is not None:
            on_listing(ranges)
        # Only recorded names are kept from the listing, so memory follows the ledger, not the bucket.
        current = {obj.name: obj.generation for obj in list_ranges(gcs, spec, ranges=ranges, retry=budget.retry)
                   if obj.name in names}
    return plan_retention(spec, as_of=as_of, recorded=recorded, current_generations=current)


def retention_listing(spec: ImportSpec, *, recorded: Iterable[LoadedObject]) -> ListingRanges:
    """The key ranges of the recorded objects' intervals, or the whole prefix (with the reason) when the layout
    does not sort like time or a recorded name lies outside them (a name recorded under an earlier
    ``file_match`` or format): a recorded object missing from the listing would count as already gone."""
    recorded = list(recorded)
    ranges = plan_listing_ranges(spec, interval_starts={obj.interval_start for obj in recorded})
    outside = next((obj.name for obj in recorded if not ranges.covers(obj.name)), None)
    if outside is not None:
        return ListingRanges(ranges=None, reason=f"the recorded object {outside!r} lies outside its interval's key range")
    return ranges


def delete_planned(*, spec: ImportSpec, gcs: storage.Client, plan: RetentionPlan, budget: RetryBudget,
                   progress: DeleteProgress, on_batch: Callable[[int, int], None] | None = None) -> None:
    """Delete the plan's objects in batch requests, each delete conditioned on the loaded generation.

    Per sub-response: 2xx deleted, 404 already gone (counted as deleted), 412 changed since load
    (kept). Connection errors, 429 and 5xx — for the whole batch or single sub-responses — are
    retried with backoff until ``budget.deadline_seconds`` (safe: every delete carries
    ``if_generation_match``). ``progress`` collects what happened, also when this raises.

    Raises:
        WorkerError: GCS refused a delete for another reason, or stayed unreachable past the deadline.
    """
    bucket = spec.gcs_bucket(gcs)
    total = len(plan.to_delete)
    for batch_objects in plan.delete_batches():
        pending = list(batch_objects)
        give_up_at = time.monotonic() + budget.deadline_seconds
        delay = 0.5
        while pending:
            retry_later: list[LoadedObject] = []
            try:
                batch = gcs.batch(raise_exception=False)
                with batch:
                    for obj in pending:
                        bucket.delete_blob(obj.name, if_generation_match=obj.generation)
                # With raise_exception=False the batch keeps one response per call, in order.
                answers = list(zip(pending, batch._responses, strict=True))
            except Exception as exc:
                # is_transient: connection errors, 429, 5xx (every delete is conditioned, so sending it again is safe)
                if not is_transient(exc):
                    raise explain_gcs_error(exc, bucket=spec.bucket_name, action="deleting objects past retention") from exc
                answers, retry_later, last = [], pending, f"{type(exc).__name__}: {str(exc)[:200]}"
            for obj, response in answers:
                status = response.status_code
                if 200 <= status < 300 or status == 404:
                    progress.deleted.append(obj)
                elif status == 412:
                    progress.kept.append(obj)
                elif status == 429 or status >= 500:
                    retry_later.append(obj)
                    last = f"HTTP {status}: {response.text[:200]}"
                else:
                    raise WorkerError(
                        f"Deleting gs://{spec.bucket_name}/{obj.name} (generation {obj.generation}) failed with "
                        f"HTTP {status}: {response.text[:300]}. {len(progress.deleted)} objects were deleted before it; "
                        "re-run retention after fixing the cause (permissions: roles/storage.objectUser)."
                    )
            if retry_later and time.monotonic() + delay > give_up_at:
                raise WorkerError(
                    f"GCS kept failing while deleting {len(retry_later)} objects of bucket {spec.bucket_name!r} past "
                    f"retention (retried for {budget.deadline_seconds:.0f}s; last: {last}). "
                    f"{len(progress.deleted)} objects were deleted and are recorded; nothing else was touched. "
                    "Re-run retention when GCS is reachable."
                )
            if retry_later:
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            pending = retry_later
        checkpoint("retention.batch_deleted")
        if on_batch:
            on_batch(len(progress.deleted) + len(progress.kept), total)

