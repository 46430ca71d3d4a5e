"""``IntervalGCSImportComponent``: an interval GCS import declared in ``defs/<name>/defs.yaml``.

.. code-block:: yaml

    type: orchestrator.components.IntervalGCSImportComponent
    attributes:
      key_prefix: gitcoin
      name: passport_scores
      project_id: opensource-observer
      bucket_name: oso-dataset-transfer-bucket
      path_base: passport
      file_match: '(?P<interval_timestamp>\\d\\d\\d\\d-\\d\\d-\\d\\d)/scores\\.parquet'
      destination_table: passport_scores
      raw_dataset_name: oso_raw_sources
      clean_dataset_name: gitcoin
      interval: Daily
      mode: Overwrite
      retention_days: 10
      format: PARQUET
      group_name: gitcoin            # asset attributes: group_name, owners, tags, description, metadata
      sensor_lookback: 1d            # optional: how far back the new-files sensor looks for re-uploads
      max_arrival_to_queryable: 5m   # optional: the WARN check arrival_to_queryable (file arrival to clean rows)
      launcher:                      # optional: this import's own WorkerLauncher; else the shared `launcher`
        kind: k8s
        k8s: {image: "{{ env.GCS_IMPORT_WORKER_IMAGE }}"}

It builds exactly what ``interval_gcs_import_asset(IntervalGCSAsset(...))`` builds (the same
code path). The spec's attributes are not restated here: they are ``ImportSpec``'s fields, derived
by :mod:`orchestrator.components.spec_attributes`. ``dg check yaml`` checks field names and types
against the model Dagster derives from them; the spec's own validation (a pattern without its
timestamp group, a retention too long ...) runs when the definitions load, and its message is
reported with the YAML file and the line of the field it names (``SpecError.field``).
"""


import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from orchestrator.components.spec_attributes import SPEC_FIELD_NAMES, SpecAttributes
from orchestrator.factories.config import DEFAULT_MAX_PARTITIONS_PER_RUN, DEFAULT_SENSOR_LOOKBACK, IntervalGCSAsset
from orchestrator.factories.import_asset import interval_gcs_import_asset
from orchestrator.launchers import WorkerLauncher
from worker.core.spec import SpecError

# The spec's field is called `schema`, which pydantic's BaseModel also has (a deprecated method); the
# component's generated model is built lazily, so the harmless "shadows an attribute" warning is
# silenced for that field only.
warnings.filterwarnings("ignore", message='Field name "schema" in "IntervalGCSImportComponentModel"', category=UserWarning)

#: Attributes that become ``@asset`` keyword arguments.
ASSET_ATTRIBUTES = ("group_name", "owners", "tags", "description", "metadata")


class IntervalGCSImportScaffolder(dg.Scaffolder):
    """``dg scaffold defs orchestrator.components.IntervalGCSImportComponent <name>``: a defs.yaml with
    every required field filled with a placeholder to replace (the name is the folder's)."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = re.sub(r"\W", "_", request.target_path.name)
        if request.scaffold_format == "python":
            raise SpecError("IntervalGCSImportComponent scaffolds YAML only; for Python, copy "
                            "orchestrator/examples/gitcoin_passport_scores.py")
        dg.scaffold_component(request, {
            "name": name,
            "project_id": "my-gcp-project",
            "bucket_name": "my-transfer-bucket",
            "path_base": name,
            "file_match": r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/data\.csv",
            "destination_table": name,
            "raw_dataset_name": "raw_sources",
            "clean_dataset_name": "clean",
            "interval": "Daily",
            "mode": "Incremental",
            "retention_days": 30,
            "format": "CSV",
        })


class ComponentSpecError(SpecError):
    """A spec field of a component is invalid; the message names the YAML file and line."""


@dg.scaffold_with(IntervalGCSImportScaffolder)
@dataclass(kw_only=True)
class IntervalGCSImportComponent(SpecAttributes, dg.Component, dg.Resolvable):
    """An interval GCS file drop loaded into BigQuery by the import worker (Dagster Pipes).

    Makes the partitioned import asset with its checks, the external asset of its GCS source,
    the new-files sensor, the freshness check and sensor, and the clean-up job and sensor.
    Its attributes are every field of ``worker.core.spec.ImportSpec`` (inherited from
    :data:`~orchestrator.components.spec_attributes.SpecAttributes`, see the README for each), then these:
    """

    # -- the asset ---------------------------------------------------------------------
    group_name: str | None = None
    owners: list[str] | None = None
    tags: dict[str, str] | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    #: Partitions per backfill run (``BackfillPolicy.multi_run``); null: a backfill is one run.
    max_partitions_per_run: int | None = DEFAULT_MAX_PARTITIONS_PER_RUN
    # -- the new-files sensor --------------------------------------------------------------
    #: How far back in time a pass of a sortable layout re-lists to notice re-uploads ("6h", "1d",
    #: "36h", "7d", "30m"); older re-uploads need a run of that partition. See docs/orchestrator.md.
    sensor_lookback: str = DEFAULT_SENSOR_LOOKBACK
    #: A duration ("5m", "1h"): the WARN check ``arrival_to_queryable`` fails a run that published an interval
    #: later than that after its newest file arrived; null (default): no such check.
    max_arrival_to_queryable: str | None = None
    # -- where the worker runs -----------------------------------------------------------
    #: This import's own ``WorkerLauncher`` fields (kind, docker, k8s, message_channel, pipes_gcs, ...);
    #: unset: the project's shared ``launcher`` resource (orchestrator/defs/resources.py).
    launcher: dict[str, Any] | None = None

    def to_config(self) -> IntervalGCSAsset:
        """The factory configuration these attributes declare.

        Raises:
            SpecError: a field is invalid (the spec's own message).
        """
        asset_kwargs = {k: getattr(self, k) for k in ASSET_ATTRIBUTES if getattr(self, k) is not None}
        spec_fields = {k: getattr(self, k) for k in SPEC_FIELD_NAMES}
        return IntervalGCSAsset(
            **spec_fields,
            asset_kwargs=asset_kwargs,
            max_partitions_per_run=self.max_partitions_per_run,
            sensor_lookback=self.sensor_lookback,
            max_arrival_to_queryable=self.max_arrival_to_queryable,
            launcher_resource_key=f"launcher_{self.name}" if self.launcher is not None else "launcher",
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        yaml_path = _defs_yaml(context.path)
        try:
            config = self.to_config()
            resources: dict[str, Any] = {}
            if self.launcher is not None:
                launcher = WorkerLauncher(**self.launcher)
                launcher.validate()
                resources[config.launcher_resource_key] = launcher
        except SpecError as exc:
            raise ComponentSpecError(_located(str(exc), field=exc.field, yaml_path=yaml_path), field=exc.field) from None
        except (dg.Failure, TypeError, ValueError) as exc:
            message = getattr(exc, "description", None) or str(exc)
            message = f"{IntervalGCSAsset.spec_label} {self.name!r}: field 'launcher' {message}"
            raise ComponentSpecError(_located(message, field="launcher", yaml_path=yaml_path), field="launcher") from None
        # no reference of our own: Dagster links each definition of a component to its defs.yaml
        response = interval_gcs_import_asset(config, code_references=[])
        response.resources.update(resources)
        return response.to_definitions()


def _defs_yaml(path: Path) -> Path | None:
    for name in ("defs.yaml", "defs.yml"):
        candidate = path / name if path.is_dir() else path
        if candidate.name == name and candidate.exists():
            return candidate
    return None


def _located(message: str, *, field: str | None, yaml_path: Path | None) -> str:
    """``message`` prefixed with ``file:line:`` of ``field``'s line in the YAML (line 1 when not found)."""
    if yaml_path is None:
        return message
    line = 1
    if field:
        pattern = re.compile(rf"^\s*{re.escape(field)}\s*:")
        for number, text in enumerate(yaml_path.read_text().splitlines(), 1):
            if pattern.match(text):
                line = number
                break
    return f"{yaml_path}:{line}: {message}"
