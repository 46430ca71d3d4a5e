"""The interval GCS import factory (see ``docs/orchestrator.md``).

``interval_gcs_import_asset(IntervalGCSAsset(...))`` returns an :class:`AssetFactoryResponse`;
put it at module level in ``orchestrator/assets/`` and ``orchestrator.definitions`` picks it up.
"""

from orchestrator.factories.common import AssetFactoryResponse, IntervalGCSAsset
from orchestrator.factories.gcs import interval_gcs_import_asset
from worker.core.formats import SourceFormat
from worker.core.spec import DEFAULT_START_DATE, Interval, SourceMode, SpecError

__all__ = [
    "DEFAULT_START_DATE",
    "AssetFactoryResponse",
    "Interval",
    "IntervalGCSAsset",
    "SourceFormat",
    "SourceMode",
    "SpecError",
    "interval_gcs_import_asset",
]
