"""The worker under Dagster Pipes: launched by ``PipesSubprocessClient`` from a partitioned test asset.

No orchestrator code is involved (but the message reader that keeps the handler, to read a failed
run's failure report): this pins the worker's side of the Pipes contract
(metadata keys and types, data version, the three asset checks, failures that carry
the worker's own message) against Dagster's own client.
"""

# no `from __future__ import annotations`: Dagster inspects the asset functions' annotations at runtime
import sys

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from orchestrator.launchers.subprocess_launcher import SubprocessMessageReader
from tests.emulators.worker_helpers import REPO, count_rows, day, drop_days, import_window, make_spec, object_names
from worker.core import contract as c
from worker.core.gcs import list_objects
from worker.core.matching import match_objects
from worker.core.spec import ImportSpec
from worker.planning import generations_digest
from worker.results import ImportSummary, IntervalResult

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01")


def _asset(spec: ImportSpec, *, action: str = "import", extra: dict | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        partitions_def=PARTITIONS,
        check_specs=[dg.AssetCheckSpec(name, asset=spec.name) for name in c.ALL_CHECKS],
    )
    def imported(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient):
        extras = {c.EXTRA_SPEC: spec.to_dict(), c.EXTRA_ACTION: action, c.EXTRA_RETRY_DEADLINE: 5, **(extra or {})}
        return pipes.run(command=[sys.executable, "-m", "worker"], context=context, extras=extras).get_results()

    return imported


def _materialize(asset: dg.AssetsDefinition, partition_key: str, instance: dg.DagsterInstance,
                 message_reader: dg.PipesMessageReader | None = None):
    # the emulator hosts are in os.environ (session fixture); PipesSubprocessClient passes os.environ on
    return dg.materialize([asset], partition_key=partition_key, instance=instance, raise_on_error=False,
                          resources={"pipes": dg.PipesSubprocessClient(cwd=str(REPO), message_reader=message_reader)})


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def _expected_data_version(spec: ImportSpec, gcs_client, start) -> str:
    objects = match_objects(spec, list_objects(gcs_client, spec)).by_interval[start]
    summary = ImportSummary(spec=spec, window_start=start, window_end=spec.interval.next_start(start))
    summary.intervals.append(IntervalResult(interval_start=start, status="loaded", suffix=spec.interval.table_suffix(start),
                                            digest=generations_digest(spec, start, objects)))
    return summary.data_version


def test_partition_materializes_with_metadata_checks_and_data_version(bucket, gcs_client, bq_client, unique_name, instance):
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5), day(6)], rows=[3, 4])
    asset = _asset(spec)

    result = _materialize(asset, "2024-01-06", instance)

    assert result.success
    [mat] = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    assert mat.asset_key == dg.AssetKey(spec.name)
    assert mat.partition == "2024-01-06"
    meta = mat.metadata
    assert meta[c.META_ROW_COUNT] == dg.IntMetadataValue(4)
    assert meta[c.META_TABLE_NAME] == dg.TextMetadataValue(spec.clean_table_id)
    assert meta[c.META_INTERVALS_LOADED].value == ["20240106"]
    assert meta[c.META_FILES_LOADED] == dg.IntMetadataValue(1)
    assert isinstance(meta[c.META_CLEAN_TABLE_URL], dg.UrlMetadataValue)
    per_interval = meta[c.META_PER_INTERVAL]
    assert isinstance(per_interval, dg.TableMetadataValue)
    assert [col.name for col in per_interval.schema.columns] == ["interval", "status", "files", "bytes", "rows", "raw_table", "jobs"]
    [record] = per_interval.records
    assert record.data["interval"] == "20240106" and record.data["status"] == "loaded" and record.data["rows"] == 4
    assert record.data["raw_table"] == spec.raw_table_id(day(6))
    for phase in ("list", "load", "publish"):
        value = meta[f"{c.META_SECONDS_PREFIX}{phase}"]
        assert isinstance(value, dg.FloatMetadataValue) and value.value >= 0
    assert mat.tags["dagster/data_version"] == _expected_data_version(spec, gcs_client, day(6))
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == set(c.ALL_CHECKS)
    assert all(e.passed for e in checks.values())
    assert checks[c.CHECK_ROWS_LOADED].severity == dg.AssetCheckSeverity.ERROR
    assert checks[c.CHECK_SCHEMA_UNCHANGED].severity == dg.AssetCheckSeverity.WARN
    # only the partition's interval was loaded
    assert count_rows(bq_client, spec.clean_table_id) == 4
    assert count_rows(bq_client, spec.clean_table_id, "day = '2024-01-06'") == 4

    again = _materialize(asset, "2024-01-06", instance)

    assert again.success
    [mat2] = [e.event_specific_data.materialization for e in again.get_asset_materialization_events()]
    assert mat2.metadata[c.META_INTERVALS_SKIPPED].value == ["20240106"]
    assert mat2.metadata[c.META_ROW_COUNT] == dg.IntMetadataValue(4)
    assert mat2.tags["dagster/data_version"] == mat.tags["dagster/data_version"]
    assert count_rows(bq_client, spec.clean_table_id) == 4


def test_partition_without_files_fails_rows_loaded_check(bucket, unique_name, instance):
    spec = make_spec(bucket.name, unique_name, mode="Overwrite")
    drop_days(bucket, spec, [day(5)], rows=2)

    result = _materialize(_asset(spec), "2024-01-07", instance)

    assert result.success  # the check is not blocking in this test asset
    [mat] = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    assert mat.metadata[c.META_INTERVALS_EMPTY].value == ["20240107"]
    assert mat.metadata[c.META_ROW_COUNT] == dg.IntMetadataValue(0)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[c.CHECK_ROWS_LOADED].passed is False
    assert checks[c.CHECK_ROWS_LOADED].metadata["intervals_without_rows"].value == ["20240107"]
    assert checks[c.CHECK_NO_UNPARSEABLE_FILES].passed is True


def test_window_extras_override_the_partition(bucket, bq_client, unique_name, instance):
    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5), day(6), day(7)], rows=[1, 2, 3])
    asset = _asset(spec, extra={c.EXTRA_WINDOW_START: "2024-01-05", c.EXTRA_WINDOW_END: "2024-01-08"})

    result = _materialize(asset, "2024-01-05", instance)

    assert result.success
    [mat] = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    assert mat.metadata[c.META_INTERVALS_LOADED].value == ["20240105", "20240106", "20240107"]
    assert count_rows(bq_client, spec.clean_table_id) == 6


def test_failing_worker_fails_the_step_with_its_message(services, unique_name, instance):
    spec = make_spec(f"missing-{unique_name.replace('_', '-')}", unique_name)
    reader = SubprocessMessageReader()

    result = _materialize(_asset(spec), "2024-01-06", instance, message_reader=reader)

    assert not result.success
    assert result.get_asset_materialization_events() == []
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1
    # the "closed with exception" engine event is in the run's event log (not in result.all_events)
    logs = instance.all_logs(result.run_id)
    closed = [r.dagster_event for r in logs if r.dagster_event is not None
              and r.dagster_event.event_type == DagsterEventType.ENGINE_EVENT and "closed with exception" in (r.message or "")]
    assert len(closed) == 1
    error = closed[0].event_specific_data.error
    assert f"GCS bucket '{spec.bucket_name}' was not found" in error.message
    assert error.cls_name == "WorkerError"
    # and its failure report, as data: not transient (a missing bucket stays missing)
    [report] = reader.custom_messages()
    assert report[c.REPORT_FAILURE][c.FAILURE_TRANSIENT] is False
    assert report[c.REPORT_FAILURE][c.FAILURE_ERROR] == "WorkerError"
    assert f"GCS bucket '{spec.bucket_name}' was not found" in report[c.REPORT_FAILURE][c.FAILURE_MESSAGE]


def test_unreachable_service_is_reported_transient(bucket, unique_name, instance, monkeypatch):
    """BigQuery unreachable past the retry deadline: the worker's failure report says transient (the launcher
    retries the step from it)."""
    spec = make_spec(bucket.name, unique_name)
    drop_days(bucket, spec, [day(6)], rows=1)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:9")
    reader = SubprocessMessageReader()

    result = _materialize(_asset(spec, extra={c.EXTRA_RETRY_DEADLINE: 1}), "2024-01-06", instance, message_reader=reader)

    assert not result.success
    [report] = reader.custom_messages()
    assert report[c.REPORT_FAILURE][c.FAILURE_TRANSIENT] is True
    assert report[c.REPORT_FAILURE][c.FAILURE_ERROR] == "ServiceUnreachable"
    assert "BigQuery could not be reached" in report[c.REPORT_FAILURE][c.FAILURE_MESSAGE]


def test_retention_under_pipes_reports_summary(bucket, gcs_client, bq_client, unique_name, instance):
    """Retention through Pipes (dry run): a custom message and a log line; nothing deleted."""
    spec = make_spec(bucket.name, unique_name, retention_days=1)
    drop_days(bucket, spec, [day(5)], rows=1)
    import_window(spec, gcs_client, bq_client, day(5))
    before = object_names(bucket)

    @dg.asset(name=f"{spec.name}_cleanup")
    def cleanup(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient):
        extras = {c.EXTRA_SPEC: spec.to_dict(), c.EXTRA_ACTION: "retention", c.EXTRA_DRY_RUN: True,
                  c.EXTRA_AS_OF: "2024-02-01T00:00:00+00:00"}
        invocation = pipes.run(command=[sys.executable, "-m", "worker"], context=context, extras=extras)
        [message] = invocation.get_custom_messages()
        return dg.MaterializeResult(metadata={"to_delete": message["objects_to_delete"], "dry": message["dry_run"]})

    result = dg.materialize([cleanup], instance=instance, resources={"pipes": dg.PipesSubprocessClient(cwd=str(REPO))})

    assert result.success
    [mat] = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    assert mat.metadata["to_delete"].value == ["drops/2024-01-05/scores.parquet"]
    assert mat.metadata["dry"].value is True
    assert object_names(bucket) == before
