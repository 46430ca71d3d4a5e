"""The demo's code location: the demo import (``localdev/demo_defs/``) and the shared launcher resource.

    dagster dev -m localdev.demo_definitions      # what `python -m localdev.demo --serve` runs
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster.components import load_defs

import localdev.demo_defs
from orchestrator.definitions import PROJECT_ROOT

DEMO_YAML = Path(localdev.demo_defs.__file__).parent / "demo_passport_scores" / "defs.yaml"
#: The demo's first partition (its defs.yaml reads it): a week before today, so the demo's partitions
#: are recent ones (the UI plots the newest partitions) and few (7, not years of them).
START_DATE_ENV = "GCS_IMPORT_DEMO_START_DATE"
START_DAYS_AGO = 7


def demo_start_date() -> str:
    """``$GCS_IMPORT_DEMO_START_DATE``, set to a week before today (UTC) when unset."""
    return os.environ.setdefault(
        START_DATE_ENV, f"{datetime.now(UTC).date() - timedelta(days=START_DAYS_AGO):%Y-%m-%d}"
    )


def demo_attributes() -> dict[str, Any]:
    """The demo import's attributes, read from its defs.yaml (the one place they are written)."""
    import yaml

    attributes = yaml.safe_load(DEMO_YAML.read_text())["attributes"]
    return {**attributes, "start_date": demo_start_date()}


demo_start_date()
defs = load_defs(localdev.demo_defs, project_root=PROJECT_ROOT)
