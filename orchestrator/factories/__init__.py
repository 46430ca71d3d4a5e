"""The interval GCS import factory (see ``docs/orchestrator.md``).

``interval_gcs_import_asset(IntervalGCSAsset(...))`` returns an :class:`AssetFactoryResponse`;
put it at module level in ``orchestrator/assets/`` and ``orchestrator.definitions`` picks it up.
"""

from orchestrator.factories.config import IntervalGCSAsset
from orchestrator.factories.import_asset import interval_gcs_import_asset
from orchestrator.factories.response import AssetFactoryResponse
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
