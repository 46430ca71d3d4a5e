"""The published benchmark results (docs/benchmarks/results.json): the shape the issue asks for, every
required figure, and the goals met. Regenerate with ``python -m localdev.benchmarks`` (full mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localdev.benchmarks.bigquery_writes import JobCounts, count_jobs
from localdev.benchmarks.http_counting import Request
from localdev.benchmarks.results import (
    ENFORCED_IN_QUICK,
    Figure,
    GoalIs,
    ModuleRun,
    enforced,
    missed_goals,
    write_results,
)

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / "results.json"
REQUIRED = {
    # issue 19: at the cloud's latency (cloud_latency)
    "range_run_wall_ratio_20_vs_1_interval_at_0_5s_latency": 3,
    "one_interval_seconds_at_0_5s_latency": 19.7,
    "bigquery_requests_per_interval_range_of_20": None,
    "dml_statements_per_range_of_20_intervals": 6,
    "import_list_requests_100000_objects_one_interval": 2,
    "retention_list_requests_100000_objects_one_interval": 2,
    "backfill_seconds_per_interval_365_days_at_0_5s_latency": None,
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
    # issue 20: event-driven arrivals (event_latency)
    "notification_sensor_requests_100000_objects_one_new": 0,
    "event_arrival_to_queryable_seconds_p50": 45,
    "event_arrival_to_queryable_seconds_p95": 75,
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


def _figure(figure_id: str, value: float, goal: float | None = None) -> Figure:
    return Figure(id=figure_id, value=value, unit="x", how="h", goal=goal, goal_is=GoalIs.MAX if goal is not None else None)


def test_a_missed_goal_fails_a_full_run_and_in_quick_mode_only_the_quick_goals():
    quick_goal = sorted(ENFORCED_IN_QUICK)[0]
    figures = [_figure("other_ratio", 2.0, goal=1.5), _figure(quick_goal, 9, goal=2), _figure("no_goal", 5)]
    assert [f.id for f in missed_goals(figures, quick=False)] == ["other_ratio", quick_goal]
    assert [f.id for f in missed_goals(figures, quick=True)] == [quick_goal]
    assert not enforced(figures[0], quick=True) and enforced(figures[0], quick=False)
    assert missed_goals([_figure(quick_goal, 2, goal=2)], quick=True) == []


def test_the_quick_goals_are_the_issues_quick_sizes():
    quick_goals = {"range_run_wall_ratio_5_vs_1_interval_at_0_5s_latency", "dml_statements_per_range_of_5_intervals",
                   "import_list_requests_10000_objects_one_interval", "retention_list_requests_10000_objects_one_interval",
                   # issue 20: 3 uploads at random moments still measure the tick cycle; 10,000 objects still need 0
                   "notification_sensor_requests_10000_objects_one_new", "event_arrival_to_queryable_seconds_p50",
                   "event_arrival_to_queryable_seconds_p95"}
    assert set(ENFORCED_IN_QUICK) == quick_goals


def test_a_merged_run_replaces_the_modules_it_ran_and_keeps_the_others(tmp_path):
    write_results([_figure("a1", 1), _figure("a2", 2), _figure("b1", 3)], out_dir=tmp_path, quick=False, notes=["whole run"],
                  runs={"a": ModuleRun(commit="c1", seconds=1, figures=["a1", "a2"], notes=["a's note"]),
                        "b": ModuleRun(commit="c1", seconds=1, figures=["b1"], notes=["b's note"])})
    json_path, md_path = write_results(
        [_figure("a1", 10), _figure("a3", 30)], out_dir=tmp_path, quick=False, notes=["partial run"],
        runs={"a": ModuleRun(commit="c2", seconds=1, figures=["a1", "a3"], notes=["a's new note"])},
        merge_into=tmp_path / "results.json")
    merged = json.loads(json_path.read_text())
    assert [(f["id"], f["value"]) for f in merged["figures"]] == [("a1", 10), ("b1", 3), ("a3", 30)]  # a2 is gone with a's old run
    assert merged["modules"]["a"]["commit"] == "c2" and merged["modules"]["b"]["commit"] == "c1"
    assert merged["commit"] == "c1+c2" and merged["mode"] == "full"
    text = md_path.read_text()
    assert "b's note" in text and "a's new note" in text and "a's note" not in text and "partial run" not in text
    with pytest.raises(ValueError, match="full mode figures"):
        write_results([_figure("a1", 1)], out_dir=tmp_path, quick=True, notes=[], merge_into=json_path)


def test_a_results_file_without_modules_merges_as_one_earlier_run(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"commit": "old", "machine": "m", "mode": "full", "figures": [
        {"id": "x", "value": 1, "unit": "u", "goal": 2, "goal_is": "max", "how": "h"},
        {"id": "y", "value": 1, "unit": "u", "goal": None, "goal_is": None, "how": "h"}]}))
    (tmp_path / "results.md").write_text("# r\n\n## Notes\n\n- kept note\n- The whole run took 9 s.\n")
    json_path, md_path = write_results([_figure("y", 5)], out_dir=tmp_path, quick=False, notes=[],
                                       runs={"n": ModuleRun(commit="new", seconds=1, figures=["y"], notes=[])},
                                       merge_into=tmp_path / "results.json")
    merged = json.loads(json_path.read_text())
    assert [(f["id"], f["value"], f["goal"]) for f in merged["figures"]] == [("x", 1, 2), ("y", 5, None)]
    assert merged["modules"]["earlier run"]["figures"] == ["x"]
    assert "kept note" in md_path.read_text() and "9 s" not in md_path.read_text()


def test_event_latency_percentiles_interpolate_between_ranks():
    from localdev.benchmarks.event_latency import percentile

    assert percentile([30.0], 0.95) == 30.0
    assert percentile([10.0, 20.0, 30.0], 0.5) == 20.0
    assert percentile([10.0, 20.0, 30.0], 0.95) == pytest.approx(29.0)
    twenty = [float(i) for i in range(1, 21)]  # the full mode's 20 uploads: p95 between the 19th and 20th
    assert percentile(list(reversed(twenty)), 0.95) == pytest.approx(19.05)
