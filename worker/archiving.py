"""Archive before delete (``retention_action: archive``): server-side rewrites into the archive bucket, verified,
recorded in the ledger; only verified objects go on to retention's batched deletes.

Each object of the retention plan is rewritten to ``gs://{archive_bucket}/{archive_prefix}{name}``
(https://cloud.google.com/storage/docs/json_api/v1/objects/rewrite) with ``ifSourceGenerationMatch`` = the
loaded generation and ``ifGenerationMatch=0`` (https://cloud.google.com/storage/docs/request-preconditions):
a re-uploaded source is never archived in its place, and an archived copy is never overwritten. A rewrite
that answers ``done: false`` is continued with its ``rewriteToken`` until done (a rewrite into another
storage class or location takes several calls). The rewrites run side by side (:data:`REWRITE_THREADS` at
once): each mostly waits on GCS.

A 412 means the destination exists or the source changed: the destination is read and verified against the
loaded generation (size and CRC32C, :func:`worker.archive_decisions.judge_copy`). So a run killed between a
rewrite and the delete leaves both copies, and the next run verifies the copy and finishes; a copy with other
content is never trusted (the original is kept, the run says so in one line).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

from google.api_core import exceptions as gexc
from google.cloud import storage

from worker.archive_decisions import ArchiveResult, ArchiveVerdict, Fingerprint, judge_copy, untrusted_line
from worker.checkpoints import checkpoint
from worker.core.errors import WorkerError, explain_gcs_error
from worker.core.records import LoadedObject
from worker.core.retention_action import ArchiveTarget
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
from worker.ledger import Ledger
from worker.ledger.archived import mark_archived
from worker.planning import RetentionPlan
from worker.results import ArchiveProgress

#: Rewrites in flight at once: each is one request at a time that mostly waits on GCS; a few side by side
#: overlap those waits without a burst of requests against one bucket.
REWRITE_THREADS = 8

_ACTION = "archiving objects past retention"


def _fingerprint(blob: storage.Blob) -> Fingerprint:
    return Fingerprint(size=int(blob.size or 0), crc32c=blob.crc32c)


@dataclasses.dataclass(frozen=True)
class _Buckets:
    """The drop bucket, the archive bucket (both billed like the spec's listing), and where copies go."""

    source: storage.Bucket
    archive: storage.Bucket
    target: ArchiveTarget


def archive_one(obj: LoadedObject, *, buckets: _Buckets, budget: RetryBudget) -> ArchiveResult:
    """Archive one object at its loaded generation; the result says whether its copy is trusted.

    Reads the source (its generation must still be the loaded one, and its size and CRC32C are what the copy
    must have), rewrites it with both preconditions, continues on ``rewriteToken``, and verifies the copy.

    Raises:
        WorkerError: GCS refused for another reason than a precondition (permissions, a missing archive bucket),
            or stayed unreachable past the run's retry deadline.
    """
    source_uri, target_name = f"gs://{buckets.source.name}/{obj.name}", buckets.target.object_name(obj.name)
    target_uri = buckets.target.uri(obj.name)
    unchanged = ArchiveResult(obj=obj, verdict=ArchiveVerdict.source_changed, target_uri=target_uri)
    try:
        live = buckets.source.get_blob(obj.name, retry=budget.retry, timeout=budget.request_timeout)
        if live is None or int(live.generation) != obj.generation:
            return unchanged  # re-uploaded (unloaded data) or gone: neither archived nor deleted
        source = _fingerprint(live)
        checkpoint("retention.source_read")
        copy = buckets.archive.blob(target_name)
        try:
            _rewrite(copy, buckets.source.blob(obj.name), generation=obj.generation, budget=budget)
            rewritten_now = True
        except gexc.PreconditionFailed:
            # the destination exists (an earlier run's copy?) or the source changed since it was read
            copy = buckets.archive.get_blob(target_name, retry=budget.retry, timeout=budget.request_timeout)
            if copy is None:
                return unchanged
            rewritten_now = False
    except gexc.NotFound as exc:
        if _loaded_generation_gone(obj, buckets=buckets, budget=budget):
            return unchanged  # deleted between its read and its rewrite
        raise WorkerError(f"GCS answered 404 while {_ACTION} ({source_uri} -> {target_uri}): the archive bucket "
                          f"{buckets.archive.name!r} (spec field archive_bucket) does not exist; create it or fix "
                          "archive_bucket, then run retention again (nothing was deleted).") from exc
    except (gexc.Forbidden, gexc.Unauthorized) as exc:
        raise WorkerError(f"Permission denied while {_ACTION} ({source_uri} -> {target_uri}): grant the worker's "
                          f"service account roles/storage.objectCreator and roles/storage.objectViewer on the archive "
                          f"bucket {buckets.archive.name!r} (roles/storage.objectUser on the drop bucket), then run "
                          "retention again (nothing was deleted).") from exc
    except gexc.GoogleAPIError as exc:
        raise explain_gcs_error(exc, bucket=buckets.archive.name,
                                action=f"{_ACTION} ({source_uri} -> {target_uri})") from exc
    verdict = judge_copy(source=source, copy=_fingerprint(copy), rewritten_now=rewritten_now)
    checkpoint("retention.rewritten")
    generation = int(copy.generation) if copy.generation is not None else None
    note = "" if verdict.trusted else untrusted_line(
        obj=obj, source_uri=source_uri, target_uri=target_uri, source=source, copy=_fingerprint(copy),
        copy_generation=generation, verdict=verdict)
    return ArchiveResult(obj=obj, verdict=verdict, target_uri=target_uri, archive_generation=generation, note=note)


def _loaded_generation_gone(obj: LoadedObject, *, buckets: _Buckets, budget: RetryBudget) -> bool:
    """The drop bucket no longer holds the loaded generation of ``obj`` (deleted or re-uploaded)."""
    live = buckets.source.get_blob(obj.name, retry=budget.retry, timeout=budget.request_timeout)
    return live is None or int(live.generation) != obj.generation


def _rewrite(copy: storage.Blob, source: storage.Blob, *, generation: int, budget: RetryBudget) -> None:
    """One server-side rewrite to completion: ``done: false`` answers are continued with their token.

    Retrying a call is safe: both preconditions hold on every call, and a rewrite whose answer was lost makes
    the retry answer 412, which the caller resolves by verifying the copy."""
    token: str | None = None
    while True:
        token, _, _ = copy.rewrite(source, token=token, if_generation_match=0,
                                   if_source_generation_match=generation, retry=budget.retry,
                                   timeout=max(budget.request_timeout, 30.0))  # the reference: at least 30 s
        if token is None:
            return


def archive_planned(*, spec: ImportSpec, gcs: storage.Client, plan: RetentionPlan, budget: RetryBudget,
                    progress: ArchiveProgress, on_result: Callable[[ArchiveResult], None] | None = None) -> None:
    """Archive every object of ``plan.to_delete`` side by side; ``progress`` collects each result, also when
    this raises. Objects whose rewrite failed are neither in ``progress`` nor deleted.

    Raises:
        WorkerError: the first object that failed (after every other object finished).
    """
    target = spec.archive_target
    if target is None:
        raise ValueError(f"{spec.name!r} deletes without archiving (retention_action: delete)")
    buckets = _Buckets(source=spec.gcs_bucket(gcs), archive=gcs.bucket(target.bucket, user_project=spec.billing_project),
                       target=target)
    failed: WorkerError | None = None
    with ThreadPoolExecutor(max_workers=REWRITE_THREADS, thread_name_prefix="archive") as pool:
        futures = [pool.submit(archive_one, obj, buckets=buckets, budget=budget) for obj in plan.to_delete]
        for future in as_completed(futures):
            try:
                result = future.result()
            except WorkerError as exc:
                failed = failed or exc
                continue
            progress.add(result)
            if on_result is not None:
                on_result(result)
    if failed is not None:
        raise failed


def archive_before_delete(*, spec: ImportSpec, gcs: storage.Client, ledger: Ledger, plan: RetentionPlan,
                          budget: RetryBudget, progress: ArchiveProgress,
                          on_result: Callable[[ArchiveResult], None] | None = None) -> RetentionPlan:
    """Archive the plan's objects and record the verified copies in the ledger (also when archiving failed
    part-way); returns the plan narrowed to the objects whose copy is verified, in plan order: only they may
    be deleted.

    Raises:
        WorkerError: an object could not be archived (the verified ones are recorded; nothing is deleted by
            this run, the next one verifies the copies and finishes).
    """
    try:
        archive_planned(spec=spec, gcs=gcs, plan=plan, budget=budget, progress=progress, on_result=on_result)
    finally:
        mark_archived(ledger, progress.trusted)
    checkpoint("retention.archived")
    verified = {(r.obj.name, r.obj.generation) for r in progress.trusted}
    return dataclasses.replace(plan, to_delete=tuple(o for o in plan.to_delete if (o.name, o.generation) in verified))
