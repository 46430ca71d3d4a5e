"""A conformance proxy in front of the local GCS and BigQuery emulators: it answers as Google Cloud
does where the emulators are lenient (rate limits, ETags, preconditions, job ownership, request sizes,
load URI semantics, ...), and injects Google's documented transient answers in chaos mode.

Every test in tests/emulators and tests/faults runs through it (``services.conformance``)."""

from localdev.conformance.chaos import ChaosKind
from localdev.conformance.proxy import ConformanceProxy, Recorded

__all__ = ["ChaosKind", "ConformanceProxy", "Recorded"]
