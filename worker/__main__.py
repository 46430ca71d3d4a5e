"""Entry point: ``python -m worker``.

Under Dagster Pipes (``DAGSTER_PIPES_CONTEXT`` set by the launcher) the run is
described by the Pipes extras (see :mod:`worker.core.contract`) and the partition
window; results go back as one materialization, asset checks and log lines.

Standalone, for debugging a container by hand::

    python -m worker import --spec spec.json --start 2024-01-05 [--end 2024-01-08] [--load-incomplete]
    python -m worker retention --spec spec.json [--dry-run] [--as-of 2024-02-01]
    python -m worker migrate-ledger --spec spec.json [--force]   # an unpartitioned ledger -> partitioned

prints a JSON summary on stdout. Any failure exits non-zero with the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from worker.bigquery_client import bigquery_client
from worker.core import contract as c
from worker.core.errors import TransientError, WorkerError, explain_unexpected
from worker.core.gcs import storage_client
from worker.core.intervals import parse_iso
from worker.core.retries import DEFAULT_RETRY_DEADLINE_SECONDS, RetryBudget
from worker.core.spec import ImportSpec, SpecError
from worker.ledger import Ledger, migrate_to_partitioned
from worker.reporting import (
    LogReporter,
    PipesReporter,
    Reporter,
    import_checks,
    import_metadata,
    import_summary_json,
    retention_summary_json,
)
from worker.run import run_import, run_retention, window_starts


def _run(*, spec: ImportSpec, action: c.Action, window: tuple[datetime, datetime] | None, dry_run: bool,
         as_of: datetime | None, retry_deadline: float, reporter: Reporter, load_incomplete: bool = False):
    if window is not None:
        window_starts(spec, *window)  # before any client exists: a wrong window is named even without credentials
    gcs = storage_client(project_id=spec.project_id)
    bq = bigquery_client(project_id=spec.project_id, location=spec.location)
    budget = RetryBudget(deadline_seconds=retry_deadline)
    if action is c.Action.IMPORT:
        if window is None:
            raise WorkerError("No interval window: run the asset for a partition (or range), or pass "
                              f"{c.EXTRA_WINDOW_START}/{c.EXTRA_WINDOW_END} in the extras.")
        return run_import(spec=spec, window_start=window[0], window_end=window[1], gcs=gcs, bq=bq,
                          reporter=reporter, budget=budget, load_incomplete=load_incomplete)
    return run_retention(spec=spec, gcs=gcs, bq=bq, reporter=reporter, as_of=as_of or datetime.now(UTC),
                         dry_run=dry_run, budget=budget)


def run_under_pipes() -> None:
    """Read the run from the Pipes extras and report back through Pipes (stdout, or GCS objects when the
    launcher chose the GCS channel: :mod:`worker.core.pipes_channel`)."""
    from worker.core.pipes_channel import open_worker_pipes

    with open_worker_pipes() as pipes:
        try:
            _run_pipes_session(pipes)
        except (WorkerError, SpecError) as exc:
            _report_failure(pipes, exc)
            raise
        except Exception as exc:  # the step failure carries the same one line as the CLI's "error:"
            error = WorkerError(explain_unexpected(exc))
            _report_failure(pipes, error)
            raise error from exc


def _report_failure(pipes: Any, error: Exception) -> None:
    """Tell the launcher, as data, whether ``error`` is transient (the step is then retried).

    Sent as a Pipes custom message (:data:`worker.core.contract.REPORT_FAILURE`) before ``open_dagster_pipes``
    sends its ``closed`` message with the exception. Never raises: a report that cannot be sent leaves the
    launcher its fallback (the error's class name), and must not replace the error itself.
    """
    with contextlib.suppress(Exception):  # the failure itself is reported by the closed message that follows
        pipes.report_custom_message({c.REPORT_FAILURE: {
            c.FAILURE_TRANSIENT: isinstance(error, TransientError),
            c.FAILURE_ERROR: type(error).__name__,
            c.FAILURE_MESSAGE: str(error),
        }})


def _run_pipes_session(pipes: Any) -> None:
    extras: Mapping[str, Any] = pipes.extras
    spec = ImportSpec.from_dict(extras[c.EXTRA_SPEC])
    action = c.Action(extras.get(c.EXTRA_ACTION, c.Action.IMPORT.value))
    window = None
    if extras.get(c.EXTRA_WINDOW_START) and extras.get(c.EXTRA_WINDOW_END):
        window = (parse_iso(extras[c.EXTRA_WINDOW_START]), parse_iso(extras[c.EXTRA_WINDOW_END]))
    elif pipes.is_partition_step and pipes.partition_time_window:
        tw = pipes.partition_time_window
        window = (parse_iso(tw["start"]), parse_iso(tw["end"]))
    as_of = parse_iso(extras[c.EXTRA_AS_OF]) if extras.get(c.EXTRA_AS_OF) else None
    load_incomplete = extras.get(c.EXTRA_LOAD_INCOMPLETE, False)
    if not isinstance(load_incomplete, bool):
        raise WorkerError(f"extra {c.EXTRA_LOAD_INCOMPLETE!r} is {load_incomplete!r}: give true or false.")
    summary = _run(
        spec=spec, action=action, window=window, dry_run=bool(extras.get(c.EXTRA_DRY_RUN, False)), as_of=as_of,
        retry_deadline=float(extras.get(c.EXTRA_RETRY_DEADLINE) or DEFAULT_RETRY_DEADLINE_SECONDS),
        reporter=PipesReporter(pipes), load_incomplete=load_incomplete,
    )
    if action is c.Action.IMPORT:
        pipes.report_asset_materialization(metadata=import_metadata(summary), data_version=summary.data_version)
        for check in import_checks(summary):
            pipes.report_asset_check(**check)
    else:
        pipes.report_custom_message(retention_summary_json(summary))
        pipes.log.info(f"Retention summary: {json.dumps(retention_summary_json(summary))}")


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose refusal of a flag is one ``error:`` line (a :class:`WorkerError`, exit code 1) naming the
    flag and pointing at ``--help``, instead of a usage block and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        raise WorkerError(f"{self.prog}: {message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m worker", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="load the intervals of a window and publish them")
    imp.add_argument("--spec", required=True, help="JSON file with the import spec (ImportSpec.to_dict())")
    imp.add_argument("--start", required=True, help="first interval (ISO date or datetime)")
    imp.add_argument("--end", help="end of the window, exclusive (default: the interval after --start)")
    imp.add_argument("--load-incomplete", action="store_true",
                     help="load intervals the spec's complete_when finds incomplete (default: report them incomplete)")
    ret = sub.add_parser("retention", help="delete loaded objects of intervals past retention_days")
    ret.add_argument("--spec", required=True, help="JSON file with the import spec")
    ret.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    ret.add_argument("--as-of", help="count retention back from this ISO time (default: now)")
    mig = sub.add_parser("migrate-ledger", help="move an unpartitioned ledger into a partitioned one (keeps a backup)")
    mig.add_argument("--spec", required=True, help="JSON file with an import spec of the raw dataset")
    mig.add_argument("--force", action="store_true", help="migrate even though the ledger was written recently")
    for p in (imp, ret, mig):
        p.add_argument("--retry-deadline", type=float, default=DEFAULT_RETRY_DEADLINE_SECONDS,
                       help="seconds to keep retrying an unreachable endpoint (default: %(default)s)")
    return parser


def _flag_time(flag: str, text: str) -> datetime:
    """An ISO date or datetime from a command-line flag, or a WorkerError naming the flag."""
    try:
        return parse_iso(text)
    except ValueError:
        raise WorkerError(f"{flag} {text!r} is not an ISO date or datetime: use e.g. 2024-01-05 or "
                          "2024-01-05T13:00:00Z.") from None


def run_standalone(argv: Sequence[str]) -> None:
    args = _parser().parse_args(argv)
    try:
        with open(args.spec) as handle:
            spec = ImportSpec.from_dict(json.load(handle))
    except OSError as exc:
        raise WorkerError(f"cannot read spec file {args.spec!r}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise WorkerError(f"spec file {args.spec!r} is not JSON: {exc}") from exc
    if args.action == "migrate-ledger":
        bq = bigquery_client(project_id=spec.project_id, location=spec.location)
        ledger = Ledger(bq, spec, budget=RetryBudget(deadline_seconds=args.retry_deadline))
        json.dump(migrate_to_partitioned(ledger, now=datetime.now(UTC), force=args.force), sys.stdout)
        sys.stdout.write("\n")
        return
    action = c.Action(args.action)
    window = None
    if action is c.Action.IMPORT:
        start = spec.interval.floor(_flag_time("--start", args.start))
        try:
            end = _flag_time("--end", args.end) if args.end else spec.interval.next_start(start)
        except OverflowError:
            raise WorkerError(f"--start {args.start!r} is too late: the interval after it is past year 9999; "
                              "pass an earlier --start.") from None
        window = (start, end)
    if not 0 < args.retry_deadline <= 86_400:
        raise WorkerError(f"--retry-deadline {args.retry_deadline!r} must be more than 0 and at most 86400 seconds.")
    summary = _run(spec=spec, action=action, window=window, dry_run=getattr(args, "dry_run", False),
                   as_of=_flag_time("--as-of", args.as_of) if getattr(args, "as_of", None) else None,
                   retry_deadline=args.retry_deadline, reporter=LogReporter(),
                   load_incomplete=getattr(args, "load_incomplete", False))
    out = import_summary_json(summary) if action is c.Action.IMPORT else retention_summary_json(summary)
    json.dump(out, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    if os.environ.get("DAGSTER_PIPES_CONTEXT") and not argv and len(sys.argv) <= 1:
        run_under_pipes()  # open_dagster_pipes reports any exception to Dagster before it propagates
        return 0
    try:
        run_standalone(list(argv) if argv is not None else sys.argv[1:])
    except (WorkerError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # never a traceback: one line that says what failed (set GCS_IMPORT_DEBUG=1 for it)
        if os.environ.get("GCS_IMPORT_DEBUG"):
            raise
        print(f"error: {explain_unexpected(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
