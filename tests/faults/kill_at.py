"""Run ``python -m worker`` and SIGKILL it at the Nth time it reaches a checkpoint.

    python -m tests.faults.kill_at --at load.copied [--nth 1] [--delete-batch-size 2] -- import --spec ...

The worker is the real program (``worker.__main__.main``); the only addition is the hook
that :mod:`worker.checkpoints` calls at each phase boundary. SIGKILL gives the worker no
chance to clean up: no ``finally``, no staging-table drop, no ledger write — as when a pod
is evicted or the node dies.

Pause mode (instead of ``--at``): hold the worker at the Nth time it reaches a checkpoint while
the test runs something else (e.g. a second worker), then let it go on, unkilled::

    python -m tests.faults.kill_at --pause-at load.copied [--nth 1] --signal-file PATH \\
        --release-file PATH [--pause-timeout 600] -- import --spec ...

At the checkpoint it writes ``--signal-file`` (atomically; its content is every checkpoint passed
so far, one per line, the paused one last), waits until ``--release-file`` exists, and continues.
No release within ``--pause-timeout`` seconds: exit 3 without continuing (never a hung process).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import worker.planning
from worker import checkpoints
from worker.__main__ import main

#: Printed on stderr right before the SIGKILL: ``kill_at: SIGKILL at <checkpoint> #<nth>``.
KILL_MARKER = "kill_at: SIGKILL at"

#: Exit status of a paused worker whose release never came.
PAUSE_TIMED_OUT = 3


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="kill_at")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", help="checkpoint name")
    where.add_argument("--pause-at", help="checkpoint name: pause there (see --signal-file, --release-file), no kill")
    parser.add_argument("--nth", type=int, default=1, help="kill on this occurrence (1 = first)")
    parser.add_argument("--delete-batch-size", type=int, help="retention batch size (to have several batches)")
    parser.add_argument("--signal-file", help="with --pause-at: written when the worker pauses")
    parser.add_argument("--release-file", help="with --pause-at: the worker continues once this file exists")
    parser.add_argument("--pause-timeout", type=float, default=600.0,
                        help=f"with --pause-at: seconds to wait for the release before exiting {PAUSE_TIMED_OUT}")
    options = parser.parse_args(argv[:split])
    if options.pause_at and not (options.signal_file and options.release_file):
        parser.error("--pause-at needs --signal-file and --release-file")
    return options, argv[split + 1 :]


def _pause(passed: list[str], signal_file: str, release_file: str, timeout: float) -> None:
    """Say where the worker stopped (atomically), then wait for the release."""
    partial = f"{signal_file}.partial"
    with open(partial, "w") as handle:
        handle.write("".join(f"{name}\n" for name in passed))
    os.replace(partial, signal_file)
    deadline = time.monotonic() + timeout
    while not os.path.exists(release_file):
        if time.monotonic() > deadline:
            print(f"kill_at: paused at {passed[-1]} and never released ({release_file} missing after {timeout:g} s)",
                  file=sys.stderr, flush=True)
            os._exit(PAUSE_TIMED_OUT)
        time.sleep(0.05)


if __name__ == "__main__":
    options, worker_argv = _parse(sys.argv[1:])
    if options.delete_batch_size:
        worker.planning.MAX_DELETES_PER_BATCH = options.delete_batch_size
    seen = 0
    passed: list[str] = []

    def kill(name: str) -> None:
        global seen
        if name == options.at:
            seen += 1
            if seen == options.nth:
                # the marker a fault test reads to know the kill fired here (stderr is unbuffered text)
                print(f"{KILL_MARKER} {name} #{seen}", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

    def pause(name: str) -> None:
        global seen
        passed.append(name)
        if name == options.pause_at:
            seen += 1
            if seen == options.nth:
                sys.stderr.flush()
                _pause(passed, options.signal_file, options.release_file, options.pause_timeout)

    checkpoints.set_hook(pause if options.pause_at else kill)
    sys.exit(main(worker_argv))
