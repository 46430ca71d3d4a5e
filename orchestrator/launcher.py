"""Where the worker runs: one Dagster resource chooses subprocess, Docker or Kubernetes.

Every kind runs the same worker program (``python -m worker``) with the same Pipes
protocol, through Dagster's own clients: ``PipesSubprocessClient``,
``PipesDockerClient`` and ``PipesK8sClient``. The factory only calls
:meth:`WorkerLauncher.launch`.

Failure semantics, the same for every kind:
- the worker raised: the step fails with the worker's own error message (read
  back from the Pipes ``closed`` event), not only "exited with code 1";
- the worker exited 0 without reporting a materialization: the step fails;
- the launch itself failed (interpreter, image or pod missing): the step fails
  with that reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError
from dagster._core.events import DagsterEventType

#: Variables copied from the orchestrator's environment into the worker's, when set.
DEFAULT_FORWARDED_ENV = (
    "STORAGE_EMULATOR_HOST",
    "BIGQUERY_EMULATOR_HOST",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
)

WORKER_COMMAND = ("python", "-m", "worker")


class WorkerLaunchError(dg.Failure):
    """The worker could not be started, failed, or finished without reporting."""


class WorkerLauncher(dg.ConfigurableResource):
    """Launches the import worker and returns what it reported through Pipes.

    ``kind`` picks the Pipes client: ``subprocess`` (default; local development),
    ``docker`` (the worker image on a laptop) or ``k8s`` (a pod per run).
    """

    kind: Literal["subprocess", "docker", "k8s"] = "subprocess"
    #: Extra environment for the worker.
    env: dict[str, str] = {}
    #: Names copied from this process's environment into the worker's when set.
    forward_env: list[str] = list(DEFAULT_FORWARDED_ENV)
    #: subprocess: the interpreter that runs ``-m worker`` (default: this one).
    python_executable: str | None = None

    def worker_env(self) -> dict[str, str]:
        """The environment the worker gets (forwarded names first, then ``env``)."""
        forwarded = {name: os.environ[name] for name in self.forward_env if os.environ.get(name)}
        return {**forwarded, **self.env}

    def launch(
        self, *, context: dg.AssetExecutionContext | dg.OpExecutionContext, extras: Mapping[str, Any]
    ) -> Sequence[Any]:
        """Run the worker with ``extras`` and return its reported results (materializations, checks).

        Raises:
            WorkerLaunchError: with the worker's own message when it failed, or when it reported nothing.
        """
        try:
            invocation = self._run(context=context, extras=dict(extras))
        except DagsterPipesExecutionError as exc:
            worker_error = _worker_error_from_event_log(context)
            raise WorkerLaunchError(
                description=f"The import worker ({self.kind}) failed: {worker_error or exc}",
                metadata={"launcher": self.kind, "exit": str(exc)},
            ) from exc
        except FileNotFoundError as exc:
            raise WorkerLaunchError(
                description=f"The import worker ({self.kind}) could not be started: {exc}. "
                "Check python_executable (or the image) in the WorkerLauncher resource.",
            ) from exc
        results = invocation.get_results(implicit_materializations=False)
        if not any(isinstance(result, dg.MaterializeResult) for result in results) and self._expects_materialization(
            extras
        ):
            raise WorkerLaunchError(
                description=f"The import worker ({self.kind}) exited without reporting a materialization; "
                "the step is failed rather than recorded as a success. See the step's logs for its output.",
            )
        return results

    # -- kinds --------------------------------------------------------------

    def _run(self, *, context: Any, extras: dict[str, Any]) -> dg.PipesClientCompletedInvocation:
        if self.kind == "subprocess":
            client = dg.PipesSubprocessClient(env=self.worker_env())
            command = [self.python_executable or sys.executable, *WORKER_COMMAND[1:]]
            return client.run(context=context, extras=extras, command=command)
        raise WorkerLaunchError(description=f"WorkerLauncher kind {self.kind!r} is not wired yet")

    @staticmethod
    def _expects_materialization(extras: Mapping[str, Any]) -> bool:
        from worker.contract import EXTRA_ACTION, Action

        return extras.get(EXTRA_ACTION, Action.IMPORT.value) == Action.IMPORT.value


def _worker_error_from_event_log(context: Any) -> str | None:
    """The message of the newest '[pipes] ... closed with exception' event of this step, if any."""
    try:
        step_key = context.op_execution_context.get_step_execution_context().step.key if hasattr(
            context, "op_execution_context"
        ) else context.get_step_execution_context().step.key
        records = context.instance.all_logs(context.run_id, of_type=DagsterEventType.ENGINE_EVENT)
    except Exception:  # the error message is a courtesy; never mask the real failure
        return None
    for record in reversed(records):
        event = record.dagster_event
        if event is None or event.step_key != step_key:
            continue
        if "closed with exception" not in (record.user_message or ""):
            continue
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message.strip()
    return None
