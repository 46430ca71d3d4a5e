"""``dagster definitions validate`` on the real code location (a subprocess, as CI and the UI load it)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGSTER = [sys.executable, "-m", "dagster", "definitions", "validate"]


def run(args: list[str], *, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(REPO)]), **(extra_env or {})}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([*DAGSTER, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_code_location_validates(tmp_path) -> None:
    for module in ("orchestrator.definitions", "localdev.demo_definitions"):  # the project's, the demo's
        done = run(["-m", module], cwd=REPO)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Validation successful" in done.stdout + done.stderr


def test_bad_config_fails_validation_naming_the_file_and_field(tmp_path) -> None:
    project = tmp_path / "bad_project"
    defs = project / "bad_project" / "defs" / "scores"
    defs.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n[tool.dg.project]\nroot_module = "bad_project"\n'
    )
    (project / "bad_project" / "__init__.py").write_text("")
    (project / "bad_project" / "defs" / "__init__.py").write_text("")
    (defs / "defs.yaml").write_text(textwrap.dedent(r"""
        type: orchestrator.components.IntervalGCSImportComponent
        attributes:
          name: scores
          project_id: test-project
          bucket_name: b-ucket
          path_base: p
          file_match: '(?P<interval_timestamp>\d{4}-\d\d-\d\d)\.csv'
          destination_table: t
          raw_dataset_name: raw
          clean_dataset_name: clean
          interval: Daily
          mode: Overwrite
          retention_days: 3
          location: not a location
    """))
    (project / "bad_defs.py").write_text(
        "from pathlib import Path\nfrom orchestrator.definitions import build_definitions\n"
        "defs = build_definitions(project_root=Path(__file__).parent)\n"
    )
    done = run(["-m", "bad_defs"], cwd=project)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "scores/defs.yaml:15:" in output and "'scores'" in output and "field 'location'" in output, output
