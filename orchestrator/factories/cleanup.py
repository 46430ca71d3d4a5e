"""Clean-up: a job whose op asks the worker to apply retention, and the asset sensor that runs it.

Nothing is deleted in the Dagster process: the op sends action ``retention`` to the
worker, which deletes only objects of intervals it loaded that are older than
``retention_days``.
"""

import dagster as dg

from worker.core.contract import EXTRA_ACTION, EXTRA_AS_OF, EXTRA_DRY_RUN, EXTRA_SPEC, Action
from worker.core.spec import ImportSpec


class CleanUpConfig(dg.Config):
    """Run config of the clean-up op."""

    #: Report what would be deleted; delete nothing.
    dry_run: bool = False
    #: ISO timestamp to count ``retention_days`` back from (default: now, in the worker).
    as_of: str | None = None


def build_clean_up(spec: ImportSpec, asset_key: dg.AssetKey, *, launcher_resource_key: str = "launcher",
                   ) -> tuple[dg.JobDefinition, dg.SensorDefinition]:
    """``{name}_clean_up_job`` and ``{name}_clean_up_sensor`` (STOPPED until turned on)."""

    @dg.op(
        name=f"{spec.name}_retention",
        description=f"Delete GCS objects of loaded intervals older than {spec.retention_days} days (in the worker).",
        tags={"kind": "gcs"},
        required_resource_keys={launcher_resource_key},
    )
    def retention_op(context: dg.OpExecutionContext, config: CleanUpConfig) -> None:
        launcher = getattr(context.resources, launcher_resource_key)
        extras = {EXTRA_SPEC: spec.to_dict(), EXTRA_ACTION: Action.RETENTION.value, EXTRA_DRY_RUN: config.dry_run}
        if config.as_of:
            extras[EXTRA_AS_OF] = config.as_of
        results = launcher.launch(context=context, extras=extras)
        context.log.info(f"retention for {spec.name} finished (dry_run={config.dry_run}); reported {len(results)} results")

    @dg.job(
        name=f"{spec.name}_clean_up_job",
        description=f"Retention for {asset_key.to_user_string()}: keep {spec.retention_days} days of files in GCS.",
    )
    def clean_up_job() -> None:
        retention_op()

    @dg.asset_sensor(
        asset_key=asset_key,
        name=f"{spec.name}_clean_up_sensor",
        job=clean_up_job,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def clean_up_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        # one clean-up per materialization; the asset sensor's cursor advances past this event
        return dg.RunRequest(run_key=f"{spec.name}_clean_up:{asset_event.run_id}:{asset_event.timestamp}")

    return clean_up_job, clean_up_sensor
