"""``WorkerLauncher``: the one Dagster resource that launches the import worker, whatever the kind.

Every kind runs the same worker program (``python -m worker``) with the same Pipes protocol,
through Dagster's own clients (``PipesSubprocessClient``, ``PipesDockerClient``,
``PipesK8sClient``); the factory only calls :meth:`WorkerLauncher.launch`.

Failure semantics, the same for every kind:
- the worker raised: the step fails with the worker's own error message (read back from the
  Pipes ``closed`` event), not only "exited with code 1";
- the worker failed transiently (a service unreachable past its retry deadline, BigQuery's
  concurrent-DML refusals), as its failure report says (:mod:`orchestrator.launchers.failures`; an
  older worker without the report: by its error's class name): the step is retried with
  ``dg.RetryRequested``, ``transient_retries`` times, waiting ``transient_retry_seconds`` doubled each time;
- the worker exited 0 without reporting a materialization: the step fails;
- the launch itself failed (interpreter, image or pod missing, Docker engine or cluster
  unreachable, pod timed out): the step fails with that reason;
- cleanup (removing the container, deleting the pod) never replaces the real error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import dagster as dg
from dagster_pipes import DagsterPipesError

from orchestrator.launchers.failures import DagsterPipesExecutionError, WorkerFailure, recover_worker_failure
from orchestrator.launchers.kinds import DEFAULT_KIND, LAUNCHER_KINDS, LauncherKind, LauncherKindEntry, launcher_kind
from orchestrator.launchers.pipes_gcs import PipesGCSChannel
from orchestrator.launchers.settings import DEFAULT_FORWARDED_ENV, DockerLaunch, K8sLaunch, WorkerLaunchError
from worker.core.contract import EXTRA_ACTION, EXTRA_RETRY_DEADLINE, Action

#: ``auto``: the kind's default (GCS for ``k8s``: pod logs rotate and reconnect; the process's own output for the others).
MessageChannel = Literal["auto", "logs", "gcs"]


class WorkerLauncher(dg.ConfigurableResource):
    """Launches the import worker and returns what it reported through Pipes.

    ``kind`` picks the Pipes client (:mod:`orchestrator.launchers.kinds`): ``subprocess`` (default; local
    development), ``docker`` (the worker image on a laptop or CI) or ``k8s`` (a pod per run).
    """

    kind: LauncherKind = DEFAULT_KIND  # type: ignore[valid-type]
    #: Extra environment for the worker.
    env: dict[str, str] = {}
    #: Names copied from this process's environment into the worker's when set.
    forward_env: list[str] = list(DEFAULT_FORWARDED_ENV)
    #: subprocess: the interpreter that runs ``-m worker`` (default: this one).
    python_executable: str | None = None
    docker: DockerLaunch = DockerLaunch()
    k8s: K8sLaunch = K8sLaunch()
    #: How the Pipes context and messages travel: ``logs`` (environment + the worker's stdout or log
    #: stream), ``gcs`` (objects under ``pipes_gcs``), ``auto`` (``gcs`` for k8s, ``logs`` otherwise).
    message_channel: MessageChannel = "auto"
    #: The GCS prefix of the ``gcs`` channel; required when the channel is (or resolves to) ``gcs``.
    pipes_gcs: PipesGCSChannel | None = None
    #: Retries of a step whose worker failed transiently (see the module docstring).
    transient_retries: int = 3
    #: Seconds before such a retry (doubled each time).
    transient_retry_seconds: float = 60.0
    #: Seconds the worker retries an unreachable or failing (429/5xx) GCS or BigQuery call before it
    #: gives up (default: the worker's own, 120).
    retry_deadline_seconds: float | None = None

    # -- settings -------------------------------------------------------------

    def kind_entry(self) -> LauncherKindEntry:
        """This launcher's kind in the registry (:mod:`orchestrator.launchers.kinds`)."""
        return launcher_kind(self.kind)

    def effective_docker(self) -> DockerLaunch:
        """``docker`` with the unset fields taken from ``$GCS_IMPORT_DOCKER_LAUNCH`` (JSON), if set."""
        return LAUNCHER_KINDS["docker"].settings(self)

    def effective_k8s(self) -> K8sLaunch:
        """``k8s`` with the unset fields taken from ``$GCS_IMPORT_K8S_LAUNCH`` (JSON), if set."""
        return LAUNCHER_KINDS["k8s"].settings(self)

    def effective_channel(self) -> Literal["logs", "gcs"]:
        """The message channel ``auto`` resolves to (the kind's default), checked against ``pipes_gcs``.

        Raises:
            WorkerLaunchError: the channel is ``gcs`` (or ``auto`` for k8s) but ``pipes_gcs`` is unset.
        """
        entry = self.kind_entry()
        channel = entry.default_channel if self.message_channel == "auto" else self.message_channel
        if channel == "gcs" and self.pipes_gcs is None:
            reason = f", {entry.default_channel_reason}" if entry.default_channel_reason else ""
            hint = (f" (the default for kind {entry.name}{reason}; "
                    "or set message_channel: logs)") if self.message_channel == "auto" else ""
            raise WorkerLaunchError(
                description=f"WorkerLauncher: message_channel {channel!r}{hint} needs pipes_gcs "
                "{bucket, prefix}: the GCS prefix where the run's Pipes context and messages go."
            )
        return channel

    def validate(self) -> None:
        """Raise now (when definitions load) what a launch would raise later: bad env JSON, a missing channel."""
        self.kind_entry().settings(self)
        if self.effective_channel() == "gcs":
            assert self.pipes_gcs is not None  # nosec B101 # type narrowing: effective_channel() raised if unset
            self.pipes_gcs.clean_prefix()

    def worker_env(self) -> dict[str, str]:
        """The environment the worker gets (forwarded names first, then ``env``).

        ``GOOGLE_APPLICATION_CREDENTIALS`` is forwarded to a subprocess only (the kind's ``withheld_env``):
        in a container or pod the code server's path does not exist, and google-auth then raises instead
        of falling back to the metadata server (Workload Identity). To use a key file in a container,
        mount it and set the variable to the mounted path in ``env`` (docs/containers.md).
        """
        withheld = self.kind_entry().withheld_env
        names = [n for n in self.forward_env if n not in withheld]
        forwarded = {name: os.environ[name] for name in names if os.environ.get(name)}
        return {**forwarded, **self.env}

    # kept on the resource: tests and reviewers build the container and pod from the resource config
    def docker_container_kwargs(self, launch_id: str) -> dict[str, Any]:
        from orchestrator.launchers.docker_launcher import docker_container_kwargs

        return docker_container_kwargs(self.effective_docker(), launch_id)

    def k8s_base_pod_spec(self) -> dict[str, Any]:
        from orchestrator.launchers.k8s_launcher import k8s_base_pod_spec

        return k8s_base_pod_spec(self.effective_k8s())

    def k8s_pod_body(self, *, pod_name: str, env: Mapping[str, str], launch_id: str = "preview") -> Any:
        from orchestrator.launchers.k8s_launcher import k8s_pod_body

        return k8s_pod_body(cfg=self.effective_k8s(), pod_name=pod_name, env={**self.worker_env(), **env},
                            launch_id=launch_id)

    # -- launching --------------------------------------------------------------

    def launch(
        self, *, context: dg.AssetExecutionContext | dg.OpExecutionContext, extras: Mapping[str, Any]
    ) -> Sequence[Any]:
        """Run the worker with ``extras`` and return its reported results (materializations, checks).

        Raises:
            WorkerLaunchError: with the worker's own message when it failed, or when it reported nothing.
            dg.RetryRequested: the worker failed transiently and retries are left.
        """
        extras = dict(extras)
        if self.retry_deadline_seconds is not None:
            extras.setdefault(EXTRA_RETRY_DEADLINE, self.retry_deadline_seconds)
        entry = self.kind_entry()
        reader: Any = None
        try:
            injector, reader = self._channel(entry)
            invocation = entry.run(launcher=self, settings=entry.settings(self), context=context, extras=extras,
                                   env=self.worker_env(), context_injector=injector, message_reader=reader)
        except WorkerLaunchError:
            raise
        except (DagsterPipesExecutionError, DagsterPipesError) as exc:
            worker = recover_worker_failure(context=context, custom_messages=_custom_messages(reader))
            raise self._failed(context, worker, detail=str(exc), exit_text=str(exc)) from exc
        except FileNotFoundError as exc:
            raise WorkerLaunchError(
                description=f"The import worker ({self.kind}) could not be started: {exc}. "
                "Check python_executable (or the image) in the WorkerLauncher resource.",
            ) from exc
        except Exception as exc:
            # Docker API errors, Kubernetes API errors, DagsterK8sError (pod failed / timed out) ...
            # A pod that fails before it is seen running fails in dagster_k8s' wait for readiness,
            # before its log stream is read: the worker's Pipes messages are then only in the log
            # tail quoted by the error.
            worker = recover_worker_failure(context=context, custom_messages=_custom_messages(reader),
                                            quoted_text=str(exc))
            detail = f"{type(exc).__name__}: {exc}"
            raise self._failed(context, worker, detail=detail, exit_text=detail[:2000]) from exc
        results = invocation.get_results(implicit_materializations=False)
        expects_materialization = extras.get(EXTRA_ACTION, Action.IMPORT.value) == Action.IMPORT.value
        if expects_materialization and not any(isinstance(r, dg.MaterializeResult) for r in results):
            raise WorkerLaunchError(
                description=f"The import worker ({self.kind}) exited without reporting a materialization; "
                "the step is failed rather than recorded as a success. See the step's logs for its output.",
            )
        return results

    def _channel(self, entry: LauncherKindEntry) -> tuple[Any, Any]:
        """The Pipes context injector (None: the client's default) and message reader of this launch.

        The reader is always one that keeps the launch's message handler, so that a failed launch still
        yields the worker's failure report.
        """
        if self.effective_channel() == "gcs":
            from orchestrator.launchers.pipes_gcs import gcs_context_injector_and_reader

            assert self.pipes_gcs is not None  # nosec B101 # type narrowing: effective_channel() raised if unset
            return gcs_context_injector_and_reader(self.pipes_gcs)
        return None, entry.logs_reader()

    def _failed(self, context: Any, worker: WorkerFailure | None, *, detail: str, exit_text: str) -> WorkerLaunchError:
        """The step's failure, naming the worker's error (else ``detail``).

        Raises:
            dg.RetryRequested: the worker's failure is transient and retries are left.
        """
        failure = WorkerLaunchError(
            description=f"The import worker ({self.kind}) failed: {worker.message if worker else detail}",
            metadata={"launcher": self.kind, "exit": exit_text},
        )
        if worker is not None and worker.transient:
            self._retry(context, worker, failure)
        return failure

    def _retry(self, context: Any, worker: WorkerFailure, failure: WorkerLaunchError) -> None:
        """Raise ``dg.RetryRequested`` for a transient failure when retries are left; return when none are."""
        attempt = getattr(context, "retry_number", 0)
        if attempt >= self.transient_retries:
            return
        wait = self.transient_retry_seconds * (2**attempt)
        context.log.warning(f"The import worker failed transiently (retry {attempt + 1} of {self.transient_retries} "
                            f"in {wait:.0f}s): {worker.message}")
        raise dg.RetryRequested(max_retries=self.transient_retries, seconds_to_wait=wait) from failure


def _custom_messages(reader: Any) -> Sequence[Any]:
    """The custom messages the launch's reader received (none when the launch failed before it had one)."""
    return reader.custom_messages() if reader is not None else ()
