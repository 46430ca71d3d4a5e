"""What the factory makes, and how definitions loading reports bad config and clashes."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from orchestrator.definitions import DefinitionsLoadError, build_definitions, launcher_from_env
from orchestrator.factories import (
    AssetFactoryResponse,
    Interval,
    IntervalGCSAsset,
    SourceMode,
    SpecError,
    interval_gcs_import_asset,
)
from worker.contract import ALL_CHECKS, CHECK_ROWS_LOADED

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
    (asset,) = response.assets
    assert asset.key == dg.AssetKey(["gitcoin", "passport_scores"])
    assert isinstance(asset.partitions_def, dg.DailyPartitionsDefinition)
    assert asset.partitions_def.get_first_partition_key() == "2024-01-01"
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
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


_packages = itertools.count()


def write_package(root: Path, modules: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"fake_assets_{next(_packages)}"
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    header = "from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode, interval_gcs_import_asset\n"
    for module, body in modules.items():
        (package / f"{module}.py").write_text(header + textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(root))
    return name


def asset_module(name: str, key_prefix: str, **overrides) -> str:
    fields = {**SEED, "name": name, "key_prefix": key_prefix, **overrides}
    fields = {k: v.value if hasattr(v, "value") else v for k, v in fields.items()}  # enums as their names
    args = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"response = interval_gcs_import_asset(IntervalGCSAsset({args}))\n"


def test_every_module_is_picked_up(tmp_path, monkeypatch) -> None:
    package = write_package(tmp_path, {
        "one": asset_module("scores_a", "a"),
        "two": asset_module("scores_b", "b") + "import dagster as dg\n@dg.asset\ndef plain():\n    return 1\n",
        "three": "from .one import response  # the same object imported again is not a clash\n",
    }, monkeypatch)
    defs = build_definitions(package)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"a/scores_a", "b/scores_b", "plain"}
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"scores_a_clean_up_job", "scores_b_clean_up_job"}


def test_same_asset_key_twice_fails_naming_both_modules(tmp_path, monkeypatch) -> None:
    package = write_package(tmp_path, {"one": asset_module("scores", "a"), "two": asset_module("scores", "a")},
                            monkeypatch)
    with pytest.raises(DefinitionsLoadError) as raised:
        build_definitions(package)
    text = str(raised.value)
    assert "asset key 'a/scores'" in text and f"{package}.one" in text and f"{package}.two" in text


def test_same_name_under_two_prefixes_clashes_on_the_clean_up_job(tmp_path, monkeypatch) -> None:
    package = write_package(tmp_path, {"one": asset_module("scores", "a"), "two": asset_module("scores", "b")},
                            monkeypatch)
    with pytest.raises(DefinitionsLoadError) as raised:
        build_definitions(package)
    assert "job 'scores_clean_up_job'" in str(raised.value)
    assert "names must be unique" in str(raised.value)


def test_bad_spec_in_a_module_names_module_asset_and_field(tmp_path, monkeypatch) -> None:
    package = write_package(tmp_path, {"broken": asset_module("scores", "a", retention_days="ten")}, monkeypatch)
    with pytest.raises(DefinitionsLoadError) as raised:
        build_definitions(package)
    text = str(raised.value)
    assert f"{package}.broken" in text and "'scores'" in text and "'retention_days'" in text


def test_launcher_from_env() -> None:
    assert launcher_from_env({}).kind == "subprocess"
    launcher = launcher_from_env({"GCS_IMPORT_LAUNCHER": "docker", "GCS_IMPORT_WORKER_PYTHON": "/usr/bin/python3"})
    assert (launcher.kind, launcher.python_executable) == ("docker", "/usr/bin/python3")
    with pytest.raises(DefinitionsLoadError, match="GCS_IMPORT_LAUNCHER='lambda'"):
        launcher_from_env({"GCS_IMPORT_LAUNCHER": "lambda"})


def test_bad_launch_json_fails_when_definitions_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCS_IMPORT_K8S_LAUNCH", '{"image": ')
    with pytest.raises(DefinitionsLoadError, match=r"GCS_IMPORT_K8S_LAUNCH is not a valid K8sLaunch"):
        launcher_from_env({"GCS_IMPORT_LAUNCHER": "k8s"})
    monkeypatch.setenv("GCS_IMPORT_K8S_LAUNCH", '{"image": "worker:1", "namespace": "data"}')
    assert launcher_from_env({"GCS_IMPORT_LAUNCHER": "k8s"}).effective_k8s().image == "worker:1"
