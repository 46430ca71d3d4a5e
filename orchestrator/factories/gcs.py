"""``interval_gcs_import_asset``: one partitioned asset per spec, plus its checks, sensors and clean-up job."""

import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg

from orchestrator.factories.checks import freshness_checks, worker_check_specs
from orchestrator.factories.cleanup import build_clean_up
from orchestrator.factories.common import AssetFactoryResponse, IntervalGCSAsset
from orchestrator.factories.partitions import partitions_def_for, window_extras
from orchestrator.factories.sensors import build_new_files_sensor
from orchestrator.launcher import WorkerLauncher
from worker.contract import EXTRA_ACTION, EXTRA_SPEC, EXTRA_WINDOW_END, EXTRA_WINDOW_START, Action
from worker.spec import SpecError


def interval_gcs_import_asset(config: IntervalGCSAsset) -> AssetFactoryResponse:
    """Build the import asset for ``config`` and everything around it.

    - asset ``key_prefix/name``: partitioned by ``config.interval`` from ``config.effective_start``,
      one run per backfill (``BackfillPolicy.single_run()``); its body only launches the worker
      with the run's partition window and returns what the worker reported;
    - checks: the worker's (declared on the asset; ``rows_loaded`` blocking) and a
      time-partition freshness check with its sensor;
    - ``{name}_new_files_sensor``: runs partitions whose files appeared or changed;
    - ``{name}_clean_up_job`` / ``{name}_clean_up_sensor``: retention in the worker.
    """
    if not isinstance(config, IntervalGCSAsset):
        raise SpecError(
            f"interval_gcs_import_asset takes an IntervalGCSAsset, not {type(config).__name__}: "
            "wrap the fields in IntervalGCSAsset(...)"
        )
    spec = config
    escaped = spec.unescaped_extension_dot()
    if escaped:
        warnings.warn(
            f"IntervalGCSAsset {spec.name!r}: file_match {spec.file_match!r} has an unescaped '.' before the file "
            f"extension, so it also matches names such as 'scoresXparquet'; write {escaped!r} to match a dot only.",
            UserWarning, stacklevel=2,
        )
    key = dg.AssetKey([*(spec.key_prefix or ()), spec.name])
    partitions_def = partitions_def_for(spec)
    asset_kwargs: dict[str, Any] = {"kinds": {"gcs", "bigquery"}, **spec.asset_kwargs}
    asset_kwargs.setdefault(
        "description",
        f"gs://{spec.bucket_name}/{spec.object_prefix}{spec.file_match} loaded {spec.interval.value.lower()} "
        f"into {spec.clean_table_id} ({spec.mode.value}).",
    )
    spec_dict = spec.to_dict()

    try:
        with warnings.catch_warnings():  # BackfillPolicy is "beta" in 1.13; single_run() is what we want
            warnings.simplefilter("ignore", dg.BetaWarning)
            decorator = dg.asset(
                key=key,
                partitions_def=partitions_def,
                backfill_policy=dg.BackfillPolicy.single_run(),
                check_specs=worker_check_specs(key),
                **asset_kwargs,
            )
    except (TypeError, dg.DagsterInvalidDefinitionError) as exc:
        raise SpecError(f"IntervalGCSAsset {spec.name!r}: field 'asset_kwargs' is not accepted by @asset: {exc}") from exc

    def gcs_asset(context: dg.AssetExecutionContext, launcher: WorkerLauncher) -> Iterator[Any]:
        window_start, window_end = window_extras(context.partition_time_window)
        yield from launcher.launch(
            context=context,
            extras={
                EXTRA_SPEC: spec_dict,
                EXTRA_ACTION: Action.IMPORT.value,
                EXTRA_WINDOW_START: window_start,
                EXTRA_WINDOW_END: window_end,
            },
        )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            gcs_asset = decorator(gcs_asset)
    except (TypeError, dg.DagsterInvalidDefinitionError) as exc:
        if not spec.asset_kwargs:
            raise
        raise SpecError(f"IntervalGCSAsset {spec.name!r}: field 'asset_kwargs' is not accepted by @asset: {exc}") from exc

    clean_up_job, clean_up_sensor = build_clean_up(spec, key)
    new_files_sensor = build_new_files_sensor(spec, asset_key=key, partitions_def=partitions_def)
    checks, freshness_sensor = freshness_checks(spec, gcs_asset)
    return AssetFactoryResponse(
        assets=[gcs_asset],
        sensors=[new_files_sensor, clean_up_sensor, freshness_sensor],
        jobs=[clean_up_job],
        checks=checks,
    )
