"""Run ``python -m worker`` and SIGKILL it at the Nth time it reaches a checkpoint.

    python -m tests.faults.kill_at --at load.copied [--nth 1] [--delete-batch-size 2] -- import --spec ...

The worker is the real program (``worker.__main__.main``); the only addition is the hook
that :mod:`worker.checkpoints` calls at each phase boundary. SIGKILL gives the worker no
chance to clean up: no ``finally``, no staging-table drop, no ledger write — as when a pod
is evicted or the node dies.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import worker.planning
from worker import checkpoints
from worker.__main__ import main


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="kill_at")
    parser.add_argument("--at", required=True, help="checkpoint name")
    parser.add_argument("--nth", type=int, default=1, help="kill on this occurrence (1 = first)")
    parser.add_argument("--delete-batch-size", type=int, help="retention batch size (to have several batches)")
    return parser.parse_args(argv[:split]), argv[split + 1 :]


if __name__ == "__main__":
    options, worker_argv = _parse(sys.argv[1:])
    if options.delete_batch_size:
        worker.planning.MAX_DELETES_PER_BATCH = options.delete_batch_size
    seen = 0

    def kill(name: str) -> None:
        global seen
        if name == options.at:
            seen += 1
            if seen == options.nth:
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.set_hook(kill)
    sys.exit(main(worker_argv))
