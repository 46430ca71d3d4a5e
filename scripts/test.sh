#!/usr/bin/env bash
# Run the whole test suite: unit, emulator, Docker (when a Docker engine can be started) and kind (skips
# with its reason where no cluster can be created). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
