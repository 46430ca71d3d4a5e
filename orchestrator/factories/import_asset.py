"""``interval_gcs_import_asset``: one partitioned asset per spec, plus its checks, sensors and clean-up job."""

import contextlib
import inspect
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from orchestrator.factories.checks import arrival_check_results, arrival_check_specs, freshness_checks, worker_check_specs
from orchestrator.factories.cleanup import build_clean_up
from orchestrator.factories.config import IntervalGCSAsset
from orchestrator.factories.notifications_sensor import build_notifications_sensor
from orchestrator.factories.partition_metadata import attach_partition_metadata
from orchestrator.factories.partitions import partitions_def_for, window_extras
from orchestrator.factories.response import AssetFactoryResponse
from orchestrator.factories.sensors import build_new_files_sensor
from worker.core.contract import (
    EXTRA_ACTION,
    EXTRA_LOAD_INCOMPLETE,
    EXTRA_SPEC,
    EXTRA_WINDOW_END,
    EXTRA_WINDOW_START,
    META_COLUMN_SCHEMA,
    META_TABLE_NAME,
    META_URI,
    Action,
)
from worker.core.spec import SpecError


class ImportRunConfig(dg.Config):
    """The import asset's run config (``ops.<the asset's op>.config``); every field is optional."""

    load_incomplete: bool = Field(
        default=False,
        description="Load the run's intervals even when the spec's complete_when finds them incomplete (a warning "
                    "gives the reason); by default such an interval is not loaded: it is reported incomplete and "
                    "fails the run.",
    )


def interval_gcs_import_asset(
    config: IntervalGCSAsset, *, code_references: Sequence[dg.LocalFileCodeReference] | None = None
) -> AssetFactoryResponse:
    """Build the import asset for ``config`` and everything around it.

    - asset ``key_prefix/name``: partitioned by ``config.interval`` from ``config.effective_start``;
      a backfill runs ``config.max_partitions_per_run`` partitions per run (``BackfillPolicy.multi_run``;
      ``None``: one run). Its body only launches the worker with the run's partition window and
      returns what the worker reported, each partition with its own interval's figures;
    - an external asset for the GCS source (``key_prefix/name_gcs_files``, kind ``gcs``) upstream
      of it, so the lineage graph reads GCS -> BigQuery;
    - checks: the worker's (declared on the asset; ``rows_loaded`` blocking), a
      time-partition freshness check with its sensor, and with ``max_arrival_to_queryable``
      the WARN check ``arrival_to_queryable`` (reported by the asset itself);
    - ``{name}_new_files_sensor``: runs partitions whose files appeared or changed;
    - ``{name}_gcs_notifications_sensor`` (with ``notifications_subscription``): runs what notifications say changed;
    - ``{name}_clean_up_job`` / ``{name}_clean_up_sensor``: retention in the worker.
    """
    if not isinstance(config, IntervalGCSAsset):
        raise SpecError(
            f"interval_gcs_import_asset takes an IntervalGCSAsset, not {type(config).__name__}: "
            "wrap the fields in IntervalGCSAsset(...)"
        )
    spec = config
    _warn_unescaped_extension_dot(spec)
    key = dg.AssetKey([*(spec.key_prefix or ()), spec.name])
    partitions_def = partitions_def_for(spec)
    asset_kwargs = _asset_kwargs(spec, code_references=_caller_reference() if code_references is None else code_references)
    spec_dict = spec.to_dict()
    # the clean table carries the asset's description unless the spec gives its own
    spec_dict["table_description"] = spec.table_description or str(asset_kwargs["description"])[:16384]
    resource_key = spec.launcher_resource_key
    max_arrival = spec.max_arrival_to_queryable_seconds
    with _asset_kwargs_refused(spec, always=True):
        decorator = dg.asset(
            key=key,
            partitions_def=partitions_def,
            backfill_policy=_backfill_policy(spec),
            check_specs=[*worker_check_specs(key), *arrival_check_specs(key, max_seconds=max_arrival)],
            deps=[gcs_source_key(spec)],
            required_resource_keys={resource_key},
            **asset_kwargs,
        )

    def gcs_asset(context: dg.AssetExecutionContext, config: ImportRunConfig) -> Iterator[Any]:
        window_start, window_end = window_extras(context.partition_time_window)
        launcher = getattr(context.resources, resource_key)
        results = launcher.launch(
            context=context,
            extras={
                EXTRA_SPEC: spec_dict,
                EXTRA_ACTION: Action.IMPORT.value,
                EXTRA_WINDOW_START: window_start,
                EXTRA_WINDOW_END: window_end,
                EXTRA_LOAD_INCOMPLETE: config.load_incomplete,
            },
        )
        yield from attach_partition_metadata(context, results, partitions_def)
        yield from arrival_check_results(results, asset_key=key, max_seconds=max_arrival)

    with _asset_kwargs_refused(spec, always=False):
        gcs_asset = decorator(gcs_asset)

    # after @asset checked the group name: the source asset shares it
    source = gcs_source_spec(spec, group_name=spec.asset_kwargs.get("group_name"))
    clean_up_job, clean_up_sensor = build_clean_up(spec, key, launcher_resource_key=resource_key)
    new_files_sensor = build_new_files_sensor(
        spec, asset_key=key, partitions_def=partitions_def, lookback=spec.sensor_lookback_delta
    )
    checks, freshness_sensor = freshness_checks(spec, gcs_asset)
    notified = [build_notifications_sensor(spec, asset_key=key, partitions_def=partitions_def)
                ] if spec.notifications_subscription else []
    return AssetFactoryResponse(
        assets=[gcs_asset, source],
        sensors=[new_files_sensor, *notified, clean_up_sensor, freshness_sensor],
        jobs=[clean_up_job],
        checks=checks,
    )


def _backfill_policy(spec: IntervalGCSAsset) -> dg.BackfillPolicy:
    """Runs of at most ``max_partitions_per_run`` partitions; one run for any backfill when it is ``None``."""
    if spec.max_partitions_per_run is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=spec.max_partitions_per_run)


def _warn_unescaped_extension_dot(spec: IntervalGCSAsset) -> None:
    """Warn (once per definition load) when ``file_match`` has an unescaped '.' before its extension."""
    escaped = spec.unescaped_extension_dot()
    if escaped:
        warnings.warn(
            f"{spec.spec_label} {spec.name!r}: file_match {spec.file_match!r} has an unescaped '.' before the file "
            f"extension, so it also matches names such as 'scoresXparquet'; write {escaped!r} to match a dot only.",
            UserWarning, stacklevel=3,
        )


def _asset_kwargs(spec: IntervalGCSAsset, *, code_references: Sequence[dg.LocalFileCodeReference]) -> dict[str, Any]:
    """The ``@asset`` keyword arguments of ``spec.asset_kwargs`` with the factory's kinds, a default
    description (source, cadence, clean table, mode) and the definition metadata under the user's."""
    asset_kwargs: dict[str, Any] = {"kinds": {"gcs", "bigquery"}, **spec.asset_kwargs}
    asset_kwargs.setdefault(
        "description",
        f"gs://{spec.bucket_name}/{spec.object_prefix}{spec.file_match} loaded {spec.interval.value.lower()} "
        f"into {spec.clean_table_id} ({spec.mode.value}).",
    )
    asset_kwargs["metadata"] = {
        **definition_metadata(spec, code_references=code_references),
        **(asset_kwargs.get("metadata") or {}),
    }
    return asset_kwargs


@contextlib.contextmanager
def _asset_kwargs_refused(spec: IntervalGCSAsset, *, always: bool) -> Iterator[None]:
    """Run ``@asset`` (silencing its beta warnings); its refusal of an argument is a :class:`SpecError` of
    ``asset_kwargs`` (when ``always`` is false, only if the spec has asset_kwargs: else it is re-raised).

    Raises:
        SpecError: ``@asset`` raised ``TypeError`` or ``DagsterInvalidDefinitionError``, naming ``asset_kwargs``.
    """
    try:
        with warnings.catch_warnings():  # BackfillPolicy is "beta" in 1.13
            warnings.simplefilter("ignore", dg.BetaWarning)
            yield
    except (TypeError, dg.DagsterInvalidDefinitionError) as exc:
        if not always and not spec.asset_kwargs:
            raise
        raise SpecError(f"{spec.spec_label} {spec.name!r}: field 'asset_kwargs' is not accepted by @asset: {exc}",
                        field="asset_kwargs") from exc


def gcs_source_key(spec: IntervalGCSAsset) -> dg.AssetKey:
    """``key_prefix/name_gcs_files``: the key of the import's GCS source."""
    return dg.AssetKey([*(spec.key_prefix or ()), f"{spec.name}_gcs_files"])


def gcs_source_spec(spec: IntervalGCSAsset, *, group_name: str | None = None) -> dg.AssetSpec:
    """The external asset of the files under ``gs://bucket/path_base/`` (materialized by their producer)."""
    uri = f"gs://{spec.bucket_name}/{spec.object_prefix}"
    return dg.AssetSpec(
        key=gcs_source_key(spec),
        description=f"Files matching {spec.file_match!r} under {uri}, dropped {spec.interval.value.lower()} by their producer.",
        kinds={"gcs"},
        group_name=group_name,
        metadata={META_URI: dg.MetadataValue.text(uri)},
    )


def definition_metadata(spec: IntervalGCSAsset, *, code_references: Sequence[dg.LocalFileCodeReference]) -> dict[str, Any]:
    """What the asset page shows before any run: the clean table, the source, the schema when declared."""
    metadata: dict[str, Any] = {
        META_TABLE_NAME: dg.MetadataValue.text(spec.clean_table_id),
        META_URI: dg.MetadataValue.text(f"gs://{spec.bucket_name}/{spec.object_prefix}"),
        "mode": dg.MetadataValue.text(spec.mode.value),
        "retention_days": dg.MetadataValue.int(spec.retention_days),
    }
    if spec.schema:
        metadata[META_COLUMN_SCHEMA] = dg.TableSchema(
            columns=[
                dg.TableColumn(name=f.name, type=f.type,
                               constraints=dg.TableColumnConstraints(nullable=f.mode != "REQUIRED"))
                for f in spec.schema
            ]
        )
    if code_references:
        metadata["dagster/code_references"] = dg.CodeReferencesMetadataValue(code_references=list(code_references))
    return metadata


def _caller_reference() -> list[dg.LocalFileCodeReference]:
    """The file and line of the ``interval_gcs_import_asset(...)`` call, for the asset page's code link."""
    here = __file__
    for frame in inspect.stack(context=0)[1:]:
        if frame.filename != here:
            return [dg.LocalFileCodeReference(file_path=frame.filename, line_number=frame.lineno)]
    return []
