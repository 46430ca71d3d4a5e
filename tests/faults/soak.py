"""A seeded randomized fault soak: imports, re-uploads, retention runs, crashes at random checkpoints,
short BigQuery outages and concurrent launches over a few intervals, with the data-safety invariants
checked after every step.

    .venv/bin/python -m tests.faults.soak --schedules 200 [--seed 1] [--steps 14]   # starts its own emulators

CI runs a few schedules (``tests/faults/test_soak.py``). A failing schedule raises with its seed, so
``--seed N --schedules 1`` replays it exactly (the worker's own randomness — attempt tokens — does not
change which code paths run).

Invariants (after every step):
1. no GCS object is deleted unless its rows are in BigQuery (its interval's raw table, and for
   Incremental the clean table) and the ledger holds the record of its load in a sealed interval;
2. no row appears twice in a raw table or in the clean table;
and at the end, after a settling import of every interval:
3. each recorded interval's raw table holds exactly the rows of the object generations the ledger
   records for it; the clean table equals what those raw tables say (Incremental: every interval;
   Overwrite: the newest recorded interval).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.cloud import bigquery, storage

import worker.planning
from localdev.samples import encode_rows, score_rows, upload
from tests.emulators.worker_helpers import PROJECT_ID, import_window, make_spec, retain, table_exists
from tests.faults.harness import SimulatedCrash, TcpProxy, at_checkpoint
from worker.clients import RetryBudget
from worker.errors import WorkerError
from worker.spec import ImportSpec

DAYS = [datetime(2024, 1, d, tzinfo=UTC) for d in (5, 6, 7)]
IMPORT_POINTS = ["import.listed", "load.batch_loaded", "load.copied", "import.published", "import.recorded",
                 "import.before_publish"]
RETENTION_POINTS = ["retention.planned", "retention.sealed", "retention.batch_deleted", "retention.deleted"]
AS_OF_CHOICES = [datetime(2024, 1, 8, tzinfo=UTC), datetime(2024, 1, 9, 12, tzinfo=UTC),
                 datetime(2024, 1, 10, 12, tzinfo=UTC), datetime(2024, 1, 12, tzinfo=UTC)]
#: Failures an import may end with on purpose: a re-upload into a sealed interval is refused.
EXPECTED_FAILURES = ("were re-uploaded since",)


class SoakFailure(AssertionError):
    pass


@dataclass
class Schedule:
    seed: int
    spec: ImportSpec
    gcs: storage.Client
    bq: bigquery.Client
    bucket: storage.Bucket
    proxy: TcpProxy
    rng: random.Random
    #: (object name, generation) -> the addresses of the rows it holds.
    uploaded: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    #: object name -> current generation, as this schedule last saw it.
    current: dict[str, int] = field(default_factory=dict)
    deleted: set[tuple[str, int]] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    _seeds: int = 0

    # -- steps ------------------------------------------------------------------

    def upload(self, d: datetime, name: str | None = None) -> None:
        self._seeds += 1
        name = name or f"{self.spec.path_base}/{d:%Y-%m-%d}/part{self._seeds:03d}.parquet"
        rows = score_rows(interval_start=d, count=self.rng.randint(1, 4), seed=self.seed * 1000 + self._seeds)
        blob = upload(self.bucket, name, encode_rows(rows, fmt="PARQUET"))
        self.uploaded[(name, int(blob.generation))] = {r["address"] for r in rows}
        self.current[name] = int(blob.generation)

    def step(self, index: int) -> None:
        kind = self.rng.choices(["upload", "reupload", "import", "retention"], weights=[3, 1, 5, 2])[0]
        d = self.rng.choice(DAYS)
        if kind == "upload":
            self.log.append(f"{index}: upload into {d:%m-%d}")
            self.upload(d)
        elif kind == "reupload":
            names = [n for n in self.current if f"/{d:%Y-%m-%d}/" in n]
            if not names:
                return self.step(index)
            name = self.rng.choice(sorted(names))
            self.log.append(f"{index}: re-upload {name}")
            self.upload(d, name)
        elif kind == "import":
            first = self.rng.randrange(len(DAYS))
            last = self.rng.randrange(first, len(DAYS))
            fault = self.rng.choice([None, "crash", "outage", "concurrent"])
            point = self.rng.choice(IMPORT_POINTS)
            self.log.append(f"{index}: import {DAYS[first]:%m-%d}..{DAYS[last]:%m-%d} fault={fault}@{point}")
            self._faulted(lambda: self._import(DAYS[first], DAYS[last]), fault, point)
        else:
            as_of = self.rng.choice(AS_OF_CHOICES)
            fault = self.rng.choice([None, "crash", "concurrent"])
            point = self.rng.choice(RETENTION_POINTS)
            self.log.append(f"{index}: retention as of {as_of:%m-%d %H} fault={fault}@{point}")
            self._faulted(lambda: retain(self.spec, self.gcs, self.bq, as_of=as_of, budget=RetryBudget(20)), fault, point)

    def _import(self, first: datetime, last: datetime) -> None:
        try:
            import_window(self.spec, self.gcs, self.bq, first, last + timedelta(days=1), budget=RetryBudget(20))
        except WorkerError as exc:
            if not any(marker in str(exc) for marker in EXPECTED_FAILURES):
                raise

    def _faulted(self, operation: Callable[[], None], fault: str | None, point: str) -> None:
        if fault is None:
            operation()
            return
        if fault == "crash":
            def action() -> None:
                raise SimulatedCrash(point)
        elif fault == "outage":
            def action() -> None:
                self.proxy.down_for(1.0)
        else:
            other = self.rng.choice(DAYS)
            def action() -> None:
                self.log.append(f"   concurrent import of {other:%m-%d} at {point}")
                self._import(other, other)
        try:
            with at_checkpoint(point, action):
                operation()
        except SimulatedCrash:
            pass

    # -- invariants -----------------------------------------------------------

    def observe_deletes(self) -> None:
        """Objects gone from GCS at their current generation were deleted (only retention deletes)."""
        listed = {b.name: int(b.generation) for b in self.gcs.list_blobs(self.bucket.name)}
        for name, generation in list(self.current.items()):
            if name not in listed:
                self.deleted.add((name, generation))
                del self.current[name]

    def check_step(self) -> None:
        self.observe_deletes()
        ledger = self._ledger()
        for name, generation in self.deleted:
            d = self._day_of(name)
            where = f"gs://{self.bucket.name}/{name}#{generation}"
            row = ledger.get((name, generation))
            # deleted_at may lag (a retention killed after its deletes stamps them on its next run); the
            # record of the load and the interval's seal may not.
            if row is None or row["sealed_at"] is None:
                raise SoakFailure(f"{where} was deleted but the ledger has no sealed record of its load: {row}")
            missing = self.uploaded[(name, generation)] - self._addresses(self.spec.raw_table_id(d))
            if missing:
                raise SoakFailure(f"{where} was deleted but {len(missing)} of its rows are not in its raw table")
            if self.spec.mode.value == "Incremental":
                missing = self.uploaded[(name, generation)] - self._addresses(self.spec.clean_table_id, day=d)
                if missing:
                    raise SoakFailure(f"{where} was deleted but {len(missing)} of its rows are not in the clean table")
        for table_id in [self.spec.clean_table_id, *(self.spec.raw_table_id(d) for d in DAYS)]:
            rows = self._rows(table_id)
            if len(rows) != len(set(rows)):
                raise SoakFailure(f"{table_id} holds {len(rows) - len(set(rows))} duplicate rows")

    def check_settled(self) -> None:
        """After a settling import: raw and clean tables are exactly what the ledger says was loaded."""
        self._import(DAYS[0], DAYS[-1])
        self.check_step()
        ledger = self._ledger()
        expected: dict[datetime, set[str]] = {}
        for (name, generation), _row in ledger.items():
            if generation:  # 0: an unrecorded append recovered without its generation (see worker.run)
                expected.setdefault(self._day_of(name), set()).update(self.uploaded[(name, generation)])
        for d, addresses in expected.items():
            got = self._addresses(self.spec.raw_table_id(d))
            if got != addresses:
                raise SoakFailure(f"raw table of {d:%m-%d}: {len(got)} addresses, the ledger says {len(addresses)} "
                                  f"(missing {len(addresses - got)}, extra {len(got - addresses)})")
            if self.spec.mode.value == "Incremental" and self._addresses(self.spec.clean_table_id, day=d) != addresses:
                raise SoakFailure(f"clean table rows of {d:%m-%d} differ from the ledger's loaded generations")
        if self.spec.mode.value == "Overwrite" and expected:
            newest = max(expected)
            if self._addresses(self.spec.clean_table_id) != expected[newest]:
                raise SoakFailure(f"the Overwrite clean table does not hold the newest interval {newest:%m-%d}")

    def _ledger(self) -> dict[tuple[str, int], dict]:
        table = self.spec.ledger_table_id
        if not table_exists(self.bq, table):
            return {}
        rows = self.bq.query(f"SELECT * FROM `{table.replace('.', '`.`')}` WHERE asset = @a",
                             job_config=bigquery.QueryJobConfig(query_parameters=[
                                 bigquery.ScalarQueryParameter("a", "STRING", self.spec.name)])).result()
        return {(r["object_name"], int(r["generation"])): dict(r.items()) for r in rows}

    def _rows(self, table_id: str) -> list[tuple]:
        if not table_exists(self.bq, table_id):
            return []
        return [(r["address"], r["day"]) for r in self.bq.query(f"SELECT address, day FROM `{table_id.replace('.', '`.`')}`").result()]

    def _addresses(self, table_id: str, *, day: datetime | None = None) -> set[str]:
        return {a for a, d in self._rows(table_id) if day is None or d == f"{day:%Y-%m-%d}"}

    def _day_of(self, name: str) -> datetime:
        return datetime.strptime(name.split("/")[1], "%Y-%m-%d").replace(tzinfo=UTC)


def run_schedule(seed: int, *, steps: int, gcs: storage.Client, services_bq_endpoint: str) -> list[str]:
    """One schedule drawn from ``seed``; returns its step log. Raises SoakFailure naming the seed."""
    import os

    from worker.clients import bigquery_client

    rng = random.Random(seed)
    name = f"soak{seed}_{os.getpid()}_{rng.randrange(10**6)}"
    mode = rng.choice(["Overwrite", "Incremental"])
    bucket = gcs.create_bucket(name.replace("_", "-"))
    spec = make_spec(bucket.name, name, mode=mode, retention_days=3)
    proxy = TcpProxy(services_bq_endpoint)
    saved = os.environ.get("BIGQUERY_EMULATOR_HOST")
    os.environ["BIGQUERY_EMULATOR_HOST"] = proxy.endpoint
    saved_batch = worker.planning.MAX_DELETES_PER_BATCH
    worker.planning.MAX_DELETES_PER_BATCH = 2  # several delete batches with a handful of files
    schedule = Schedule(seed=seed, spec=spec, gcs=gcs, bq=bigquery_client(project_id=PROJECT_ID), bucket=bucket,
                        proxy=proxy, rng=rng)
    schedule.log.append(f"seed {seed}: {mode}")
    try:
        for d in DAYS:
            schedule.upload(d)
        for index in range(steps):
            schedule.step(index)
            schedule.check_step()
        schedule.check_settled()
    except Exception as exc:
        raise SoakFailure(f"soak seed {seed} failed ({type(exc).__name__}: {exc}); replay with "
                          f"python -m tests.faults.soak --seed {seed} --schedules 1\n" + "\n".join(schedule.log)) from exc
    finally:
        worker.planning.MAX_DELETES_PER_BATCH = saved_batch
        if saved is None:
            os.environ.pop("BIGQUERY_EMULATOR_HOST", None)
        else:
            os.environ["BIGQUERY_EMULATOR_HOST"] = saved
        proxy.down()
    return schedule.log


def main() -> None:
    import logging
    import os

    from localdev.services import run_local_services
    from worker.clients import storage_client

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="first seed; schedule i uses seed + i")
    parser.add_argument("--steps", type=int, default=14)
    args = parser.parse_args()
    logging.getLogger("worker").setLevel(logging.WARNING)
    failures = []
    with run_local_services() as services:
        os.environ.update(services.env())
        gcs = storage_client(project_id=PROJECT_ID)
        for seed in range(args.seed, args.seed + args.schedules):
            try:
                run_schedule(seed, steps=args.steps, gcs=gcs, services_bq_endpoint=services.bigquery_endpoint)
                print(f"seed {seed}: ok", flush=True)
            except SoakFailure as exc:
                failures.append(seed)
                print(f"seed {seed}: FAILED\n{exc}", flush=True)
    print(f"{args.schedules} schedules of {args.steps} steps: {args.schedules - len(failures)} passed, "
          f"{len(failures)} failed {failures}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
