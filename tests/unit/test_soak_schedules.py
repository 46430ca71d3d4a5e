"""The fault soak's draws (:mod:`tests.faults.soak`): kills land only on checkpoint passages the step makes,
and the quick CI set is balanced between the modes."""

from __future__ import annotations

import random
from collections import Counter

from tests.faults.soak import MODES, draw_kill, mode_of
from tests.faults.test_soak import CI_SEEDS

#: What uninterrupted runs pass (recorded from the soak's reference runs): a 3-interval Overwrite import,
#: an Incremental import with one new interval, a no-op import, a retention run with two delete batches.
OVERWRITE_IMPORT = ["import.listed", "load.batch_loaded", "load.copied", "import.recorded", "load.batch_loaded",
                    "load.copied", "import.recorded", "import.before_publish", "import.published"]
INCREMENTAL_IMPORT = ["import.listed", "load.batch_loaded", "load.copied", "import.published", "import.recorded"]
NOOP_IMPORT = ["import.listed"]
RETENTION = ["retention.planned", "retention.sealed", "retention.batch_deleted", "retention.batch_deleted",
             "retention.deleted"]


def test_a_step_that_passes_no_checkpoint_draws_no_kill():
    rng = random.Random(1)
    assert all(draw_kill(rng, [], rate=1.0) is None for _ in range(50))


def test_rate_zero_never_kills_and_rate_one_always_does():
    rng = random.Random(2)
    assert all(draw_kill(rng, RETENTION, rate=0.0) is None for _ in range(50))
    assert all(draw_kill(rng, RETENTION, rate=1.0) is not None for _ in range(50))


def test_kills_land_only_on_passages_the_step_makes_and_reach_every_one():
    for passed in (OVERWRITE_IMPORT, INCREMENTAL_IMPORT, NOOP_IMPORT, RETENTION):
        rng = random.Random(3)
        drawn = Counter(draw_kill(rng, passed, rate=1.0) for _ in range(2000))
        passages = Counter()
        expected = set()
        for name in passed:
            passages[name] += 1
            expected.add((name, passages[name]))
        assert set(drawn) == expected, passed  # each (checkpoint, nth) is a passage; every passage is drawn


def test_mode_specific_checkpoints_are_drawn_only_in_their_mode():
    rng = random.Random(4)
    incremental = {draw_kill(rng, INCREMENTAL_IMPORT, rate=1.0)[0] for _ in range(500)}
    assert "import.before_publish" not in incremental
    overwrite = {draw_kill(rng, OVERWRITE_IMPORT, rate=1.0) for _ in range(500)}
    assert ("import.published", 2) not in overwrite and ("load.copied", 2) in overwrite
    assert ("retention.batch_deleted", 3) not in {draw_kill(rng, RETENTION, rate=1.0) for _ in range(500)}


def test_draws_replay_from_the_seed():
    first = [draw_kill(random.Random(9), OVERWRITE_IMPORT) for _ in range(3)]
    assert first == [draw_kill(random.Random(9), OVERWRITE_IMPORT) for _ in range(3)]


def test_the_ci_set_has_as_many_overwrite_as_incremental_schedules():
    modes = Counter(mode_of(seed) for seed in CI_SEEDS)
    assert modes == {m: len(CI_SEEDS) // 2 for m in MODES} and len(CI_SEEDS) % 2 == 0


def test_any_even_run_of_seeds_is_balanced():
    for start in range(1, 20):
        modes = Counter(mode_of(seed) for seed in range(start, start + 100))
        assert modes["Overwrite"] == modes["Incremental"] == 50
