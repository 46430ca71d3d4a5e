"""Named points between the phases of a run, where a fault test can stop the worker.

Production code calls :func:`checkpoint` at each phase boundary (after listing, after each
load job, after the copy, after publishing, after the ledger write, between retention's
delete batches; when retention archives: ``retention.source_read`` before an object's rewrite,
``retention.rewritten`` after its copy is verified, ``retention.archived`` once the copies are
recorded and before any delete). It does nothing unless a test harness installed a hook with
:func:`set_hook` (``tests/faults`` kills the worker there, or runs a competing worker),
so the fault tests stop the real code at exact points without a test-only code path.
"""

from __future__ import annotations

from collections.abc import Callable

_hook: Callable[[str], None] | None = None


def checkpoint(name: str) -> None:
    """Mark that the run reached ``name``; the installed hook (if any) runs here."""
    if _hook is not None:
        _hook(name)


def set_hook(hook: Callable[[str], None] | None) -> None:
    """Install (or with None remove) the hook called at every checkpoint."""
    global _hook
    _hook = hook
