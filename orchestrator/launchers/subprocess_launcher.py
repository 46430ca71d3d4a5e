"""``kind="subprocess"``: the worker as a child process of the Dagster step (local development)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster import PipesTempFileMessageReader

from orchestrator.launchers.failures import RecordsHandler
from orchestrator.launchers.settings import WORKER_COMMAND


class SubprocessMessageReader(RecordsHandler, PipesTempFileMessageReader):
    """``PipesSubprocessClient``'s default reader (a temporary file) that keeps the launch's message handler."""


def run_subprocess_worker(
    *,
    context: Any,
    extras: Mapping[str, Any],
    env: Mapping[str, str],
    python_executable: str | None,
    context_injector: Any = None,
    message_reader: Any = None,
) -> dg.PipesClientCompletedInvocation:
    """Run ``python -m worker`` with ``PipesSubprocessClient``; the interpreter defaults to this one.

    Raises:
        FileNotFoundError: the interpreter does not exist.
        DagsterPipesExecutionError: the worker exited non-zero.
    """
    client = dg.PipesSubprocessClient(env=dict(env), context_injector=context_injector, message_reader=message_reader)
    command = [python_executable or sys.executable, *WORKER_COMMAND[1:]]
    return client.run(context=context, extras=dict(extras), command=command)
