"""Compatibility: the launcher moved to :mod:`orchestrator.launchers` (one module per kind).

``from orchestrator.launcher import WorkerLauncher, DockerLaunch`` keeps working.
"""

from orchestrator.launchers import *  # noqa: F403
from orchestrator.launchers import __all__  # noqa: F401
from orchestrator.launchers.failures import worker_error_from_pipes_text  # noqa: F401
