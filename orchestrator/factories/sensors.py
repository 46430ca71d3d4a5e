"""The new-files sensor: request the partitions whose files appeared or changed in GCS.

It runs in the sensor daemon, so a tick stays light: it lists names and generations
only (``worker.matching.list_objects`` asks for ``items(name,generation,size,updated),
nextPageToken``), reads no object, starts at a ``start_offset`` when names sort by
time, and stops after ``max_objects_per_tick`` names (the next tick resumes there).
The grouping of names into intervals is the worker's own ``match_objects``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from dagster_gcp import GCSResource

from orchestrator.factories.new_files_cursor import NewFilesCursor, fold_tick, plan_listing
from orchestrator.factories.partitions import partition_key_for
from worker.matching import list_objects
from worker.spec import ImportSpec

#: Names listed per tick at most (GCS returns 1,000 per page: 10 list calls).
DEFAULT_MAX_OBJECTS_PER_TICK = 10_000
#: Sortable layouts: a pass starts this many intervals before the newest requested one, so a
#: re-upload into one of the last few intervals is noticed; older re-uploads need a manual run.
DEFAULT_LOOKBACK_INTERVALS = 7
DEFAULT_MINIMUM_INTERVAL_SECONDS = 120
#: Tag on runs this sensor requests (value: the interval's object count and newest generation).
TRIGGER_TAG = "gcs_import/trigger"


def build_new_files_sensor(
    spec: ImportSpec,
    *,
    asset_key: dg.AssetKey,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    max_objects_per_tick: int = DEFAULT_MAX_OBJECTS_PER_TICK,
    lookback_intervals: int = DEFAULT_LOOKBACK_INTERVALS,
    minimum_interval_seconds: int = DEFAULT_MINIMUM_INTERVAL_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """``{name}_new_files_sensor``: one run per new or changed partition.

    The run key is ``{partition}:g{newest generation}:{digest of names and generations}``,
    so a re-upload (a new generation) requests the partition again and an unchanged
    partition is never requested twice.
    """

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
        cursor = NewFilesCursor.from_json(context.cursor)
        plan = plan_listing(spec, cursor, lookback_intervals=lookback_intervals)
        # dagster-gcp's client (Application Default Credentials: on GKE the code server's Workload Identity,
        # read-only on the buckets, see k8s/rbac.yaml; the emulator when STORAGE_EMULATOR_HOST is set).
        client = GCSResource(project=spec.project_id).get_client()
        listed = []
        truncated = False
        for obj in list_objects(client, spec, start_offset=plan.start_offset):
            if plan.skip_through is not None and obj.name <= plan.skip_through:
                continue
            if len(listed) >= max_objects_per_tick:
                truncated = True
                break
            listed.append(obj)
        changes, next_cursor, unparseable = fold_tick(
            spec, cursor, plan, listed, truncated=truncated, now=datetime.now(UTC)
        )
        context.log.info(
            f"listed {len(listed)} names from {plan.start_offset or spec.object_prefix or '/'}"
            f"{' (bound reached; the next tick resumes)' if truncated else ''}; "
            f"{len(changes)} partitions to request"
        )
        if unparseable:
            context.log.warning(f"{len(unparseable)} names match file_match but their timestamp does not parse, "
                                f"e.g. {unparseable[:3]}")
        requests = []
        for change in changes:
            key = partition_key_for(partitions_def, change.interval_start)
            requests.append(
                dg.RunRequest(
                    run_key=f"{key}:g{change.max_generation}:{change.digest}",
                    partition_key=key,
                    asset_selection=[asset_key],
                    tags={TRIGGER_TAG: f"new_files objects={change.objects} generation={change.max_generation}"},
                )
            )
        if not requests:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no new or changed files (listed {len(listed)} names)"),
                cursor=next_cursor.to_json(),
            )
        return dg.SensorResult(run_requests=requests, cursor=next_cursor.to_json())

    return new_files_sensor
