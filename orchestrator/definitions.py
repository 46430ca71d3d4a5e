"""The code location: ``dagster dev -m orchestrator.definitions``.

Every module under ``orchestrator/assets/`` is imported (an importlib walk, no
registry) and its module-level ``AssetFactoryResponse`` objects, assets, asset
checks, jobs, sensors and schedules are collected. A spec error is raised while
loading, naming the module, the asset and the field; two assets with one key, or
two jobs or sensors with one name, fail with both modules named.

Environment (read when definitions load):

- ``GCS_IMPORT_LAUNCHER``: where the worker runs: ``subprocess`` (default), ``docker`` or ``k8s``.
- ``GCS_IMPORT_WORKER_PYTHON``: subprocess only: the interpreter that runs ``-m worker``
  (default: the one running Dagster).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections import defaultdict
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from orchestrator.factories.common import AssetFactoryResponse
from orchestrator.launcher import WorkerLauncher

ASSETS_PACKAGE = "orchestrator.assets"
LAUNCHER_ENV = "GCS_IMPORT_LAUNCHER"
WORKER_PYTHON_ENV = "GCS_IMPORT_WORKER_PYTHON"
LAUNCHER_KINDS = ("subprocess", "docker", "k8s")


class DefinitionsLoadError(Exception):
    """An asset module failed to import, or two definitions clash."""


@dataclass
class Collected:
    """Definitions found in asset modules, each with the module it came from."""

    assets: list[tuple[str, Any]] = field(default_factory=list)
    checks: list[tuple[str, dg.AssetChecksDefinition]] = field(default_factory=list)
    jobs: list[tuple[str, Any]] = field(default_factory=list)
    sensors: list[tuple[str, dg.SensorDefinition]] = field(default_factory=list)
    schedules: list[tuple[str, dg.ScheduleDefinition]] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)

    def add(self, module: str, value: Any) -> None:
        if id(value) in self._seen:
            return  # the same object imported into a second module
        self._seen.add(id(value))
        if isinstance(value, AssetFactoryResponse):
            for item in [*value.assets, *value.checks, *value.jobs, *value.sensors]:
                self.add(module, item)
        elif isinstance(value, dg.AssetChecksDefinition):
            self.checks.append((module, value))
        elif isinstance(value, dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset):
            self.assets.append((module, value))
        elif isinstance(value, dg.JobDefinition | UnresolvedAssetJobDefinition):
            self.jobs.append((module, value))
        elif isinstance(value, dg.SensorDefinition):
            self.sensors.append((module, value))
        elif isinstance(value, dg.ScheduleDefinition):
            self.schedules.append((module, value))


def asset_modules(package: str = ASSETS_PACKAGE) -> list[ModuleType]:
    """Import ``package`` and every module below it, in name order.

    Raises:
        DefinitionsLoadError: a module failed to import (a bad spec, a syntax error); the
            message names the module and carries the original error (e.g. the SpecError
            that names the asset and the field).
    """
    root = importlib.import_module(package)
    modules = [root]
    for info in sorted(pkgutil.walk_packages(root.__path__, prefix=f"{package}."), key=lambda i: i.name):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception as exc:
            raise DefinitionsLoadError(f"asset module {info.name} failed to load: {type(exc).__name__}: {exc}") from exc
    return modules


def collect(modules: list[ModuleType]) -> Collected:
    """Module-level factory responses and definitions, de-duplicated by identity."""
    found = Collected()
    for module in modules:
        for name, value in vars(module).items():
            if not name.startswith("_"):
                found.add(module.__name__, value)
    return found


def check_clashes(found: Collected) -> None:
    """Raise naming both modules when two assets share a key or two jobs/sensors/schedules share a name."""
    problems: list[str] = []

    def report(kind: str, owners: dict[str, list[str]], hint: str) -> None:
        for name, modules in sorted(owners.items()):
            if len(modules) > 1:
                problems.append(f"{kind} {name!r} is defined {len(modules)} times, in {', '.join(modules)}: {hint}")

    keys: dict[str, list[str]] = defaultdict(list)
    for module, asset in found.assets:
        for key in asset.keys if isinstance(asset, dg.AssetsDefinition) else [asset.key]:
            keys[key.to_user_string()].append(module)
    report("asset key", keys, "give each IntervalGCSAsset its own name or key_prefix")
    hint = ("IntervalGCSAsset names must be unique across key prefixes, because the clean-up job and the "
            "sensors are named after the name alone; rename one")
    for kind, items in (("job", found.jobs), ("sensor", found.sensors), ("schedule", found.schedules)):
        names: dict[str, list[str]] = defaultdict(list)
        for module, item in items:
            names[item.name].append(module)
        report(kind, names, hint)
    check_keys: dict[str, list[str]] = defaultdict(list)
    for module, checks_def in found.checks:
        for check_key in checks_def.check_keys:
            check_keys[check_key.to_user_string()].append(module)
    report("asset check", check_keys, "two factory calls made the same asset")
    if problems:
        raise DefinitionsLoadError("clashing definitions in asset modules:\n- " + "\n- ".join(problems))


def launcher_from_env(environ: dict[str, str] | None = None) -> WorkerLauncher:
    """The ``launcher`` resource as ``GCS_IMPORT_LAUNCHER`` and ``GCS_IMPORT_WORKER_PYTHON`` say."""
    environ = dict(os.environ if environ is None else environ)
    kind = environ.get(LAUNCHER_ENV, "subprocess").strip() or "subprocess"
    if kind not in LAUNCHER_KINDS:
        raise DefinitionsLoadError(f"{LAUNCHER_ENV}={kind!r}: use one of {', '.join(LAUNCHER_KINDS)}")
    python = environ.get(WORKER_PYTHON_ENV) or None
    launcher = WorkerLauncher(kind=kind, python_executable=python)
    # Bad JSON in $GCS_IMPORT_DOCKER_LAUNCH / $GCS_IMPORT_K8S_LAUNCH fails when definitions load, not at run time.
    try:
        if kind == "docker":
            launcher.effective_docker()
        elif kind == "k8s":
            launcher.effective_k8s()
    except dg.Failure as exc:
        raise DefinitionsLoadError(exc.description or str(exc)) from exc
    return launcher


def build_definitions(package: str = ASSETS_PACKAGE, *, launcher: WorkerLauncher | None = None) -> dg.Definitions:
    """All definitions in ``package``'s modules, with the ``launcher`` resource."""
    found = collect(asset_modules(package))
    check_clashes(found)
    return dg.Definitions(
        assets=[a for _, a in found.assets],
        asset_checks=[c for _, c in found.checks],
        jobs=[j for _, j in found.jobs],
        sensors=[s for _, s in found.sensors],
        schedules=[s for _, s in found.schedules],
        resources={"launcher": launcher if launcher is not None else launcher_from_env()},
    )


defs = build_definitions()
