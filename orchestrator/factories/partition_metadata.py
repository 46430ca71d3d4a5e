"""Per-partition figures of a range run: each partition's materialization gets its own interval's numbers.

A Pipes materialization carries no partition key, so Dagster records the worker's one report
for every partition of the run. The worker therefore also sends each interval's figures under
``gcs_import/partitions``; here they are taken out of the report and attached to their own
partition with ``context.add_asset_metadata(..., partition_key=...)``, which overrides the
window-level values of the same keys for that partition only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from orchestrator.factories.partitions import partition_key_for
from worker.core import contract as c
from worker.core.intervals import parse_iso

#: Statuses under which an interval's files were loaded by this run.
_LOADED = ("loaded", "added")


def metadata_by_partition(
    figures: Mapping[str, Mapping[str, Any]], partitions_def: dg.TimeWindowPartitionsDefinition
) -> dict[str, dict[str, Any]]:
    """Partition key -> that interval's metadata (pure: the worker's per-interval figures, re-keyed)."""
    out: dict[str, dict[str, Any]] = {}
    for start, fig in figures.items():
        key = partition_key_for(partitions_def, parse_iso(start))
        loaded = fig.get("status") in _LOADED
        out[key] = {
            c.META_PARTITION_ROW_COUNT: dg.MetadataValue.int(int(fig.get("rows") or 0)),
            "interval_status": dg.MetadataValue.text(str(fig.get("status"))),
            c.META_FILES_MATCHED: dg.MetadataValue.int(int(fig.get("files") or 0)),
            c.META_FILES_LOADED: dg.MetadataValue.int(int(fig.get("files") or 0) if loaded else 0),
            c.META_BYTES_LOADED: dg.MetadataValue.int(int(fig.get("bytes") or 0) if loaded else 0),
            "raw_table": dg.MetadataValue.text(fig.get("raw_table") or "-"),
            "load_jobs": dg.MetadataValue.int(int(fig.get("jobs") or 0)),
        }
        arrival = fig.get(c.META_ARRIVAL_TO_QUERYABLE)
        if isinstance(arrival, int | float):  # only an interval this run loaded and published has one
            out[key][c.META_ARRIVAL_TO_QUERYABLE] = dg.MetadataValue.float(float(arrival))
    return out


def attach_partition_metadata(context: dg.AssetExecutionContext, results: Sequence[Any],
                              partitions_def: dg.TimeWindowPartitionsDefinition) -> list[Any]:
    """``results`` with the per-interval figures moved onto their partitions (see the module docstring)."""
    out: list[Any] = []
    targeted = set(context.partition_keys)
    for result in results:
        if not isinstance(result, dg.MaterializeResult) or not result.metadata:
            out.append(result)
            continue
        metadata = dict(result.metadata)
        raw = metadata.pop(c.META_PARTITIONS, None)
        figures = raw.value if isinstance(raw, dg.JsonMetadataValue) else raw
        if isinstance(figures, Mapping):
            for key, values in metadata_by_partition(figures, partitions_def).items():
                if key in targeted:
                    context.add_asset_metadata(values, partition_key=key)
        out.append(result._replace(metadata=metadata))
    return out
