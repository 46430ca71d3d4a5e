"""The worker stays free of ``dagster`` (only ``dagster_pipes``), so its image stays small and starts fast."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import worker


def test_no_worker_module_imports_dagster() -> None:
    modules = sorted(f"worker.{m.name}" for m in pkgutil.iter_modules(worker.__path__))
    assert "worker.run" in modules and "worker.__main__" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "import dagster_pipes\n"
        "bad = sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.') or m.startswith('dagster_') "
        "and m != 'dagster_pipes')\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"worker modules pulled in {result.stdout.strip()} {result.stderr[-2000:]}"
