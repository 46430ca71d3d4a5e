"""Recovering the worker's own error message when a launch fails, for every kind.

The few Dagster internals the launchers need live here and nowhere else:
``DagsterPipesExecutionError`` (what ``PipesSubprocessClient`` raises on a non-zero exit) and
``extract_message_or_forward_to_stdout`` (how a log line becomes a Pipes message) have no public
export in Dagster 1.13; ``dagster_k8s/pipes.py`` and ``dagster_docker/pipes.py`` import them from
the same private modules. Keeping them in one module means one place to change on an upgrade.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError
from dagster._core.pipes.utils import extract_message_or_forward_to_stdout

__all__ = [
    "DagsterPipesExecutionError",
    "extract_message_or_forward_to_stdout",
    "worker_error_from_event_log",
    "worker_error_from_pipes_text",
]

_PIPES_MESSAGE_START = '{"__dagster_pipes_version"'


def worker_error_from_pipes_text(text: str) -> str | None:
    """The exception of the last Pipes ``closed`` message found anywhere in ``text`` (e.g. a quoted log tail)."""
    decoder = json.JSONDecoder()
    found: str | None = None
    start = text.find(_PIPES_MESSAGE_START)
    while start != -1:
        try:
            message, _ = decoder.raw_decode(text, start)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("method") == "closed":
            exception = (message.get("params") or {}).get("exception")
            if isinstance(exception, dict) and exception.get("message"):
                found = _named(exception.get("name"), exception["message"])
        start = text.find(_PIPES_MESSAGE_START, start + 1)
    return found


def worker_error_from_event_log(context: Any) -> str | None:
    """The message of the newest '[pipes] ... closed with exception' event of this step, if any.

    Never raises: the recovered message is a courtesy and must not mask the real failure.
    """
    try:
        step_context = (
            context.op_execution_context.get_step_execution_context()
            if hasattr(context, "op_execution_context")
            else context.get_step_execution_context()
        )
        step_key = step_context.step.key
        records = context.instance.all_logs(context.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    except Exception:
        return None
    for record in reversed(records):
        event = record.dagster_event
        if event is None or event.step_key != step_key:
            continue
        if "closed with exception" not in (record.user_message or ""):
            continue
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return _named(error.cls_name, error.message)
    return None


def _named(name: str | None, message: str) -> str:
    """``Name: message``, unless the message already starts with the (qualified) class name."""
    message = message.strip()
    if not name or message.split(":", 1)[0].split(".")[-1] == name:
        return message
    return f"{name}: {message}"
