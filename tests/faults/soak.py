"""A seeded randomized fault soak: uploads, re-uploads, imports and retention runs over three daily intervals,
with the worker run as a real process (``python -m worker``) and SIGKILLed at random checkpoints, every
request optionally through the conformance proxy's chaos (Google's documented transient answers).

Full mode (≥100 schedules, half Overwrite, half Incremental; starts its own emulators)::

    .venv/bin/python -m tests.faults.soak --schedules 100 [--seed 1] [--steps 12] [--chaos-rate 0.03]

or through pytest: ``SOAK_SCHEDULES=100 .venv/bin/python -m pytest tests/faults/test_soak.py``.
CI runs a quick fixed set (``tests/faults/test_soak.py::CI_SEEDS``, as many Overwrite as Incremental).
A failing schedule raises :class:`SoakFailure` naming its seed; ``--seed N --schedules 1`` replays it
(the draws depend only on the seed; chaos is seeded too, though which request it hits depends on timing).

How one schedule runs. Seed ``s`` fixes the mode (``MODES[s % 2]``: any even run of seeds is balanced) and
the steps. Each step is applied to two copies of the same inputs, side by side:

* the *reference*: its own bucket and datasets, the worker run in-process, never interrupted, no chaos;
  a recording hook lists the checkpoints (:mod:`worker.checkpoints`) each of its runs passes;
* the *subject*: the worker CLI in a subprocess. A worker step may draw a kill: one checkpoint passage,
  drawn uniformly from those the reference's run of the same step just passed (so only checkpoints this
  mode and this step reach: e.g. ``import.before_publish`` only for Overwrite, ``retention.batch_deleted``
  only when there is something to delete). The subject is then run by :func:`run_killed`
  (:mod:`tests.faults.kill_at`) and must die by SIGKILL (return code -9, no summary on stdout), else
  the schedule fails ("fault did not fire"). The killed step is then re-run as the orchestrator's retry
  would, so both copies start the next step from what should be the same state; unkilled steps are a
  plain ``python -m worker`` run. Both copies must end each step the same way (done, or the expected
  refusal of a re-upload into a sealed interval).

Checked after every step (subject):
1. no GCS object is deleted unless its rows are in its interval's raw table (and for Incremental the clean
   table) and the ledger holds a sealed record of its load;
2. no row appears twice in a raw table or in the clean table;
after every killed-and-retried step: the subject's end state equals the reference's;
and at the end, after a settling import of every interval on both copies:
3. each raw table holds exactly the rows of the generations the ledger records for it; the clean table
   equals what the raw tables say (Incremental: every interval; Overwrite: the newest recorded interval);
4. the end state (clean and raw rows, ledger without generations/digests/timestamps, GCS object names)
   equals the reference's, with 0 rows lost, 0 extra and 0 duplicated.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.cloud import bigquery, storage

import worker.planning
from localdev.environment import environment
from localdev.samples import encode_rows, score_rows, upload
from tests.emulators.worker_helpers import (
    import_window,
    make_spec,
    retain,
    run_cli,
    table_exists,
    table_rows,
    write_spec,
)
from tests.faults.harness import EndState, end_state, run_killed
from tests.faults.kill_at import KILL_MARKER
from worker import checkpoints
from worker.core.errors import WorkerError
from worker.core.spec import ImportSpec

DAYS = [datetime(2024, 1, d, tzinfo=UTC) for d in (5, 6, 7)]
AS_OF_CHOICES = [datetime(2024, 1, 8, tzinfo=UTC), datetime(2024, 1, 9, 12, tzinfo=UTC),
                 datetime(2024, 1, 10, 12, tzinfo=UTC), datetime(2024, 1, 12, tzinfo=UTC)]
MODES = ("Overwrite", "Incremental")
#: Failures an import may end with on purpose: a re-upload into a sealed interval is refused.
EXPECTED_FAILURES = ("were re-uploaded since",)
#: Chance that a worker step with at least one checkpoint draws a kill.
KILL_RATE = 0.6
#: Retention's delete batch size in every run that can be killed (several batches with a handful of files).
DELETE_BATCH = 2
#: Fraction of the subject's requests the conformance proxy answers with a documented transient error.
DEFAULT_CHAOS_RATE = 0.03
SUBPROCESS_TIMEOUT = 240


class SoakFailure(AssertionError):
    pass


def mode_of(seed: int) -> str:
    """The schedule's mode: alternates with the seed, so every even-length run of seeds is balanced."""
    return MODES[seed % 2]


def draw_kill(rng: random.Random, passed: Sequence[str], *, rate: float = KILL_RATE) -> tuple[str, int] | None:
    """A kill point ``(checkpoint, nth)`` for a step whose uninterrupted run passed ``passed`` (in order),
    or None. Each passage is equally likely; ``nth`` counts the passages of that checkpoint up to it, so
    the kill always lands on a passage the step makes."""
    if not passed or rng.random() >= rate:
        return None
    k = rng.randrange(len(passed))
    return passed[k], passed[: k + 1].count(passed[k])


def comparable(state: EndState) -> tuple:
    """An end state without what differs between two buckets and specs by construction (generations, digests)."""
    return (state.clean_rows, state.clean_checksum, state.raw,
            tuple(sorted((interval, name, rows, deleted) for interval, name, _, rows, deleted, _ in state.ledger)),
            frozenset(name for name, _ in state.objects))


@dataclass
class SoakResult:
    seed: int
    mode: str
    steps: int
    worker_runs: int = 0
    faults_drawn: int = 0
    faults_fired: int = 0
    rows_expected: int = 0
    rows_lost: int = 0
    rows_extra: int = 0
    rows_duplicated: int = 0
    end_state_equal: bool = False
    chaos: dict[str, int] | None = None
    #: checkpoint -> kills that fired there
    kills: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)

    def line(self) -> str:
        chaos = "off" if self.chaos is None else (dict(sorted(self.chaos.items())) or "{}")
        return (f"seed {self.seed} ({self.mode}): {self.steps} steps, {self.worker_runs} worker runs, "
                f"faults drawn {self.faults_drawn} fired {self.faults_fired}, rows {self.rows_expected} expected "
                f"{self.rows_lost} lost {self.rows_extra} extra {self.rows_duplicated} duplicated, end state "
                f"{'equal' if self.end_state_equal else 'DIFFERENT'}, chaos {chaos}, {self.seconds:.1f}s")


@dataclass
class Copy:
    """One copy of the schedule's data: a bucket, a spec (own datasets, shared asset name) and what was uploaded."""

    spec: ImportSpec
    bucket: storage.Bucket
    spec_path: Path
    #: (object name, generation) -> the addresses of the rows it holds.
    uploaded: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    #: object name -> current generation, as this schedule last saw it.
    current: dict[str, int] = field(default_factory=dict)
    deleted: set[tuple[str, int]] = field(default_factory=set)

    def upload(self, name: str, rows: list[dict]) -> None:
        blob = upload(self.bucket, name, encode_rows(rows, fmt="PARQUET"))
        self.uploaded[(name, int(blob.generation))] = {r["address"] for r in rows}
        self.current[name] = int(blob.generation)


@dataclass
class Schedule:
    seed: int
    mode: str
    subject: Copy
    reference: Copy
    gcs: storage.Client
    bq: bigquery.Client
    conformance: Any | None
    chaos_rate: float
    result: SoakResult
    #: the schedule's inputs (steps, days, as-of times)
    rng: random.Random = field(init=False)
    #: kill draws, apart from the inputs: the same seed gives the same steps whatever was killed
    fault_rng: random.Random = field(init=False)
    _uploads: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.fault_rng = random.Random(self.seed * 7919 + 1)

    @property
    def log(self) -> list[str]:
        return self.result.log

    # -- steps ------------------------------------------------------------------

    def upload(self, d: datetime, name: str | None = None) -> None:
        self._uploads += 1
        name = name or f"{self.subject.spec.path_base}/{d:%Y-%m-%d}/part{self._uploads:03d}.parquet"
        rows = score_rows(interval_start=d, count=self.rng.randint(1, 4), seed=self.seed * 1000 + self._uploads)
        for copy in (self.reference, self.subject):
            copy.upload(name, rows)

    def step(self, index: int) -> None:
        kind = self.rng.choices(["upload", "reupload", "import", "retention"], weights=[3, 1, 5, 2])[0]
        d = self.rng.choice(DAYS)
        if kind == "upload":
            self.log.append(f"{index}: upload into {d:%m-%d}")
            self.upload(d)
        elif kind == "reupload":
            names = [n for n in self.reference.current if f"/{d:%Y-%m-%d}/" in n]
            if not names:
                return self.step(index)
            name = self.rng.choice(sorted(names))
            self.log.append(f"{index}: re-upload {name}")
            self.upload(d, name)
        elif kind == "import":
            first = self.rng.randrange(len(DAYS))
            last = self.rng.randrange(first, len(DAYS))
            self.worker_step(f"{index}: import {DAYS[first]:%m-%d}..{DAYS[last]:%m-%d}", "import",
                             DAYS[first], DAYS[last] + timedelta(days=1))
        else:
            as_of = self.rng.choice(AS_OF_CHOICES)
            self.worker_step(f"{index}: retention as of {as_of:%m-%d %H}h", "retention", as_of)
        return None

    def worker_step(self, label: str, action: str, *when: datetime, kill: tuple[str, int] | None = None,
                    force: bool = False) -> None:
        """Run one worker action on both copies: the reference in-process (recording its checkpoints), the
        subject as a process, killed at a checkpoint drawn from the reference's (or ``kill`` when ``force``)."""
        passed, ref_outcome = self._reference_run(action, *when)
        if not force:
            kill = draw_kill(self.fault_rng, passed)
        self.log.append(f"{label}: reference {ref_outcome}, passed {len(passed)} checkpoints"
                        + (f"; kill at {kill[0]} #{kill[1]}" if kill else ""))
        args = self._worker_args(self.subject, action, *when)
        started = time.monotonic()
        with self._chaos(len(self.log)):
            if kill is not None:
                self.result.faults_drawn += 1
                self.result.worker_runs += 1
                killed = run_killed(args, at=kill[0], nth=kill[1], timeout=SUBPROCESS_TIMEOUT,
                                    delete_batch_size=DELETE_BATCH if action == "retention" else None)
                marker = f"{KILL_MARKER} {kill[0]} #{kill[1]}"
                if killed.returncode != -signal.SIGKILL or killed.stdout.strip() or marker not in killed.stderr:
                    raise SoakFailure(f"fault did not fire: the worker was to be SIGKILLed at {kill[0]} #{kill[1]} "
                                      f"(the reference passed {passed}) but exited {killed.returncode}; stderr: "
                                      f"{killed.stderr[-1500:]}")
                self.result.faults_fired += 1
                self.result.kills[kill[0]] += 1
                self.log.append(f"   killed at {kill[0]} #{kill[1]}; retrying")
            self.result.worker_runs += 1
            ran = run_cli(args, timeout=SUBPROCESS_TIMEOUT)
        outcome = self._outcome(ran.returncode, ran.stderr)
        self.log.append(f"   subject {outcome.split(':')[0]} in {time.monotonic() - started:.1f}s")
        if outcome != ref_outcome:
            raise SoakFailure(f"{label}: the subject's run ended {outcome!r}, the uninterrupted reference's "
                              f"{ref_outcome!r}; stderr: {ran.stderr[-1500:]}")
        if kill is not None:
            self.compare("after the killed step's retry")

    def _reference_run(self, action: str, *when: datetime) -> tuple[list[str], str]:
        passed: list[str] = []
        saved = worker.planning.MAX_DELETES_PER_BATCH
        worker.planning.MAX_DELETES_PER_BATCH = DELETE_BATCH
        checkpoints.set_hook(passed.append)
        try:
            if action == "import":
                import_window(self.reference.spec, self.gcs, self.bq, *when)
            else:
                retain(self.reference.spec, self.gcs, self.bq, as_of=when[0])
            outcome = "done"
        except WorkerError as exc:
            outcome = self._outcome(1, f"error: {exc}")
            if outcome.startswith("failed"):
                raise SoakFailure(f"the uninterrupted reference run failed: {exc}") from exc
        finally:
            checkpoints.set_hook(None)
            worker.planning.MAX_DELETES_PER_BATCH = saved
        return passed, outcome

    @staticmethod
    def _worker_args(copy: Copy, action: str, *when: datetime) -> list[str]:
        if action == "import":
            return ["import", "--spec", str(copy.spec_path), "--start", when[0].isoformat(), "--end", when[1].isoformat()]
        return ["retention", "--spec", str(copy.spec_path), "--as-of", when[0].isoformat()]

    @staticmethod
    def _outcome(returncode: int, stderr: str) -> str:
        if returncode == 0:
            return "done"
        if returncode == 1 and any(marker in stderr for marker in EXPECTED_FAILURES):
            return "refused (re-upload into a sealed interval)"
        return f"failed ({returncode}): {stderr.strip()[-1500:]}"

    def _chaos(self, salt: int):
        import contextlib

        if self.conformance is None or self.chaos_rate <= 0:
            return contextlib.nullcontext()
        return self.conformance.chaos(seed=self.seed * 100_003 + salt, rate=self.chaos_rate)

    # -- invariants -----------------------------------------------------------

    def observe_deletes(self, copy: Copy) -> None:
        """Objects gone from GCS at their current generation were deleted (only retention deletes)."""
        listed = {b.name: int(b.generation) for b in self.gcs.list_blobs(copy.bucket.name)}
        for name, generation in list(copy.current.items()):
            if name not in listed:
                copy.deleted.add((name, generation))
                del copy.current[name]

    def check_step(self) -> None:
        self.observe_deletes(self.reference)
        copy = self.subject
        spec = copy.spec
        self.observe_deletes(copy)
        ledger = self._ledger(spec)
        rows = {t: self._rows(t) for t in [spec.clean_table_id, *(spec.raw_table_id(d) for d in DAYS)]}
        for name, generation in copy.deleted:
            d = self._day_of(name)
            where = f"gs://{copy.bucket.name}/{name}#{generation}"
            row = ledger.get((name, generation))
            # deleted_at may lag (a retention killed after its deletes stamps them on its next run); the
            # record of the load and the interval's seal may not.
            if row is None or row["sealed_at"] is None:
                raise SoakFailure(f"{where} was deleted but the ledger has no sealed record of its load: {row}")
            missing = copy.uploaded[(name, generation)] - {a for a, _ in rows[spec.raw_table_id(d)]}
            if missing:
                raise SoakFailure(f"{where} was deleted but {len(missing)} of its rows are not in its raw table")
            if self.mode == "Incremental":
                clean = {a for a, day in rows[spec.clean_table_id] if day == f"{d:%Y-%m-%d}"}
                if copy.uploaded[(name, generation)] - clean:
                    raise SoakFailure(f"{where} was deleted but some of its rows are not in the clean table")
        for table_id, table in rows.items():
            if len(table) != len(set(table)):
                raise SoakFailure(f"{table_id} holds {len(table) - len(set(table))} duplicate rows")

    def settle(self) -> None:
        """A last import of every interval on both copies, then invariants 3 and 4."""
        self.worker_step("settle: import of every interval", "import", DAYS[0], DAYS[-1] + timedelta(days=1),
                         kill=None, force=True)
        self.check_step()
        spec = self.subject.spec
        ledger = self._ledger(spec)
        expected: dict[datetime, set[str]] = {}
        for (name, generation), _row in ledger.items():
            if generation:  # 0: an unrecorded append recovered without its generation (see worker.run)
                expected.setdefault(self._day_of(name), set()).update(self.subject.uploaded[(name, generation)])
        for d, addresses in expected.items():
            got = {a for a, _ in self._rows(spec.raw_table_id(d))}
            if got != addresses:
                raise SoakFailure(f"raw table of {d:%m-%d}: {len(got)} addresses, the ledger says {len(addresses)} "
                                  f"(missing {len(addresses - got)}, extra {len(got - addresses)})")
            if self.mode == "Incremental" and {a for a, day in self._rows(spec.clean_table_id)
                                               if day == f"{d:%Y-%m-%d}"} != addresses:
                raise SoakFailure(f"clean table rows of {d:%m-%d} differ from the ledger's loaded generations")
        if self.mode == "Overwrite" and expected:
            newest = max(expected)
            if {a for a, _ in self._rows(spec.clean_table_id)} != expected[newest]:
                raise SoakFailure(f"the Overwrite clean table does not hold the newest interval {newest:%m-%d}")
        self.compare("at the end")

    def compare(self, when: str) -> None:
        """Invariant 4: the subject's end state is the reference's; rows lost/extra/duplicated counted."""
        got = end_state(self.subject.spec, self.bq, self.subject.bucket, days=DAYS)
        want = end_state(self.reference.spec, self.bq, self.reference.bucket, days=DAYS)
        lost = extra = duplicated = expected = 0
        for table_of in (lambda s: s.clean_table_id, *(lambda s, d=d: s.raw_table_id(d) for d in DAYS)):
            mine, theirs = (Counter(self._full_rows(table_of(c.spec))) for c in (self.subject, self.reference))
            expected += sum(theirs.values())
            lost += sum((theirs - mine).values())
            extra += sum((mine - theirs).values())
            duplicated += sum(n - 1 for n in mine.values() if n > 1)
        r = self.result
        r.rows_expected, r.rows_lost, r.rows_extra, r.rows_duplicated = expected, lost, extra, duplicated
        r.end_state_equal = comparable(got) == comparable(want)
        if not r.end_state_equal or lost or extra or duplicated:
            raise SoakFailure(f"{when}: the end state differs from the uninterrupted reference's ({lost} rows lost, "
                              f"{extra} extra, {duplicated} duplicated)\n  subject:   {got.describe()}\n"
                              f"  reference: {want.describe()}\n  ledger diff: "
                              f"{_diff(comparable(got)[3], comparable(want)[3])}\n  objects diff: "
                              f"{_diff(comparable(got)[4], comparable(want)[4])}")

    def _ledger(self, spec: ImportSpec) -> dict[tuple[str, int], dict]:
        table = spec.ledger_table_id
        if not table_exists(self.bq, table):
            return {}
        rows = self.bq.query(f"SELECT * FROM `{table.replace('.', '`.`')}` WHERE asset = @a",
                             job_config=bigquery.QueryJobConfig(query_parameters=[
                                 bigquery.ScalarQueryParameter("a", "STRING", spec.name)])).result()
        return {(r["object_name"], int(r["generation"])): dict(r.items()) for r in rows}

    def _rows(self, table_id: str) -> list[tuple]:
        if not table_exists(self.bq, table_id):
            return []
        return [(r["address"], r["day"]) for r in self.bq.query(f"SELECT address, day FROM `{table_id.replace('.', '`.`')}`").result()]

    def _full_rows(self, table_id: str) -> list[tuple]:
        return table_rows(self.bq, table_id) if table_exists(self.bq, table_id) else []

    @staticmethod
    def _day_of(name: str) -> datetime:
        return datetime.strptime(name.split("/")[1], "%Y-%m-%d").replace(tzinfo=UTC)


def _diff(got: Any, want: Any) -> str:
    got, want = set(got), set(want)
    return f"only in the subject {sorted(got - want)[:6]}, only in the reference {sorted(want - got)[:6]}"


def chaos_of(services: Any) -> Any | None:
    """``services.conformance`` (the conformance proxy), or None when this checkout has none; under ``CI=true``
    a missing proxy is an error, not a silent soak without chaos."""
    conformance = getattr(services, "conformance", None)
    if conformance is None and os.environ.get("CI") == "true":
        raise SoakFailure("services.conformance is missing or None (localdev/conformance): the soak runs every schedule with "
                          "chaos on in CI and cannot run without the conformance proxy")
    return conformance


def direct_clients(services: Any) -> tuple[storage.Client, bigquery.Client]:
    """GCS and BigQuery clients straight to the emulators, past the conformance proxy when there is one: the
    reference, the uploads and the checks need neither its chaos nor its per-request cost (the subject's
    worker processes still go through it)."""
    from worker.bigquery_client import bigquery_client
    from worker.core.gcs import storage_client

    gcs_host = getattr(services, "emulator_gcs_endpoint", "") or services.gcs_endpoint
    bq_host = getattr(services, "emulator_bigquery_endpoint", "") or services.bigquery_endpoint
    with environment({"STORAGE_EMULATOR_HOST": gcs_host, "BIGQUERY_EMULATOR_HOST": bq_host}):
        return storage_client(project_id=services.project_id), bigquery_client(project_id=services.project_id)


def run_schedule(seed: int, *, steps: int, gcs: storage.Client, bq: bigquery.Client, conformance: Any | None = None,
                 chaos_rate: float = DEFAULT_CHAOS_RATE, force_kill: tuple[str, int] | None = None) -> SoakResult:
    """One schedule drawn from ``seed``; returns its figures. Raises SoakFailure naming the seed.

    ``force_kill`` replaces the first worker step's draw (to check that a kill that does not fire fails).
    """
    started = time.monotonic()
    mode = mode_of(seed)
    name = f"soak{seed}_{os.getpid()}_{random.Random().randrange(10**6)}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}_"))
    copies = []
    for suffix in ("s", "r"):
        bucket = gcs.create_bucket(f"{name}-{suffix}".replace("_", "-"))
        spec = make_spec(bucket.name, f"{name}{suffix}", mode=mode, retention_days=3)
        spec = ImportSpec.from_dict({**spec.to_dict(), "name": f"scores_{name}"})  # the same asset name
        copies.append(Copy(spec=spec, bucket=bucket, spec_path=write_spec(workdir, spec, f"spec_{suffix}.json")))
    result = SoakResult(seed=seed, mode=mode, steps=steps)
    schedule = Schedule(seed=seed, mode=mode, subject=copies[0], reference=copies[1], gcs=gcs, bq=bq,
                        conformance=conformance, chaos_rate=chaos_rate, result=result)
    chaos_before = dict(conformance.chaos_injected) if conformance is not None else None
    result.log.append(f"seed {seed}: {mode}, chaos rate {chaos_rate if conformance is not None else 'off'}")
    try:
        for d in DAYS:
            schedule.upload(d)
        for index in range(steps):
            if force_kill is not None and index == 0:
                schedule.worker_step(f"{index}: import (forced kill)", "import", DAYS[0], DAYS[-1] + timedelta(days=1),
                                     kill=force_kill, force=True)
            else:
                schedule.step(index)
            schedule.check_step()
        schedule.settle()
    except Exception as exc:
        raise SoakFailure(f"soak seed {seed} ({mode}) failed ({type(exc).__name__}: {exc})\nreplay with: "
                          f".venv/bin/python -m tests.faults.soak --seed {seed} --schedules 1 --steps {steps}\n"
                          + "\n".join(result.log)) from exc
    finally:
        if conformance is not None:
            after = conformance.chaos_injected
            result.chaos = {k: n - chaos_before.get(k, 0) for k, n in after.items() if n - chaos_before.get(k, 0)}
        result.seconds = time.monotonic() - started
    return result


def summarize(results: Sequence[SoakResult], failures: Sequence[int] = ()) -> str:
    chaos: Counter[str] = Counter()
    for r in results:
        chaos.update(r.chaos or {})
    modes = Counter(r.mode for r in results)
    kills = {m: dict(sum((r.kills for r in results if r.mode == m), Counter())) for m in MODES}
    return (f"{len(results) + len(failures)} schedules ({dict(modes)} passed, {len(failures)} failed {list(failures)}); "
            f"{sum(r.worker_runs for r in results)} worker runs; faults drawn {sum(r.faults_drawn for r in results)}, "
            f"fired {sum(r.faults_fired for r in results)} {kills}; rows expected {sum(r.rows_expected for r in results)}, "
            f"lost {sum(r.rows_lost for r in results)}, extra {sum(r.rows_extra for r in results)}, duplicated "
            f"{sum(r.rows_duplicated for r in results)}; chaos injected "
            f"{dict(chaos) if any(r.chaos is not None for r in results) else 'off (no conformance proxy)'}; "
            f"{sum(r.seconds for r in results):.0f}s")


def main(argv: Sequence[str] | None = None, *, on_result: Callable[[SoakResult], None] | None = None) -> None:
    import logging

    from localdev.services import run_local_services

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1, help="first seed; schedule i uses seed + i")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--chaos-rate", type=float, default=DEFAULT_CHAOS_RATE)
    args = parser.parse_args(argv)
    logging.getLogger("worker").setLevel(logging.WARNING)
    results: list[SoakResult] = []
    failures: list[int] = []

    # the emulators behind the conformance proxy (the subject's requests and chaos go through it)
    with run_local_services(conformance=True) as services:
        os.environ.update(services.env())
        conformance = chaos_of(services)
        gcs, bq = direct_clients(services)
        for seed in range(args.seed, args.seed + args.schedules):
            try:
                result = run_schedule(seed, steps=args.steps, gcs=gcs, bq=bq, conformance=conformance,
                                      chaos_rate=args.chaos_rate)
            except SoakFailure as exc:
                failures.append(seed)
                print(f"seed {seed}: FAILED\n{exc}", flush=True)
                continue
            results.append(result)
            print(result.line(), flush=True)
            if on_result:
                on_result(result)
    print(summarize(results, failures), flush=True)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
