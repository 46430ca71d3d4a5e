"""``AssetFactoryResponse``: what one call of the import factory made (the seed's return type)."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

__all__ = ["AssetFactoryResponse"]


@dataclass
class AssetFactoryResponse:
    """Everything one factory call made: give all of it to ``Definitions`` (:meth:`to_definitions`).

    ``assets`` holds the import asset first, then the external asset of its GCS source.
    """

    assets: list[dg.AssetsDefinition | dg.AssetSpec]
    sensors: list[dg.SensorDefinition] = field(default_factory=lambda: [])
    jobs: list[dg.JobDefinition] = field(default_factory=lambda: [])
    checks: list[dg.AssetChecksDefinition] = field(default_factory=lambda: [])
    resources: dict[str, object] = field(default_factory=dict)

    @property
    def asset(self) -> dg.AssetsDefinition:
        """The import asset (the first of ``assets``)."""
        return self.assets[0]  # type: ignore[return-value]

    def to_definitions(self) -> dg.Definitions:
        """One ``Definitions`` of everything in the response.

        Dagster's defs-folder loader collects ``Definitions`` objects and module-level assets,
        jobs and sensors, but not this dataclass: a module in ``defs/`` writes
        ``defs = interval_gcs_import_asset(...).to_definitions()``.
        """
        return dg.Definitions(
            assets=list(self.assets), asset_checks=list(self.checks), sensors=list(self.sensors),
            jobs=list(self.jobs), resources=dict(self.resources),
        )
