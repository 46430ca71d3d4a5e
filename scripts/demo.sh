#!/usr/bin/env bash
# The first command to run: set up .venv, start the local GCS and BigQuery emulators, drop sample files
# and materialize the demo asset through the subprocess worker; prints the metadata that came back.
# Extra arguments go to the demo (e.g. --serve to keep everything up and open the Dagster UI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
exec .venv/bin/python -m localdev.demo "$@"
