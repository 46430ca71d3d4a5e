"""The published benchmark results (docs/benchmarks/results.json): the shape the issue asks for, every
required figure, and the goals met. Regenerate with ``python -m localdev.benchmarks`` (full mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localdev.benchmarks.bigquery_writes import JobCounts, count_jobs
from localdev.benchmarks.http_counting import Request

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / "results.json"
REQUIRED = {
    "worker_peak_rss_ratio_40000_vs_10_files": 1.5,
    "orchestrator_peak_rss_ratio_10000_vs_10_files": 1.05,
    "inprocess_peer_peak_rss_ratio_10000_vs_10_files": None,
    "planning_vs_bare_listing_time_ratio": 1.2,
    "sensor_list_requests_100000_objects_nothing_new": 2,
    "sensor_list_requests_100000_objects_dense_nothing_new": None,
    "sensor_tick_seconds_100000_objects_nothing_new": None,
    "load_jobs_per_interval_25000_files": 3,
    "largest_request_bytes_40000_files": 10_000_000,
    "retention_delete_requests_10000_objects": 100,
    "subprocess_launch_overhead_ratio": None,
    "docker_launch_overhead_seconds": None,
    "backfill_seconds_per_interval_100_days": None,
}


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text())


def test_results_have_the_documented_shape(results):
    assert set(results) >= {"commit", "machine", "figures"} and results["mode"] == "full"
    for figure in results["figures"]:
        assert set(figure) == {"id", "value", "unit", "goal", "goal_is", "how"}, figure
        assert isinstance(figure["value"], int | float) and figure["how"], figure
        assert figure["goal_is"] in ("max", "min", None) and (figure["goal"] is None) == (figure["goal_is"] is None)
    ids = [f["id"] for f in results["figures"]]
    assert len(ids) == len(set(ids)), "figure ids repeat"


@pytest.mark.parametrize("figure_id", sorted(REQUIRED))
def test_every_required_figure_is_there_with_its_goal_met(results, figure_id):
    by_id = {f["id"]: f for f in results["figures"]}
    assert figure_id in by_id, f"{figure_id} missing from {RESULTS}"
    figure, goal = by_id[figure_id], REQUIRED[figure_id]
    if goal is not None:
        assert figure["goal"] == goal and figure["goal_is"] == "max"
        assert figure["value"] <= goal, figure


def _job(config: dict) -> Request:
    return Request("POST", "/bigquery/v2/projects/p/jobs?prettyPrint=false", 10, json.dumps({"configuration": config}).encode(),
                   200, 0.0)


def test_jobs_are_classified_and_writes_counted_per_destination_table():
    table = {"projectId": "p", "datasetId": "raw", "tableId": "t__20240101"}
    counts: JobCounts = count_jobs([
        _job({"load": {"destinationTable": {**table, "tableId": "staging"}}}),
        _job({"copy": {"destinationTable": table}}),
        _job({"query": {"query": "MERGE `p.raw.ledger` T USING ..."}}),
        _job({"query": {"query": "  insert INTO x SELECT 1"}}),
        _job({"query": {"query": "CREATE TABLE x AS SELECT 1", "destinationTable": {**table, "tableId": "x"}}}),
        _job({"query": {"query": "SELECT COUNT(*) FROM t"}}),
        _job({"load": {"destinationTable": {**table, "tableId": "staging"}}}),
        _job({"load": {"destinationTable": {**table, "tableId": "staging"}}}),
        Request("GET", "/bigquery/v2/projects/p/jobs/abc", 5, b"", 200, 0.0),
        Request("DELETE", "/bigquery/v2/projects/p/datasets/raw/tables/staging?prettyPrint=false", 5, b"", 200, 0.0),
    ])
    assert (counts.load, counts.copy, counts.dml, counts.ddl, counts.select) == (3, 1, 2, 1, 1)
    assert counts.table_writes["p.raw.staging"] == 3 and counts.dropped_tables == {"p.raw.staging"}
    # the dropped staging table's 3 loads do not add up across interval loads: the raw table's 1 does
    assert counts.busiest_table_writes == 1
