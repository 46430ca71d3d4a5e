"""Asset checks: the worker's own (declared on the asset so its reports land), Dagster's freshness check, and the
optional ``arrival_to_queryable`` check (how long a run took from a file's arrival to its rows in the clean table).

The freshness check asks whether the newest partition was materialized by a deadline; it cannot see a file that
arrived early and waited: ``arrival_to_queryable`` bounds that wait, per run, from the worker's per-interval
``arrival_to_queryable_seconds``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from orchestrator.factories.partitions import DEFAULT_FRESHNESS_DEADLINES
from worker.core.contract import (
    ALL_CHECKS,
    CHECK_NO_SKIPPED_FILES,
    CHECK_NO_UNPARSEABLE_FILES,
    CHECK_ROWS_LOADED,
    CHECK_SCHEMA_UNCHANGED,
    META_ARRIVAL_TO_QUERYABLE,
    META_PARTITIONS,
)
from worker.core.spec import ImportSpec

_DESCRIPTIONS = {
    CHECK_ROWS_LOADED: "Every requested interval that has files loaded at least one row (ERROR; blocks the run).",
    CHECK_NO_UNPARSEABLE_FILES: "No object matches file_match with a timestamp that fails to parse (WARN).",
    CHECK_NO_SKIPPED_FILES: "No file was skipped as unreadable (on_bad_file: skip; WARN, the files are listed).",
    CHECK_SCHEMA_UNCHANGED: ("Each loaded interval has the columns of the interval loaded before it, and publishing "
                             "changed no column of the clean table (WARN; the changes are listed as a table)."),
}


def worker_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """One spec per check the worker reports; only ``rows_loaded`` blocks (a failed load fails the run)."""
    return [
        dg.AssetCheckSpec(
            name=name,
            asset=asset_key,
            blocking=name == CHECK_ROWS_LOADED,
            description=_DESCRIPTIONS.get(name),
        )
        for name in ALL_CHECKS
    ]


def freshness_checks(
    spec: ImportSpec, asset: dg.AssetsDefinition
) -> tuple[list[dg.AssetChecksDefinition], dg.SensorDefinition]:
    """Dagster's time-partition freshness check for the newest partition, and the sensor that evaluates it.

    The deadline is :data:`DEFAULT_FRESHNESS_DEADLINES` for the spec's interval (UTC).
    """
    # Dagster 1.13 marks these "superseded" by FreshnessPolicy; they are kept on purpose: a
    # FreshnessPolicy looks at the last materialization of any partition, this check asks for
    # the newest *partition* (the one a late file drop leaves missing). Still supported.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        checks = list(
            dg.build_time_partition_freshness_checks(
                assets=[asset], deadline_cron=DEFAULT_FRESHNESS_DEADLINES[spec.interval], timezone="UTC"
            )
        )
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks, name=f"{spec.name}_freshness_checks_sensor"
        )
    return checks, sensor


#: The check ``max_arrival_to_queryable`` adds (WARN, not blocking: the rows are published either way).
CHECK_ARRIVAL_TO_QUERYABLE = "arrival_to_queryable"


def arrival_check_specs(asset_key: dg.AssetKey, *, max_seconds: float | None) -> list[dg.AssetCheckSpec]:
    """The ``arrival_to_queryable`` check of an asset whose config sets ``max_arrival_to_queryable`` (``max_seconds``;
    None: no check)."""
    if max_seconds is None:
        return []
    return [dg.AssetCheckSpec(
        name=CHECK_ARRIVAL_TO_QUERYABLE, asset=asset_key, blocking=False,
        description=(f"Every interval this run loaded was queryable in the clean table within {max_seconds:g} s of its "
                     "newest file's GCS updated time (arrival_to_queryable_seconds; WARN)."),
    )]


def arrival_check_results(results: Sequence[Any], *, asset_key: dg.AssetKey,
                          max_seconds: float | None) -> list[dg.AssetCheckResult]:
    """The run's ``arrival_to_queryable`` result (:func:`arrival_check_result`), none without a bound."""
    return [] if max_seconds is None else [arrival_check_result(results, asset_key=asset_key, max_seconds=max_seconds)]


def arrival_check_result(results: Sequence[Any], *, asset_key: dg.AssetKey, max_seconds: float) -> dg.AssetCheckResult:
    """The run's ``arrival_to_queryable`` result, from the worker's per-interval figures in ``results`` (the launcher's
    results: :func:`~orchestrator.factories.partition_metadata.attach_partition_metadata` takes the figures out of
    copies only).

    Passes when every interval with an ``arrival_to_queryable_seconds`` is within ``max_seconds``; an interval the
    run did not load and publish has none and is not judged (a run that loaded nothing passes, saying so).
    """
    values: dict[str, float] = {}
    for result in results:
        if isinstance(result, dg.MaterializeResult) and result.metadata:
            raw = result.metadata.get(META_PARTITIONS)
            figures = raw.value if isinstance(raw, dg.JsonMetadataValue) else raw
            if isinstance(figures, Mapping):
                values.update({start: float(fig[META_ARRIVAL_TO_QUERYABLE]) for start, fig in figures.items()
                               if isinstance(fig, Mapping) and isinstance(fig.get(META_ARRIVAL_TO_QUERYABLE), int | float)})
    late = {start: seconds for start, seconds in values.items() if seconds > max_seconds}
    metadata: dict[str, Any] = {
        "max_arrival_to_queryable_seconds": dg.MetadataValue.float(float(max_seconds)),
        "intervals_measured": dg.MetadataValue.int(len(values)),
        "late_intervals": dg.MetadataValue.json(late),
    }
    if values:
        metadata[META_ARRIVAL_TO_QUERYABLE] = dg.MetadataValue.float(max(values.values()))
    else:
        metadata["note"] = dg.MetadataValue.text("no interval was loaded and published by this run: nothing to judge")
    return dg.AssetCheckResult(check_name=CHECK_ARRIVAL_TO_QUERYABLE, asset_key=asset_key, passed=not late,
                               severity=dg.AssetCheckSeverity.WARN, metadata=metadata)
