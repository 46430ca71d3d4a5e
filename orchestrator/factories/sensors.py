"""The new-files sensor: request the partitions whose files appeared or changed in GCS.

It runs in the sensor daemon, so a tick stays light: it sends ``objects.list`` requests only
(names, generations and sizes: ``fields=worker.core.gcs.LIST_FIELDS``, 1,000 names a page),
reads no object, starts at a ``start_offset`` when names sort by time (from the interval
containing the earlier of ``now - sensor_lookback`` and the interval after the newest one
requested, see :func:`~orchestrator.factories.new_files_cursor.plan_listing`), and reads at
most ``max_objects_per_tick`` names: the listing asks GCS for ``max_results`` names, so a tick
makes ceil(bound / 1,000) requests at most and none past the bound; whether more names follow
is the last page's ``nextPageToken`` (the next tick resumes at the last name). The client's
background bucket-metadata fetch (google-cloud-storage 3.x GETs the bucket on its first call
for tracing attributes) is turned off, so a tick sends no bucket GET. The grouping of names
into intervals is the worker's own ``match_objects``.

With ``complete_when`` a changed partition is requested only once the completeness gate finds it complete;
until then it waits in the cursor and is checked again on later ticks, also when nothing new is listed
(``quiet_for`` ends without an event): one narrowed listing of those partitions per tick that has any due.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from orchestrator.factories.config import DEFAULT_SENSOR_LOOKBACK
from orchestrator.factories.interval_completeness import check_completeness
from orchestrator.factories.new_files_cursor import (
    IntervalChange,
    ListingPlan,
    NewFilesCursor,
    fold_tick,
    gate_candidates,
    parse_lookback,
    plan_listing,
    settle_gate,
)
from orchestrator.factories.partitions import partition_run_request
from worker.core.gcs import PAGE_SIZE, list_objects, storage_client
from worker.core.records import ObjectInfo
from worker.core.spec import ImportSpec

#: Names listed per tick at most (GCS returns 1,000 per page: 10 list calls).
DEFAULT_MAX_OBJECTS_PER_TICK = 10_000
#: Sortable layouts: a pass re-lists at least this far back from now, so a re-upload into an interval
#: that began within it is noticed; older re-uploads need a run of that partition.
DEFAULT_LOOKBACK: timedelta = parse_lookback(DEFAULT_SENSOR_LOOKBACK)
DEFAULT_MINIMUM_INTERVAL_SECONDS = 120


def list_for_tick(
    client: Any, spec: ImportSpec, plan: ListingPlan, *, max_objects: int, page_size: int = PAGE_SIZE
) -> tuple[list[ObjectInfo], bool]:
    """This tick's names in name order, and whether more names follow them.

    Lists from ``plan.start_offset`` asking GCS for ``max_objects`` names at most
    (:class:`worker.core.gcs.ObjectListing`: no request past the bound), so a tick makes
    ceil(max_objects / page_size) requests at most. A resumed pass starts at the last name listed
    (``start_offset`` is inclusive): GCS returns that name again, it counts against the bound and is
    dropped (``plan.skip_through``), so a resumed tick yields ``max_objects - 1`` new names at most
    (``max_objects`` is 2 or more, so a pass always moves on).

    Raises:
        WorkerError: the bucket is missing or not readable (names the bucket).
    """
    listing = list_objects(client, spec, start_offset=plan.start_offset, skip_through=plan.skip_through,
                           max_results=max_objects, page_size=page_size)
    return list(listing), listing.truncated


def _gate(context: dg.SensorEvaluationContext, client: Any, spec: ImportSpec, cursor: NewFilesCursor,
          changes: list[IntervalChange], *, now: datetime) -> tuple[list[IntervalChange], NewFilesCursor]:
    """``complete_when``: of this tick's changes and the cursor's due waiting intervals
    (:func:`~orchestrator.factories.new_files_cursor.gate_candidates`), the complete ones (to request), and the
    cursor with the incomplete ones waiting; one narrowed listing of the candidates
    (:func:`~orchestrator.factories.interval_completeness.check_completeness`), none when nothing is due."""
    candidates = gate_candidates(cursor, changes, now=now)
    if not candidates:
        return [], cursor
    verdicts = check_completeness(client, spec, [c.interval_start for c in candidates], now=now)
    complete, next_cursor = settle_gate(cursor, candidates, verdicts)
    waiting = {s: v for s, v in verdicts.items() if not v.complete}
    if waiting:
        shown = "; ".join(f"{s:%Y-%m-%d %H:%M}: {v.reason}" for s, v in sorted(waiting.items())[:5])
        context.log.info(f"{len(waiting)} partition(s) incomplete, waiting (complete_when): {shown}")
    return complete, next_cursor


def build_new_files_sensor(
    spec: ImportSpec,
    *,
    asset_key: dg.AssetKey,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    lookback: timedelta = DEFAULT_LOOKBACK,
    max_objects_per_tick: int = DEFAULT_MAX_OBJECTS_PER_TICK,
    minimum_interval_seconds: int = DEFAULT_MINIMUM_INTERVAL_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """``{name}_new_files_sensor``: one run per new or changed partition.

    The run key is ``{partition}:g{newest generation}:{digest of names and generations}``,
    so a re-upload (a new generation) requests the partition again and an unchanged
    partition is never requested twice. ``lookback`` is the spec's ``sensor_lookback``
    (see :func:`~orchestrator.factories.new_files_cursor.plan_listing`); ``max_objects_per_tick``
    bounds the names one tick lists (2 or more: a resumed tick re-reads the last name).
    """
    if isinstance(max_objects_per_tick, bool) or not isinstance(max_objects_per_tick, int) or max_objects_per_tick < 2:
        raise ValueError(f"max_objects_per_tick is {max_objects_per_tick!r}: give 2 or more "
                         "(a resumed listing re-reads the last name of the tick before)")
    if not isinstance(lookback, timedelta) or lookback < timedelta(0):
        raise ValueError(f"lookback is {lookback!r}: give a timedelta of 0 or more, e.g. timedelta(days=1)")

    @dg.sensor(
        name=f"{spec.name}_new_files_sensor",
        asset_selection=[asset_key],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            f"Requests a run of {asset_key.to_user_string()} for each partition whose files under "
            f"gs://{spec.bucket_name}/{spec.object_prefix} appeared or changed (new generation)."
        ),
    )
    def new_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = datetime.now(UTC)
        cursor = NewFilesCursor.from_json(context.cursor)
        plan = plan_listing(spec, cursor, now=now, lookback=lookback)
        # Application Default Credentials: on GKE the code server's Workload Identity, read-only on the
        # buckets (k8s/rbac.yaml); the emulator when STORAGE_EMULATOR_HOST is set.
        client = storage_client(project_id=spec.project_id)
        listed, truncated = list_for_tick(client, spec, plan, max_objects=max_objects_per_tick)
        changes, next_cursor, unparseable = fold_tick(spec, cursor, plan, listed, truncated=truncated, now=now)
        if spec.complete_when is not None:
            changes, next_cursor = _gate(context, client, spec, next_cursor, changes, now=now)
        context.log.info(
            f"listed {len(listed)} names from {plan.start_offset or spec.object_prefix or '/'}"
            f"{' (bound reached; the next tick resumes)' if truncated else ''}; "
            f"{len(changes)} partitions to request"
        )
        if unparseable:
            context.log.warning(f"{len(unparseable)} names match file_match but their timestamp does not parse, "
                                f"e.g. {unparseable[:3]}")
        requests = [partition_run_request(partitions_def, change.interval_start, asset_key=asset_key,
                                          run_key_suffix=f"g{change.max_generation}:{change.digest}",
                                          trigger=f"new_files objects={change.objects} generation={change.max_generation}")
                    for change in changes]
        if not requests:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no new or changed files (listed {len(listed)} names)" + (
                    f"; {len(next_cursor.waiting)} partition(s) waiting until complete (complete_when)"
                    if next_cursor.waiting else "")),
                cursor=next_cursor.to_json(),
            )
        return dg.SensorResult(run_requests=requests, cursor=next_cursor.to_json())

    return new_files_sensor
