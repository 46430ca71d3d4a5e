"""The demo's ``launcher`` resource: the same environment-configured launcher as the project's."""

import dagster as dg

from orchestrator.launchers.from_env import launcher_from_env


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"launcher": launcher_from_env()})
