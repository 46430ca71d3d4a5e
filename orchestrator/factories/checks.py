"""Asset checks: the worker's own (declared on the asset so its reports land) and Dagster's freshness check."""

from __future__ import annotations

import warnings

import dagster as dg

from orchestrator.factories.partitions import DEFAULT_FRESHNESS_DEADLINES
from worker.core.contract import ALL_CHECKS, CHECK_NO_SKIPPED_FILES, CHECK_NO_UNPARSEABLE_FILES, CHECK_ROWS_LOADED, CHECK_SCHEMA_UNCHANGED
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
