"""Dagster components of this project (listed by ``dg list components``)."""

from orchestrator.components.interval_gcs_import import IntervalGCSImportComponent

__all__ = ["IntervalGCSImportComponent"]
