"""What the factory makes, and how definitions loading reports bad config and clashes."""

from __future__ import annotations

import itertools
from pathlib import Path

import dagster as dg
import pytest

from orchestrator.definitions import DefinitionsLoadError, build_definitions
from orchestrator.factories import (
    AssetFactoryResponse,
    Interval,
    IntervalGCSAsset,
    SourceMode,
    SpecError,
    interval_gcs_import_asset,
)
from orchestrator.launchers.from_env import LauncherConfigError, launcher_from_env
from worker.core.contract import ALL_CHECKS, CHECK_ROWS_LOADED

SEED = dict(
    key_prefix="gitcoin", name="passport_scores", project_id="opensource-observer",
    bucket_name="oso-dataset-transfer-bucket", path_base="passport",
    file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.parquet", destination_table="passport_scores",
    raw_dataset_name="oso_raw_sources", clean_dataset_name="gitcoin", interval=Interval.Daily,
    mode=SourceMode.Overwrite, retention_days=10, format="PARQUET",
)


def test_seed_example_makes_asset_checks_sensors_and_job() -> None:
    response = interval_gcs_import_asset(IntervalGCSAsset(**SEED))
    assert isinstance(response, AssetFactoryResponse)
    asset, source = response.assets
    assert asset.key == dg.AssetKey(["gitcoin", "passport_scores"])
    assert source.key == dg.AssetKey(["gitcoin", "passport_scores_gcs_files"]) and source.kinds == {"gcs"}
    assert set(asset.asset_deps[asset.key]) == {source.key}  # lineage: GCS -> BigQuery
    assert isinstance(asset.partitions_def, dg.DailyPartitionsDefinition)
    assert asset.partitions_def.get_first_partition_key() == "2024-01-01"
    assert asset.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=30)
    specs = {spec.name: spec for spec in asset.check_specs}
    assert set(specs) == set(ALL_CHECKS)
    assert {name for name, spec in specs.items() if spec.blocking} == {CHECK_ROWS_LOADED}
    assert {s.name for s in response.sensors} == {
        "passport_scores_new_files_sensor", "passport_scores_clean_up_sensor", "passport_scores_freshness_checks_sensor",
    }
    assert [j.name for j in response.jobs] == ["passport_scores_clean_up_job"]
    sensors = {s.name: s for s in response.sensors}
    assert sensors["passport_scores_clean_up_sensor"].default_status == dg.DefaultSensorStatus.STOPPED
    assert sensors["passport_scores_new_files_sensor"].default_status == dg.DefaultSensorStatus.STOPPED
    (checks,) = response.checks
    assert {key.asset_key for key in checks.check_keys} == {asset.key}
    assert "launcher" in asset.required_resource_keys


def test_asset_kwargs_pass_through() -> None:
    response = interval_gcs_import_asset(IntervalGCSAsset(**SEED, asset_kwargs={
        "group_name": "gitcoin", "owners": ["team:data"], "tags": {"source": "gitcoin"}, "description": "Scores.",
    }))
    spec = next(iter(response.assets[0].specs))
    assert spec.group_name == "gitcoin"
    assert spec.owners == ["team:data"]
    assert spec.tags["source"] == "gitcoin"
    assert spec.description == "Scores."
    assert "gcs" in spec.kinds


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"bucket_name": "Not_A_Bucket"}, "bucket_name"),
        ({"interval": "Fortnightly"}, "interval"),
        ({"file_match": r"\d+/scores.parquet"}, "file_match"),
        ({"retention_days": -1}, "retention_days"),
        ({"asset_kwargs": {"partitions_def": None}}, "asset_kwargs"),
        ({"asset_kwargs": {"no_such_argument": 1}}, "asset_kwargs"),
        ({"asset_kwargs": {"group_name": "has spaces!"}}, "asset_kwargs"),
    ],
)
def test_bad_config_names_asset_and_field(overrides, field) -> None:
    with pytest.raises(SpecError) as raised:
        interval_gcs_import_asset(IntervalGCSAsset(**{**SEED, **overrides}))
    assert f"'{field}'" in str(raised.value)
    assert "passport_scores" in str(raised.value)


_projects = itertools.count()
HEADER = "from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode, interval_gcs_import_asset\n"
RESOURCES = (
    "import dagster as dg\nfrom orchestrator.launchers import WorkerLauncher\n"
    "@dg.definitions\ndef resources():\n    return dg.Definitions(resources={'launcher': WorkerLauncher()})\n"
)


def write_project(root: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dg project ``root/pN`` whose defs folder holds ``files`` (relative path -> text) and the resources."""
    name = f"fake_project_{next(_projects)}"
    project = root / name
    defs = project / name / "defs"
    defs.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        f'[tool.dg]\ndirectory_type = "project"\n[tool.dg.project]\nroot_module = "{name}"\ndefs_module = "{name}.defs"\n'
    )
    (project / name / "__init__.py").write_text("")
    (defs / "__init__.py").write_text("")
    (defs / "resources.py").write_text(RESOURCES)
    for relative, text in files.items():
        path = defs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(project))
    return project


def python_module(name: str, key_prefix: str, *, to_definitions: bool = True, **overrides) -> str:
    fields = {**SEED, "name": name, "key_prefix": key_prefix, **overrides}
    fields = {k: v.value if hasattr(v, "value") else v for k, v in fields.items()}  # enums as their names
    args = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    text = HEADER + f"response = interval_gcs_import_asset(IntervalGCSAsset({args}))\n"
    return text + ("defs = response.to_definitions()\n" if to_definitions else "")


def yaml_component(name: str, key_prefix: str, **overrides) -> str:
    import yaml

    fields = {**SEED, "name": name, "key_prefix": key_prefix, **overrides}
    fields = {k: v.value if hasattr(v, "value") else v for k, v in fields.items()}
    return yaml.safe_dump({"type": "orchestrator.components.IntervalGCSImportComponent", "attributes": fields})


def _keys(defs: dg.Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_every_yaml_component_and_python_module_is_picked_up(tmp_path, monkeypatch) -> None:
    project = write_project(tmp_path, {
        "one/defs.yaml": yaml_component("scores_a", "a"),
        "two.py": python_module("scores_b", "b"),
        # a module with a Definitions object contributes only that object (Dagster's rule), so a plain
        # asset beside the imports lives in a module of its own
        "three.py": "import dagster as dg\n@dg.asset\ndef plain():\n    return 1\n",
    }, monkeypatch)
    defs = build_definitions(project_root=project)
    assert _keys(defs) == {"a/scores_a", "a/scores_a_gcs_files", "b/scores_b", "b/scores_b_gcs_files", "plain"}
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"scores_a_clean_up_job", "scores_b_clean_up_job"} <= jobs
    sensors = {s.name for s in defs.sensors}
    for name in ("scores_a", "scores_b"):
        assert {f"{name}_new_files_sensor", f"{name}_clean_up_sensor", f"{name}_freshness_checks_sensor"} <= sensors
    checks = {key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}
    assert {f"a/scores_a:{c}" for c in ALL_CHECKS} <= checks and {f"b/scores_b:{c}" for c in ALL_CHECKS} <= checks


def test_a_factory_response_without_definitions_is_an_error_not_dropped(tmp_path, monkeypatch) -> None:
    project = write_project(tmp_path, {"one.py": python_module("scores", "a", to_definitions=False)}, monkeypatch)
    with pytest.raises(DefinitionsLoadError, match=r"one\.response is an AssetFactoryResponse.*defs = response\.to_definitions\(\)"):
        build_definitions(project_root=project)


def test_same_asset_key_twice_fails_naming_both_files(tmp_path, monkeypatch) -> None:
    project = write_project(tmp_path, {"one/defs.yaml": yaml_component("scores", "a"),
                                       "two/defs.yaml": yaml_component("scores", "a")}, monkeypatch)
    with pytest.raises(DefinitionsLoadError) as raised:
        build_definitions(project_root=project)
    text = str(raised.value)
    assert "asset key 'a/scores'" in text and "one/defs.yaml" in text and "two/defs.yaml" in text


def test_same_name_under_two_prefixes_clashes(tmp_path, monkeypatch) -> None:
    project = write_project(tmp_path, {"one/defs.yaml": yaml_component("scores", "a"),
                                       "two/defs.yaml": yaml_component("scores", "b")}, monkeypatch)
    with pytest.raises(DefinitionsLoadError) as raised:
        build_definitions(project_root=project)
    assert "name 'scores'" in str(raised.value) and "names must be unique" in str(raised.value)


def test_bad_spec_in_yaml_names_file_line_asset_and_field(tmp_path, monkeypatch) -> None:
    project = write_project(tmp_path, {"broken/defs.yaml": yaml_component("scores", "a", retention_days=-2)}, monkeypatch)
    with pytest.raises(Exception) as raised:  # Dagster wraps it in its ComponentTreeException
        build_definitions(project_root=project)
    error = raised.value
    while error.__cause__ is not None and "defs.yaml:" not in str(error):
        error = error.__cause__
    text = str(error)
    yaml_lines = (project / project.name / "defs" / "broken" / "defs.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(yaml_lines, 1) if t.strip().startswith("retention_days:"))
    assert f"broken/defs.yaml:{line}:" in text and "'scores'" in text and "'retention_days'" in text, text


def test_bad_spec_in_a_python_module_names_asset_and_field(tmp_path, monkeypatch) -> None:
    project = write_project(tmp_path, {"broken.py": python_module("scores", "a", retention_days="ten")}, monkeypatch)
    with pytest.raises(DefinitionsLoadError) as raised:
        build_definitions(project_root=project)
    text = str(raised.value)
    assert "broken.py:" in text and "'scores'" in text and "'retention_days'" in text, text


def test_launcher_from_env() -> None:
    assert launcher_from_env({}).kind == "subprocess"
    launcher = launcher_from_env({"GCS_IMPORT_LAUNCHER": "docker", "GCS_IMPORT_WORKER_PYTHON": "/usr/bin/python3"})
    assert (launcher.kind, launcher.python_executable) == ("docker", "/usr/bin/python3")
    with pytest.raises(LauncherConfigError, match="GCS_IMPORT_LAUNCHER='lambda'"):
        launcher_from_env({"GCS_IMPORT_LAUNCHER": "lambda"})
    with pytest.raises(LauncherConfigError, match="GCS_IMPORT_PIPES_GCS_BUCKET"):
        launcher_from_env({"GCS_IMPORT_LAUNCHER": "k8s"})
    k8s = launcher_from_env({"GCS_IMPORT_LAUNCHER": "k8s", "GCS_IMPORT_PIPES_GCS_BUCKET": "pipes-bucket"})
    assert k8s.effective_channel() == "gcs" and k8s.pipes_gcs.bucket == "pipes-bucket"


def test_bad_launch_json_fails_when_definitions_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCS_IMPORT_K8S_LAUNCH", '{"image": ')
    with pytest.raises(LauncherConfigError, match=r"GCS_IMPORT_K8S_LAUNCH is not a valid K8sLaunch"):
        launcher_from_env({"GCS_IMPORT_LAUNCHER": "k8s", "GCS_IMPORT_MESSAGE_CHANNEL": "logs"})
    monkeypatch.setenv("GCS_IMPORT_K8S_LAUNCH", '{"image": "worker:1", "namespace": "data"}')
    launcher = launcher_from_env({"GCS_IMPORT_LAUNCHER": "k8s", "GCS_IMPORT_MESSAGE_CHANNEL": "logs"})
    assert launcher.effective_k8s().image == "worker:1"


def test_an_installed_package_without_pyproject_loads_the_same_defs_folder(tmp_path) -> None:
    """The code-location image installs the package without pyproject.toml: the same folder loads."""
    from orchestrator.definitions import PROJECT_ROOT

    installed = build_definitions(project_root=tmp_path)  # no pyproject.toml here
    assert _keys(installed) == _keys(build_definitions(project_root=PROJECT_ROOT))
    assert "gitcoin/passport_scores" in _keys(installed)


def test_multi_run_backfill_is_configurable() -> None:
    single = interval_gcs_import_asset(IntervalGCSAsset(**SEED, max_partitions_per_run=None)).asset
    assert single.backfill_policy == dg.BackfillPolicy.single_run()
    weekly = interval_gcs_import_asset(IntervalGCSAsset(**SEED, max_partitions_per_run=7)).asset
    assert weekly.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=7)
    for bad in (0, -1, True, "30"):
        with pytest.raises(SpecError, match="'max_partitions_per_run'"):
            IntervalGCSAsset(**SEED, max_partitions_per_run=bad)


def test_the_clean_table_gets_the_assets_description_unless_the_spec_has_one() -> None:
    from worker.core.contract import EXTRA_SPEC

    def sent_spec(config: IntervalGCSAsset) -> dict:
        asset = interval_gcs_import_asset(config).asset
        captured = {}

        class Capture:
            def launch(self, *, context, extras):
                captured.update(extras[EXTRA_SPEC])
                return []

        # the step fails after the launch (no materialization reported): only the extras sent matter here
        dg.materialize([asset], resources={"launcher": dg.ResourceDefinition.hardcoded_resource(Capture())},
                       partition_key="2024-01-02", raise_on_error=False)
        return captured

    described = sent_spec(IntervalGCSAsset(**SEED, asset_kwargs={"description": "Passport scores, daily."}))
    assert described["table_description"] == "Passport scores, daily."
    own = sent_spec(IntervalGCSAsset(**SEED, table_description="Own.", asset_kwargs={"description": "Asset."}))
    assert own["table_description"] == "Own."
