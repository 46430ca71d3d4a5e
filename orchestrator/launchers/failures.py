"""Recovering why the worker failed when a launch fails, for every kind: its message and whether it is transient.

The worker reports, as data, whether its failure is transient: a Pipes custom message
(:data:`worker.core.contract.REPORT_FAILURE`) sent just before its ``closed`` message. The launcher reads it
from the Pipes message handler of the launch (kept by :class:`RecordsHandler`, since a failed client run
returns no invocation) or, when a pod failed before its log stream was read, from the log tail the error
quotes. Compatibility path, for one release: a worker image older than the code location sends no report;
its failure is then transient when the class name in its "Name: message" text is in
:data:`worker.core.contract.TRANSIENT_ERRORS` (today's text form).

The few Dagster internals the launchers need live here and nowhere else:
``DagsterPipesExecutionError`` (what ``PipesSubprocessClient`` raises on a non-zero exit) and
``extract_message_or_forward_to_stdout`` (how a log line becomes a Pipes message) have no public
export in Dagster 1.13; ``dagster_k8s/pipes.py`` and ``dagster_docker/pipes.py`` import them from
the same private modules. Keeping them in one module means one place to change on an upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError
from dagster._core.pipes.utils import extract_message_or_forward_to_stdout

from worker.core.contract import FAILURE_ERROR, FAILURE_MESSAGE, FAILURE_TRANSIENT, REPORT_FAILURE, TRANSIENT_ERRORS

__all__ = [
    "DagsterPipesExecutionError",
    "FailureReport",
    "RecordsHandler",
    "WorkerFailure",
    "extract_message_or_forward_to_stdout",
    "failure_report",
    "recover_worker_failure",
    "worker_error_from_event_log",
    "worker_error_from_pipes_text",
]

_PIPES_MESSAGE_START = '{"__dagster_pipes_version"'


@dataclass(frozen=True)
class FailureReport:
    """The worker's own report of its failure (the :data:`REPORT_FAILURE` custom message)."""

    transient: bool
    error: str
    message: str


@dataclass(frozen=True)
class WorkerFailure:
    """Why the worker failed, as the launcher decides on it.

    ``message`` is the worker's "Name: message" line (what the step failure shows); ``transient`` says
    whether the step is retried; ``reported`` whether ``transient`` came from the worker's report (False:
    read from the class name in ``message``, the compatibility path for workers without the report).
    """

    message: str
    transient: bool
    reported: bool


class RecordsHandler:
    """Mixin for a ``PipesMessageReader``: keeps the launch's ``PipesMessageHandler`` in ``handler``.

    A Pipes client that fails raises instead of returning its invocation, and with it the custom messages
    the worker sent; the launcher reads them from the handler kept here. Put it first in the bases, so
    that the reader's class (which Docker's and Kubernetes' clients check with ``isinstance``) is kept.
    """

    handler: Any = None

    @contextmanager
    def read_messages(self, handler: Any) -> Iterator[Any]:
        self.handler = handler
        with super().read_messages(handler) as params:  # type: ignore[misc]
            yield params

    def custom_messages(self) -> Sequence[Any]:
        """The custom messages the worker sent so far (none before the launch read any)."""
        return self.handler.get_custom_messages() if self.handler is not None else ()


def failure_report(custom_messages: Sequence[Any]) -> FailureReport | None:
    """The last :data:`REPORT_FAILURE` among ``custom_messages`` (payloads of custom messages), if any."""
    found: FailureReport | None = None
    for payload in custom_messages:
        report = payload.get(REPORT_FAILURE) if isinstance(payload, dict) else None
        if isinstance(report, dict) and isinstance(report.get(FAILURE_TRANSIENT), bool):
            found = FailureReport(transient=report[FAILURE_TRANSIENT], error=str(report.get(FAILURE_ERROR) or ""),
                                  message=str(report.get(FAILURE_MESSAGE) or ""))
    return found


def recover_worker_failure(*, context: Any, custom_messages: Sequence[Any], quoted_text: str = "") -> WorkerFailure | None:
    """Why the worker failed: its message from this step's event log (else from the Pipes messages in
    ``quoted_text``, else from its report), transient as its report says (else by its class name: the
    compatibility path). None when the worker reported nothing (it never ran, or died without a word).

    Never raises: what is recovered is a courtesy and must not mask the real failure.
    """
    report = failure_report(custom_messages) or failure_report(list(_custom_payloads_in(quoted_text)))
    message = worker_error_from_event_log(context) or worker_error_from_pipes_text(quoted_text)
    if message is None and report is not None and report.message:
        message = _named(report.error, report.message)
    if message is None:
        return None
    if report is not None:
        return WorkerFailure(message=message, transient=report.transient, reported=True)
    return WorkerFailure(message=message, transient=_transient_by_name(message), reported=False)


def _transient_by_name(message: str) -> bool:
    """Compatibility path (one release): the class name of a "Name: message" line is a transient error's."""
    return message.split(":", 1)[0].split(".")[-1] in TRANSIENT_ERRORS


def _pipes_messages_in(text: str) -> Iterator[dict[str, Any]]:
    """Every Pipes message found anywhere in ``text`` (e.g. a quoted log tail), in order."""
    decoder = json.JSONDecoder()
    start = text.find(_PIPES_MESSAGE_START)
    while start != -1:
        try:
            message, _ = decoder.raw_decode(text, start)
        except ValueError:
            message = None
        if isinstance(message, dict):
            yield message
        start = text.find(_PIPES_MESSAGE_START, start + 1)


def _custom_payloads_in(text: str) -> Iterator[Any]:
    for message in _pipes_messages_in(text):
        if message.get("method") == "report_custom_message":
            yield (message.get("params") or {}).get("payload")


def worker_error_from_pipes_text(text: str) -> str | None:
    """The exception of the last Pipes ``closed`` message found anywhere in ``text`` (e.g. a quoted log tail)."""
    found: str | None = None
    for message in _pipes_messages_in(text):
        if message.get("method") == "closed":
            exception = (message.get("params") or {}).get("exception")
            if isinstance(exception, dict) and exception.get("message"):
                found = _named(exception.get("name"), exception["message"])
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
