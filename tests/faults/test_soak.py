"""The seeded fault soak in quick mode: a fixed set of schedules, as many Overwrite as Incremental (see
:mod:`tests.faults.soak` for what a schedule does and for the full command, ≥100 schedules).

``SOAK_SCHEDULES=N`` runs seeds 1..N instead of the quick set.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.soak import DEFAULT_CHAOS_RATE, SoakFailure, chaos_of, direct_clients, run_schedule

#: CI's quick set (seed parity fixes the mode: two Overwrite, two Incremental).
CI_SEEDS = range(1, 5)
CI_STEPS = 7
#: 0.02 in CI (chaos' retry backoffs dominate a schedule's time: the set took 177 s at 0.03); the full soak uses 0.03.
CHAOS_RATE = float(os.environ.get("SOAK_CHAOS_RATE", 0.02 if not os.environ.get("SOAK_SCHEDULES") else DEFAULT_CHAOS_RATE))
SEEDS = range(1, int(os.environ["SOAK_SCHEDULES"]) + 1) if os.environ.get("SOAK_SCHEDULES") else CI_SEEDS


@pytest.mark.parametrize("seed", SEEDS)
def test_soak_schedule_keeps_every_invariant(seed, services):
    conformance = chaos_of(services)  # raises (the test fails, not skips) under CI=true when the proxy is missing
    gcs, bq = direct_clients(services)
    result = run_schedule(seed, steps=CI_STEPS, gcs=gcs, bq=bq, conformance=conformance,
                          chaos_rate=CHAOS_RATE)
    print(result.line())
    print("\n".join(result.log))
    assert result.faults_fired == result.faults_drawn, result.log
    assert result.end_state_equal, result.log
    assert result.rows_expected > 0, "the reference loaded rows (else nothing was compared)"
    assert (result.rows_lost, result.rows_extra, result.rows_duplicated) == (0, 0, 0), result.log
    if conformance is not None and CHAOS_RATE > 0:
        assert result.chaos, "chaos was on but the conformance proxy injected nothing"


def test_a_kill_that_does_not_fire_fails_the_schedule_with_its_seed(services):
    gcs, bq = direct_clients(services)
    with pytest.raises(SoakFailure) as failure:
        run_schedule(7, steps=1, gcs=gcs, bq=bq, force_kill=("no.such.checkpoint", 1))
    message = str(failure.value)
    assert "fault did not fire" in message
    assert "soak seed 7 " in message and "--seed 7 --schedules 1" in message
