"""The shape issue 18 asked for, kept: a shared core the orchestrator imports alone, short functions, a true layout table.

Measured from the source (AST and the README), so a change that breaks the shape fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
#: The longest function the issue allows in worker/ and orchestrator/.
MAX_FUNCTION_LINES = 80


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _imported_modules(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_the_orchestrator_imports_only_the_shared_core_of_the_worker() -> None:
    outside = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules("orchestrator")
        for name in _imported_modules(path)
        if (name == "worker" or name.startswith("worker.")) and not name.startswith("worker.core")
    }
    assert not outside, sorted(outside)


def test_the_core_imports_nothing_else_of_the_worker_and_no_bigquery_at_module_level() -> None:
    problems = set()
    for path in _modules("worker/core"):
        for name in _imported_modules(path):
            if name.startswith("worker.") and not name.startswith("worker.core"):
                problems.add(f"{path.relative_to(ROOT)} imports {name}")
        for name in _imported_modules(path, top_level_only=True):
            if name.startswith("google.cloud.bigquery"):  # `from google.cloud import bigquery` included
                problems.add(f"{path.relative_to(ROOT)} imports {name} at module level")
    assert not problems, sorted(problems)


def test_no_function_is_longer_than_the_limit() -> None:
    long = []
    for folder in ("worker", "orchestrator"):
        for path in _modules(folder):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_the_readme_layout_table_names_every_module() -> None:
    """Every module and package of worker/ and orchestrator/ appears in the README's layout table by its path."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([A-Za-z0-9_/.]+)`", table))
    missing = []
    for folder in ("worker", "orchestrator"):
        for path in _modules(folder):
            relative = path.relative_to(ROOT)
            if path.name == "__init__.py":
                continue
            if str(relative) not in listed:
                missing.append(str(relative))
    assert not missing, f"add a line for each to README.md's layout table: {missing}"
