"""The demo's defs folder: the gitcoin layout against the emulators, loaded only by the demo
(``localdev/demo_definitions.py``), so ``orchestrator/`` never depends on local stand-ins.

Why a separate import rather than overriding the gitcoin one from the environment: the
emulator needs an explicit schema for Parquet into a new table and only serves the project
``test-project``, and an environment switch that rewrites a production spec is a foot-gun.
"""
