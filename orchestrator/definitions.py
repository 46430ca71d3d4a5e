"""The code location: ``dagster dev -m orchestrator.definitions`` (or ``dg dev``; ``dg list defs``).

Definitions load from the defs folder ``orchestrator/defs/`` with ``dg.load_from_defs_folder``:
each ``defs.yaml`` component (``IntervalGCSImportComponent``) and each Python module's
``Definitions``. A spec error is raised while loading, naming the YAML file and line (or the
module), the asset and the field; two imports with one asset key, or one job or sensor name,
fail with both named.

Dagster's loader silently ignores a module-level ``AssetFactoryResponse`` (it collects
``Definitions`` and definitions, not our dataclass): :func:`check_no_dropped_responses` turns that
into an error that says what to write instead.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
import traceback
from collections import defaultdict
from pathlib import Path

import dagster as dg
import yaml
from dagster.components import load_defs

from orchestrator.factories.response import AssetFactoryResponse
from worker.core.spec import SpecError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The defs module when no pyproject.toml says (an installed package).
DEFS_MODULE = "orchestrator.defs"
COMPONENT_TYPES = ("orchestrator.components.IntervalGCSImportComponent",
                   "orchestrator.components.interval_gcs_import.IntervalGCSImportComponent")


class DefinitionsLoadError(Exception):
    """A defs module or component failed to load, or a factory response would be dropped."""


def defs_module_of(project_root: Path) -> str | None:
    """``[tool.dg.project] defs_module`` of the project (default ``<root_module>.defs``); None when
    ``project_root`` has no pyproject.toml (an installed package, as in the code-location image)."""
    pyproject = project_root / "pyproject.toml"
    if not pyproject.exists():
        return None
    config = tomllib.loads(pyproject.read_text())["tool"]["dg"]["project"]
    return config.get("defs_module") or f"{config['root_module']}.defs"


def check_yaml_clashes(defs_folder: Path) -> None:
    """Raise naming both files when two import components declare one asset key or one name.

    The clean-up job and the sensors are named after the import's ``name`` alone, so a name must be
    unique across key prefixes too. (Dagster's own error for a duplicate names the definition only.)
    """
    keys: dict[str, list[str]] = defaultdict(list)
    names: dict[str, dict[str, str]] = defaultdict(dict)  # name -> asset key -> first file
    for path in sorted([*defs_folder.rglob("defs.yaml"), *defs_folder.rglob("defs.yml")]):
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            continue  # the loader reports a YAML syntax error itself, with its line
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("type") not in COMPONENT_TYPES:
                continue
            attributes = doc.get("attributes") or {}
            name = attributes.get("name")
            if not isinstance(name, str):
                continue
            prefix = attributes.get("key_prefix") or []
            prefix = [prefix] if isinstance(prefix, str) else list(prefix)
            key = "/".join([*map(str, prefix), name])
            keys[key].append(str(path))
            names[name].setdefault(key, str(path))
    problems = [f"asset key {key!r} is declared in {' and '.join(paths)}: give each import its own name or key_prefix"
                for key, paths in sorted(keys.items()) if len(paths) > 1]
    problems += [f"name {name!r} is declared in {' and '.join(by_key.values())}: names must be unique across key "
                 "prefixes, because the clean-up job and the sensors are named after the name alone; rename one"
                 for name, by_key in sorted(names.items()) if len(by_key) > 1]
    if problems:
        raise DefinitionsLoadError("clashing imports in the defs folder:\n- " + "\n- ".join(problems))


def check_no_dropped_responses(defs: dg.Definitions, *, package: str) -> None:
    """Raise naming the module when a module under ``package`` holds an ``AssetFactoryResponse`` whose
    assets are not in ``defs`` (the loader does not collect the dataclass itself)."""
    loaded = {key for asset in defs.assets or [] for key in _keys(asset)}
    for name, module in sorted(sys.modules.items()):
        if module is None or not (name == package or name.startswith(f"{package}.")):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, AssetFactoryResponse) and not set(_keys(value.assets[0])) <= loaded:
                raise DefinitionsLoadError(
                    f"{name}.{attr} is an AssetFactoryResponse, which Dagster's defs-folder loader does not collect: "
                    f"add `defs = {attr}.to_definitions()` to {name}."
                )


def _keys(asset: object) -> list[dg.AssetKey]:
    if isinstance(asset, dg.AssetsDefinition):
        return list(asset.keys)
    key = getattr(asset, "key", None)
    return [key] if key is not None else []


def build_definitions(*, project_root: Path = PROJECT_ROOT) -> dg.Definitions:
    """Everything in the project's defs folder, checked for clashes and dropped factory responses.

    Raises:
        DefinitionsLoadError: two imports clash, or a module holds a response the loader drops.
        dagster.components ComponentTreeException: a component failed to load (the YAML file, line and
            the spec's message are in it).
    """
    package = defs_module_of(project_root) or DEFS_MODULE
    defs_folder = Path(importlib.import_module(package).__file__).parent
    check_yaml_clashes(defs_folder)
    try:
        if defs_module_of(project_root) is not None:
            defs = dg.load_from_defs_folder(path_within_project=project_root)
        else:  # installed without the project's pyproject.toml: the same folder, named directly
            defs = load_defs(importlib.import_module(package), project_root=project_root)
    except SpecError as exc:  # raised while a Python module of the defs folder was imported
        raise DefinitionsLoadError(f"{_defs_frame(exc, defs_folder)}: {exc}") from exc
    check_no_dropped_responses(defs, package=package)
    return defs


def _defs_frame(exc: BaseException, defs_folder: Path) -> str:
    """``file:line`` of the innermost traceback frame inside the defs folder (where the spec was written)."""
    where = str(defs_folder)
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename.startswith(where):
            where = f"{frame.f_code.co_filename}:{line}"
    return where


defs = build_definitions()
