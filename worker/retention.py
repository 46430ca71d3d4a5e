"""Retention: delete the GCS objects of intervals past ``retention_days`` — only objects the ledger recorded as loaded.

The plan (which objects) is pure, in :mod:`worker.planning`. Deletes go out in
batch requests of up to 100, each with ``if_generation_match`` set to the loaded
generation, so an object re-uploaded after its load is never deleted (the
server refuses with 412 and the object is reported as kept).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud import storage

from worker.errors import WorkerError, explain_gcs_error
from worker.ledger import Ledger
from worker.matching import list_objects
from worker.planning import LoadedObject, RetentionPlan, plan_retention, retention_cutoff
from worker.spec import ImportSpec


@dataclass
class RetentionOutcome:
    plan: RetentionPlan
    dry_run: bool
    deleted: list[LoadedObject] = field(default_factory=list)
    kept_changed: list[LoadedObject] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(obj.size for obj in self.deleted)


def plan_from_services(*, spec: ImportSpec, gcs: storage.Client, ledger: Ledger, as_of: datetime, retry=None) -> RetentionPlan:
    """Read the ledger and the current generations of recorded objects, then plan."""
    cutoff = retention_cutoff(spec, as_of=as_of)
    recorded = ledger.recorded(end=cutoff, include_deleted=False)
    names = {obj.name for obj in recorded}
    # Only recorded names are kept from the listing, so memory follows the ledger, not the bucket.
    current = {obj.name: obj.generation for obj in list_objects(gcs, spec, retry=retry) if obj.name in names}
    return plan_retention(spec, as_of=as_of, recorded=recorded, current_generations=current)


def delete_planned(*, spec: ImportSpec, gcs: storage.Client, plan: RetentionPlan,
                   on_batch: Callable[[int, int], None] | None = None) -> tuple[list[LoadedObject], list[LoadedObject]]:
    """Delete the plan's objects in batches; returns ``(deleted, kept because changed since load)``.

    Raises:
        WorkerError: a delete failed for another reason than "already gone" or "changed".
    """
    bucket = gcs.bucket(spec.bucket_name)
    deleted: list[LoadedObject] = []
    kept: list[LoadedObject] = []
    total = len(plan.to_delete)
    for batch_objects in plan.delete_batches():
        batch = gcs.batch(raise_exception=False)
        try:
            with batch:
                for obj in batch_objects:
                    bucket.delete_blob(obj.name, if_generation_match=obj.generation)
        except gexc.GoogleAPIError as exc:
            raise explain_gcs_error(exc, bucket=spec.bucket_name, action="deleting objects past retention") from exc
        # With raise_exception=False the batch keeps one response per call, in order.
        for obj, response in zip(batch_objects, batch._responses, strict=True):
            status = response.status_code
            if 200 <= status < 300 or status == 404:
                deleted.append(obj)
            elif status == 412:
                kept.append(obj)
            else:
                raise WorkerError(
                    f"Deleting gs://{spec.bucket_name}/{obj.name} (generation {obj.generation}) failed with "
                    f"HTTP {status}: {response.text[:300]}. {len(deleted)} objects were deleted before it; "
                    "re-run retention after fixing the cause (permissions: roles/storage.objectUser)."
                )
        if on_batch:
            on_batch(len(deleted) + len(kept), total)
    return deleted, kept
