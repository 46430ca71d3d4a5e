#!/usr/bin/env bash
# Re-take the Dagster UI screenshots in docs/screenshots/ (python -m localdev.screenshots): sets up
# .venv, installs Debian's chromium with apt-get when it is missing and this runs as root, installs
# the playwright Python package (it drives that chromium; no browser download) into .venv, then runs
# the demo with dagster dev and screenshots its pages. Extra arguments go to the module
# (--out DIR, --port P, --keep-instance, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYWRIGHT_VERSION=1.65.2  # keep in step with PLAYWRIGHT_VERSION in localdev/screenshots.py
GREENLET_VERSION=3.5.6     # playwright's one dependency

bash scripts/setup-venv.sh
if ! command -v chromium >/dev/null 2>&1 && [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "screenshots: installing Debian's chromium (apt-get install -y chromium)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  else
    echo "screenshots: chromium not found; install Debian's chromium: apt-get install -y chromium" >&2
    exit 1
  fi
fi
if [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null)" \
     != "$PLAYWRIGHT_VERSION" ]; then
  echo "screenshots: installing playwright==$PLAYWRIGHT_VERSION into .venv" >&2
  .venv/bin/python -m pip install --quiet "playwright==$PLAYWRIGHT_VERSION" "greenlet==$GREENLET_VERSION" >&2
fi
exec .venv/bin/python -m localdev.screenshots "$@"
