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
      launcher:                      # optional: this import's own WorkerLauncher; else the shared `launcher`
        kind: k8s
        k8s: {image: "{{ env.GCS_IMPORT_WORKER_IMAGE }}"}

It builds exactly what ``interval_gcs_import_asset(IntervalGCSAsset(...))`` builds (the same
code path). ``dg check yaml`` checks field names and types against this model; the spec's own
validation (a pattern without its timestamp group, a retention too long ...) runs when the
definitions load, and its message is reported with the YAML file and the field's line.
"""


import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from orchestrator.factories.config import DEFAULT_MAX_PARTITIONS_PER_RUN, DEFAULT_SENSOR_LOOKBACK, IntervalGCSAsset
from orchestrator.factories.gcs import interval_gcs_import_asset
from orchestrator.launchers import WorkerLauncher
from worker.core.spec import SpecError

# The spec's field is called `schema`, which pydantic's BaseModel also has (a deprecated method); the
# component's generated model is built lazily, so the harmless "shadows an attribute" warning is
# silenced for that field only.
warnings.filterwarnings("ignore", message='Field name "schema" in "IntervalGCSImportComponentModel"', category=UserWarning)

#: The spec's fields the component takes as attributes (a unit test keeps this equal to ImportSpec's).
SPEC_ATTRIBUTES = (
    "name", "key_prefix", "project_id", "bucket_name", "path_base", "file_match", "destination_table",
    "raw_dataset_name", "clean_dataset_name", "interval", "mode", "retention_days", "format", "location",
    "schema", "csv_header_rows", "csv_delimiter", "max_bad_records", "timestamp_format", "start_date",
    "interval_column", "allow_empty_snapshot", "billing_project", "schema_evolution", "load_options",
    "clustering_fields", "require_partition_filter", "table_description", "raw_table_expiration_days", "on_bad_file",
)
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
@dataclass
class IntervalGCSImportComponent(dg.Component, dg.Resolvable):
    """An interval GCS file drop loaded into BigQuery by the import worker (Dagster Pipes).

    Makes the partitioned import asset with its checks, the external asset of its GCS source,
    the new-files sensor, the freshness check and sensor, and the clean-up job and sensor.
    """

    # -- the spec (worker.core.spec.ImportSpec; see the README for each field) ------------
    name: str
    project_id: str
    bucket_name: str
    path_base: str
    file_match: str
    destination_table: str
    raw_dataset_name: str
    clean_dataset_name: str
    interval: Literal["Hourly", "Daily", "Weekly", "Monthly"]
    mode: Literal["Overwrite", "Incremental"]
    retention_days: int
    key_prefix: str | list[str] | None = None
    format: Literal["CSV", "PARQUET", "NEWLINE_DELIMITED_JSON", "AVRO", "ORC"] = "CSV"
    location: str = "US"
    schema: list[dict[str, str]] | None = None
    csv_header_rows: int = 1
    csv_delimiter: str = ","
    max_bad_records: int = 0
    timestamp_format: str | None = None
    start_date: str | None = None
    interval_column: str = "_interval_start"
    allow_empty_snapshot: bool = False
    billing_project: str | None = None
    schema_evolution: Literal["fail", "add_columns", "add_and_relax"] = "add_columns"
    #: quote, encoding, null_marker, allow_jagged_rows, allow_quoted_newlines, preserve_ascii_control_characters,
    #: ignore_unknown_values, enable_list_inference, decimal_target_types, time_zone, date/datetime/time/timestamp_format
    load_options: dict[str, Any] | None = None
    clustering_fields: list[str] | None = None
    require_partition_filter: bool = False
    #: The clean table's description; unset: the asset's description.
    table_description: str | None = None
    raw_table_expiration_days: int | None = None
    on_bad_file: Literal["fail", "skip"] = "fail"
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
        spec_fields = {k: getattr(self, k) for k in SPEC_ATTRIBUTES}
        return IntervalGCSAsset(
            **spec_fields,
            asset_kwargs=asset_kwargs,
            max_partitions_per_run=self.max_partitions_per_run,
            sensor_lookback=self.sensor_lookback,
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
            raise ComponentSpecError(_located(str(exc), yaml_path)) from None
        except (dg.Failure, TypeError, ValueError) as exc:
            message = getattr(exc, "description", None) or str(exc)
            raise ComponentSpecError(
                _located(f"IntervalGCSAsset {self.name!r}: field 'launcher' {message}", yaml_path)
            ) from None
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


def _located(message: str, yaml_path: Path | None) -> str:
    """``message`` prefixed with ``file:line:`` of the field it names (``field 'x'`` / ``field 'x[0].y'``)."""
    if yaml_path is None:
        return message
    line = 1
    named = re.search(r"field '([A-Za-z_]+)", message)
    if named:
        pattern = re.compile(rf"^\s*{re.escape(named.group(1))}\s*:")
        for number, text in enumerate(yaml_path.read_text().splitlines(), 1):
            if pattern.match(text):
                line = number
                break
    return f"{yaml_path}:{line}: {message}"


def component_fields() -> Sequence[str]:
    """The attribute names of the component (for tests and docs)."""
    return [f for f in IntervalGCSImportComponent.__dataclass_fields__ if not f.startswith("_")]
