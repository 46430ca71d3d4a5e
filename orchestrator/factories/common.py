"""The factory's configuration and its return type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from worker.spec import ImportSpec

#: ``asset_kwargs`` keys the factory sets itself; passing them would silently fight the spec.
RESERVED_ASSET_KWARGS = frozenset(
    {"name", "key", "key_prefix", "partitions_def", "backfill_policy", "check_specs", "required_resource_keys",
     "compute_fn", "ins", "io_manager_key", "io_manager_def"}
)


@dataclass
class AssetFactoryResponse:
    """Everything one factory call made: give all of it to ``Definitions``."""

    assets: list[dg.AssetsDefinition]
    sensors: list[dg.SensorDefinition] = field(default_factory=lambda: [])
    jobs: list[dg.JobDefinition] = field(default_factory=lambda: [])
    checks: list[dg.AssetChecksDefinition] = field(default_factory=lambda: [])


@dataclass(kw_only=True, frozen=True)
class IntervalGCSAsset(ImportSpec):
    """An :class:`~worker.spec.ImportSpec` plus what only Dagster needs.

    ``asset_kwargs`` go to ``@asset`` unchanged (``group_name``, ``owners``, ``tags``,
    ``description``, ``kinds``, ``metadata``, ...); the keys the factory derives from
    the spec (name, key_prefix, partitions_def, ...) are refused. They never reach
    the worker: :meth:`ImportSpec.to_dict` sends only the spec's own fields.
    """

    asset_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.asset_kwargs, dict):
            self._fail("asset_kwargs", f"is {self.asset_kwargs!r}", "give a dict of @asset keyword arguments")
        clash = sorted(RESERVED_ASSET_KWARGS & set(self.asset_kwargs))
        if clash:
            self._fail(
                "asset_kwargs", f"sets {clash}",
                "leave these out: the factory derives them from the spec (use name/key_prefix/interval instead)",
            )
