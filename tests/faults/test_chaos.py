"""Chaos mode: the real worker (a subprocess) imports and applies retention while the conformance proxy
answers a seeded share of its requests with Google's documented transient errors; the end state equals
an uninterrupted run without chaos, and the chaos is shown to have fired."""

from __future__ import annotations

import pytest

from tests.emulators.worker_helpers import cli_import, run_cli, write_spec
from tests.faults.harness import duplicate_rows, end_state
from tests.faults.test_kill_points import AS_OF, DAYS, WINDOW, comparable, make_pair

RATE = 0.08


@pytest.fixture
def pair(gcs_client, unique_name):
    return make_pair(gcs_client, unique_name)


def _import_and_retain(spec_path) -> None:
    imported = cli_import(spec_path, WINDOW[1], WINDOW[3], timeout=300)
    assert imported.returncode == 0, imported.stderr[-2000:]
    retained = run_cli(["retention", "--spec", str(spec_path), "--as-of", AS_OF.isoformat()], timeout=300)
    assert retained.returncode == 0, retained.stderr[-2000:]


@pytest.mark.parametrize("mode", ["Overwrite", "Incremental"])
def test_a_run_under_chaos_ends_as_a_run_without(mode, pair, conformance, bq_client, tmp_path):
    (spec, bucket), (ref_spec, ref_bucket) = pair(mode)
    _import_and_retain(write_spec(tmp_path, ref_spec, "ref.json"))
    expected = end_state(ref_spec, bq_client, ref_bucket, days=DAYS)

    with conformance.chaos(seed=17, rate=RATE):
        _import_and_retain(write_spec(tmp_path, spec, "chaos.json"))
        injected = conformance.chaos_injected
    assert sum(injected.values()) >= 3, f"chaos must have fired: {injected}"

    state = end_state(spec, bq_client, bucket, days=DAYS)
    assert comparable(state) == comparable(expected), f"{state.describe()} != {expected.describe()}"
    if state.clean_rows:
        assert duplicate_rows(bq_client, spec.clean_table_id) == 0


def test_a_failed_token_refresh_is_retried(conformance, services, bucket, unique_name):
    """The first token refresh of the run's clients is cut (google-auth raises TransportError, as when the
    metadata server is briefly unreachable); the run retries it and loads every row."""
    from localdev.conformance import ChaosKind
    from tests.emulators.worker_helpers import day, drop_days, import_window, make_spec, rows_per_interval
    from worker.bigquery_client import bigquery_client
    from worker.core.gcs import storage_client

    spec = make_spec(bucket.name, unique_name, mode="Incremental")
    drop_days(bucket, spec, [day(5)], rows=4)
    gcs, bq = storage_client(project_id=services.project_id), bigquery_client(project_id=services.project_id)
    with conformance.chaos(seed=1, rate=0.5, kinds=frozenset({ChaosKind.TOKEN_REFRESH_FAILURE})):
        import_window(spec, gcs, bq, day(5))
        cut = conformance.chaos_injected.get(ChaosKind.TOKEN_REFRESH_FAILURE.value, 0)
    assert cut >= 1, "the refresh must have been cut at least once"
    assert rows_per_interval(bq, spec) == {day(5): 4}
