"""The shared ``launcher`` resource every import uses unless its defs.yaml declares its own."""

import dagster as dg

from orchestrator.launchers.from_env import launcher_from_env


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"launcher": launcher_from_env()})
