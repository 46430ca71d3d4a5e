"""The figure type and the writers of ``docs/benchmarks/results.{json,md}``."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path


class GoalIs(StrEnum):
    MAX = "max"
    MIN = "min"


@dataclass(frozen=True, kw_only=True)
class Figure:
    """One measured figure: ``value`` in ``unit``, with its goal when it has one."""

    id: str
    value: float
    unit: str
    how: str
    goal: float | None = None
    goal_is: GoalIs | None = None

    @property
    def met(self) -> bool | None:
        """Whether the goal is met (``None``: no goal)."""
        if self.goal is None or self.goal_is is None:
            return None
        return self.value <= self.goal if self.goal_is is GoalIs.MAX else self.value >= self.goal


def format_value(value: float) -> str:
    """``value`` for a table: whole numbers with thousands separators, others to 2-3 significant places."""
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    """A one-line description of where the figures were measured."""
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_results(figures: list[Figure], *, out_dir: Path, quick: bool, notes: list[str]) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "commit": _commit(),
        "machine": machine(),
        "mode": "quick" if quick else "full",
        "figures": [{**asdict(f), "goal_is": f.goal_is.value if f.goal_is else None} for f in figures],
    }
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Benchmark results",
        "",
        f"Commit `{payload['commit']}`, {payload['machine']}, {payload['mode']} mode "
        "(`python -m localdev.benchmarks`; every figure of one table was measured in the same run).",
        "",
        "| figure | value | unit | goal | met | how |",
        "|---|---:|---|---|---|---|",
    ]
    for f in figures:
        goal = f"{f.goal_is.value} {format_value(f.goal)}" if f.goal is not None and f.goal_is else ""
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        lines.append(f"| `{f.id}` | {format_value(f.value)} | {f.unit} | {goal} | {met} | {f.how} |")
    if notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    md_path = out_dir / "results.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path
