"""The demo's code location: the demo import (``localdev/demo_defs/``) and the shared launcher resource.

    dagster dev -m localdev.demo_definitions      # what `python -m localdev.demo --serve` runs
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster.components import load_defs

import localdev.demo_defs
from orchestrator.definitions import PROJECT_ROOT

DEMO_YAML = Path(localdev.demo_defs.__file__).parent / "demo_passport_scores" / "defs.yaml"


def demo_attributes() -> dict[str, Any]:
    """The demo import's attributes, read from its defs.yaml (the one place they are written)."""
    import yaml

    return yaml.safe_load(DEMO_YAML.read_text())["attributes"]


defs = load_defs(localdev.demo_defs, project_root=PROJECT_ROOT)
