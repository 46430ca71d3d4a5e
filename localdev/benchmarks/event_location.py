"""The code location of the event-latency benchmark (:mod:`localdev.benchmarks.event_latency`).

``dagster-daemon run -m localdev.benchmarks.event_location`` loads it, as ``dagster dev`` would load a
project's: one import built by ``interval_gcs_import_asset`` from the :class:`IntervalGCSAsset` fields in
``$GCS_IMPORT_BENCH_EVENT_CONFIG`` (JSON), with the shared subprocess ``WorkerLauncher``. Loading it without
that variable fails naming it.
"""

from __future__ import annotations

import json
import os

from orchestrator.factories import IntervalGCSAsset, interval_gcs_import_asset
from orchestrator.launchers import WorkerLauncher

CONFIG_ENV = "GCS_IMPORT_BENCH_EVENT_CONFIG"

if CONFIG_ENV not in os.environ:
    raise RuntimeError(f"{CONFIG_ENV} is unset: this code location is started by localdev.benchmarks.event_latency")

_response = interval_gcs_import_asset(IntervalGCSAsset(**json.loads(os.environ[CONFIG_ENV])), code_references=[])
_response.resources["launcher"] = WorkerLauncher()
defs = _response.to_definitions()
