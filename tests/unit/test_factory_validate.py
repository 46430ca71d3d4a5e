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
    for demo in ("0", "1"):  # without and with the local demo asset
        done = run(["-m", "orchestrator.definitions"], cwd=REPO, extra_env={"GCS_IMPORT_DEMO": demo})
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Validation successful" in done.stdout + done.stderr


def test_bad_config_fails_validation_naming_the_field(tmp_path) -> None:
    package = tmp_path / "bad_assets"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scores.py").write_text(textwrap.dedent('''
        from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode, interval_gcs_import_asset
        scores = interval_gcs_import_asset(IntervalGCSAsset(
            name="scores", project_id="test-project", bucket_name="b-ucket", path_base="p",
            file_match=r"(?P<interval_timestamp>\\d{4}-\\d\\d-\\d\\d).csv", destination_table="t",
            raw_dataset_name="raw", clean_dataset_name="clean", interval=Interval.Daily,
            mode=SourceMode.Overwrite, retention_days=3, location="not a location",
        ))
    '''))
    (tmp_path / "bad_defs.py").write_text(
        "from orchestrator.definitions import build_definitions\ndefs = build_definitions('bad_assets')\n"
    )
    done = run(["-m", "bad_defs"], cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "bad_assets.scores" in output and "'scores'" in output and "field 'location'" in output
