"""The seeded fault soak in quick mode: a few schedules (see :mod:`tests.faults.soak` for the full command)."""

from __future__ import annotations

import pytest

from tests.faults.soak import run_schedule

#: CI's quick mode; ``python -m tests.faults.soak --schedules 200`` runs hundreds on demand.
CI_SEEDS = range(1, 5)


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_soak_schedule_keeps_every_invariant(seed, services, gcs_client):
    log = run_schedule(seed, steps=12, gcs=gcs_client, services_bq_endpoint=services.bigquery_endpoint)
    assert len(log) > 12, "every step was logged (and its invariants checked)"
