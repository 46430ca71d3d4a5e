"""The YAML component: the same definitions as the Python API, `dg` on the project, bad fields reported."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import pytest
import yaml

from orchestrator.components import IntervalGCSImportComponent
from orchestrator.components.interval_gcs_import import ComponentSpecError
from orchestrator.components.spec_attributes import SPEC_FIELD_NAMES
from orchestrator.definitions import build_definitions
from worker.core.spec import ImportSpec

REPO = Path(__file__).resolve().parents[2]
GITCOIN_YAML = REPO / "orchestrator" / "defs" / "gitcoin_passport_scores" / "defs.yaml"
DG = str(Path(sys.executable).parent / "dg")


def test_component_takes_every_spec_field() -> None:
    assert set(SPEC_FIELD_NAMES) == {f.name for f in dataclasses.fields(ImportSpec)}
    component_fields = {f.name for f in dataclasses.fields(IntervalGCSImportComponent)}
    assert set(SPEC_FIELD_NAMES) <= component_fields


def test_the_spec_attributes_are_derived_from_the_spec_fields() -> None:
    fields = {f.name: f for f in dataclasses.fields(IntervalGCSImportComponent)}
    # an enum is a Literal of its values; its default is the member's value
    assert fields["interval"].type == Literal["Hourly", "Daily", "Weekly", "Monthly"]
    assert fields["format"].default == "CSV" and fields["schema_evolution"].default == "add_columns"
    # a union keeps its plain-data members only
    assert fields["schema"].type == list[dict[str, str]] | None
    assert fields["load_options"].type == dict[str, Any] | None
    assert fields["key_prefix"].type == str | list[str] | None
    # required spec fields stay required in the YAML schema
    required = set(IntervalGCSImportComponent.model().model_json_schema()["required"])
    assert required == {f.name for f in dataclasses.fields(ImportSpec) if f.default is dataclasses.MISSING}


def test_a_spec_error_is_located_at_its_top_level_field(tmp_path) -> None:
    attributes = yaml.safe_load(GITCOIN_YAML.read_text())["attributes"]
    attributes["schema"] = [{"name": "ok", "type": "STRING"}, {"name": "5", "type": "STRING"}]
    path = tmp_path / "defs.yaml"
    path.write_text(yaml.safe_dump({"type": "orchestrator.components.IntervalGCSImportComponent",
                                    "attributes": attributes}, sort_keys=False))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith("schema:"))
    with pytest.raises(ComponentSpecError) as raised:
        IntervalGCSImportComponent(**attributes).build_defs(_FakeContext(tmp_path))
    assert raised.value.field == "schema"
    assert str(raised.value).startswith(f"{path}:{line}: IntervalGCSAsset 'passport_scores': field 'schema[1].name'")


def _summary(defs: dg.Definitions) -> dict:
    """What a user sees of an import's definitions, comparable across the YAML and Python declarations."""
    graph = defs.resolve_asset_graph()
    out: dict = {"sensors": sorted(s.name for s in defs.sensors or []),
                 "jobs": sorted(j.name for j in defs.jobs or []),
                 "checks": sorted(k.to_user_string() for k in graph.asset_check_keys)}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        # where each was declared differs by design (the YAML file vs the module; the component origin)
        metadata = {k: v for k, v in node.metadata.items()
                    if k not in ("dagster/code_references", "dagster/component_origin")}
        out[key.to_user_string()] = {
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "group": node.group_name, "kinds": sorted(node.kinds), "description": node.description,
            "partitions": repr(node.partitions_def), "backfill": repr(node.backfill_policy),
            "metadata": {k: repr(v) for k, v in metadata.items()}, "executable": node.is_executable,
        }
    return out


def test_gitcoin_yaml_and_python_declarations_make_the_same_definitions() -> None:
    from orchestrator.examples.gitcoin_passport_scores import defs as python_defs
    from orchestrator.launchers import WorkerLauncher

    yaml_defs = build_definitions()
    python_defs = dg.Definitions.merge(python_defs, dg.Definitions(resources={"launcher": WorkerLauncher()}))
    assert _summary(yaml_defs) == _summary(python_defs)
    summary = _summary(yaml_defs)
    assert summary["gitcoin/passport_scores"]["deps"] == ["gitcoin/passport_scores_gcs_files"]
    assert summary["gitcoin/passport_scores_gcs_files"]["kinds"] == ["gcs"]
    # and the spec the worker receives is the same
    attributes = yaml.safe_load(GITCOIN_YAML.read_text())["attributes"]
    from orchestrator.examples.gitcoin_passport_scores import gitcoin_passport_scores

    yaml_spec = IntervalGCSImportComponent(**attributes).to_config()
    python_asset = gitcoin_passport_scores.asset
    assert yaml_spec.to_dict()["file_match"] == r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores\.parquet"
    assert python_asset.metadata_by_key[python_asset.key]["dagster/table_name"].value == yaml_spec.clean_table_id


def test_definition_metadata_links_the_yaml_file() -> None:
    graph = build_definitions().resolve_asset_graph()
    node = graph.get(dg.AssetKey(["gitcoin", "passport_scores"]))
    assert node.metadata["dagster/table_name"].value == "opensource-observer.gitcoin.passport_scores"
    references = node.metadata["dagster/code_references"].code_references
    assert references and all(r.file_path.endswith("gitcoin_passport_scores/defs.yaml") for r in references)


def test_a_python_declaration_links_its_own_module() -> None:
    from orchestrator.examples.gitcoin_passport_scores import gitcoin_passport_scores

    asset = gitcoin_passport_scores.asset
    (reference,) = asset.metadata_by_key[asset.key]["dagster/code_references"].code_references
    assert reference.file_path.endswith("examples/gitcoin_passport_scores.py") and reference.line_number > 1


def test_a_launcher_declared_in_yaml_binds_its_own_resource_with_env_templating(monkeypatch) -> None:
    from dagster.components.testing import create_defs_folder_sandbox

    monkeypatch.setenv("GCS_IMPORT_TEST_IMAGE", "registry.example/worker:7")
    attributes = yaml.safe_load(GITCOIN_YAML.read_text())["attributes"]
    attributes["launcher"] = {"kind": "docker", "docker": {"image": "{{ env.GCS_IMPORT_TEST_IMAGE }}"}}
    with create_defs_folder_sandbox() as sandbox:
        sandbox.scaffold_component(
            component_cls=IntervalGCSImportComponent,
            defs_yaml_contents={"type": "orchestrator.components.IntervalGCSImportComponent", "attributes": attributes},
        )
        with sandbox.build_all_defs() as defs:
            launcher = defs.resources["launcher_passport_scores"]
            assert launcher.kind == "docker" and launcher.effective_docker().image == "registry.example/worker:7"
            asset = defs.resolve_assets_def(dg.AssetKey(["gitcoin", "passport_scores"]))
            assert "launcher_passport_scores" in asset.required_resource_keys


def test_a_bad_launcher_in_yaml_names_the_field(monkeypatch) -> None:
    attributes = yaml.safe_load(GITCOIN_YAML.read_text())["attributes"]
    component = IntervalGCSImportComponent(**{**attributes, "launcher": {"kind": "k8s"}})
    with pytest.raises(ComponentSpecError, match=r"field 'launcher'.*pipes_gcs"):
        component.build_defs(_FakeContext(GITCOIN_YAML.parent))


class _FakeContext:
    def __init__(self, path: Path) -> None:
        self.path = path


def _dg(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([DG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(REPO / "orchestrator", project / "orchestrator", ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_dg_list_defs_lists_the_yaml_import_with_its_checks_and_sensors() -> None:
    done = _dg(["list", "defs", "--json"], cwd=REPO)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assets = {a["asset_key"] for a in listed["assets"]}
    assert {"gitcoin/passport_scores", "gitcoin/passport_scores_gcs_files"} <= assets
    checks = {c["key"] for c in listed["asset_checks"]}
    assert "gitcoin/passport_scores:rows_loaded" in checks
    sensors = {s["name"] for s in listed["sensors"]}
    assert "passport_scores_new_files_sensor" in sensors and "passport_scores_clean_up_sensor" in sensors
    assert "passport_scores_clean_up_job" in {j["name"] for j in listed["jobs"]}


def test_dg_check_yaml_reports_a_bad_field_with_file_and_line(tmp_path) -> None:
    project = _project_copy(tmp_path)
    path = project / "orchestrator" / "defs" / "gitcoin_passport_scores" / "defs.yaml"
    path.write_text(path.read_text().replace("  retention_days: 10", "  retention_dayz: 10"))
    done = _dg(["check", "yaml"], cwd=project)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"{path}:" in output and "retention_days" in output, output


def test_dg_scaffold_defs_writes_a_valid_new_import(tmp_path) -> None:
    project = _project_copy(tmp_path)
    done = _dg(["scaffold", "defs", "orchestrator.components.IntervalGCSImportComponent", "orders_export"], cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    attributes = yaml.safe_load((project / "orchestrator" / "defs" / "orders_export" / "defs.yaml").read_text())["attributes"]
    assert attributes["name"] == "orders_export"
    config = IntervalGCSImportComponent(**attributes).to_config()  # the scaffold is a valid spec
    assert config.name == "orders_export"
    checked = _dg(["check", "yaml"], cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_issue_20_fields_read_from_yaml_and_a_bad_gate_is_located(tmp_path) -> None:
    from datetime import timedelta

    attributes = yaml.safe_load(GITCOIN_YAML.read_text())["attributes"]
    attributes.update(
        notifications_subscription="projects/opensource-observer/subscriptions/passport-drops",
        complete_when={"marker_match": r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/_SUCCESS", "quiet_for": "30m"},
        retention_action="archive", archive_bucket="oso-archive", archive_prefix="passport/",
    )
    spec = IntervalGCSImportComponent(**attributes).to_config()
    assert spec.complete_when.quiet_for == timedelta(minutes=30)
    assert spec.archive_target.uri("passport/x") == "gs://oso-archive/passport/passport/x"
    attributes["complete_when"] = {"marker_match": "_SUCCESS"}
    path = tmp_path / "defs.yaml"
    path.write_text(yaml.safe_dump({"type": "orchestrator.components.IntervalGCSImportComponent",
                                    "attributes": attributes}, sort_keys=False))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith("complete_when:"))
    with pytest.raises(ComponentSpecError) as raised:
        IntervalGCSImportComponent(**attributes).build_defs(_FakeContext(tmp_path))
    assert str(raised.value).startswith(f"{path}:{line}: IntervalGCSAsset 'passport_scores': field 'complete_when' "
                                        "marker_match '_SUCCESS' has no named group 'interval_timestamp'")
