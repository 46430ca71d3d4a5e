#!/usr/bin/env bash
# Security scanners, offline, pinned in scripts/scan-requirements.txt and installed into their own
# virtualenv .venv-scan/ (apart from .venv/, so their pins never meet Dagster's constraints.txt):
#   checkov  the Kubernetes manifests in k8s/, the Dockerfile, and the bodies the launchers build: the
#            worker pod (K8sLaunch defaults and the Helm values' K8sLaunch) and the Docker container
#            arguments, rendered into .local/scan/ by scripts/render-launcher-bodies.py (the Docker one
#            checked by the custom checks in scripts/checkov-checks/).
#            Not k8s/helm/: it holds values for Dagster's Helm chart, which cannot be fetched and
#            rendered offline, and checkov's helm framework would need the chart and the helm binary.
#   bandit   worker/ and orchestrator/ (recursive).
#   zizmor   .github/workflows/ci.yml (--offline: no GitHub API lookups).
# Every scanner runs; the script exits non-zero when any reports a finding that is not justified
# inline (`# checkov:skip=ID: reason`, `# nosec BXXX # reason`, `# zizmor: ignore[rule] -- reason`).
# Run alone: bash scripts/scan.sh   (scripts/test.sh runs it after ruff and lint-workflows).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SCAN_VENV=.venv-scan
if [ ! -x "$SCAN_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$SCAN_VENV"
fi
stamp=$SCAN_VENV/.installed-$(sha256sum <scripts/scan-requirements.txt | cut -c1-16)
if [ ! -f "$stamp" ]; then
  # The file lists the whole resolved set: --no-deps installs exactly it, pip check proves it complete.
  "$SCAN_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r scripts/scan-requirements.txt
  "$SCAN_VENV/bin/python" -m pip check >/dev/null
  rm -f "$SCAN_VENV"/.installed-*
  touch "$stamp"
fi
bash scripts/setup-venv.sh  # the renderer imports the launchers (dagster, dagster_k8s) from .venv

out=.local/scan
rm -rf "$out"
.venv/bin/python scripts/render-launcher-bodies.py "$out" >/dev/null

failed=()
# shellcheck disable=SC2046  # the file list is word-split on purpose (paths without spaces)
if ! "$SCAN_VENV/bin/checkov" --skip-download --compact --quiet \
    --framework kubernetes dockerfile yaml --external-checks-dir scripts/checkov-checks \
    -f Dockerfile $(find k8s -path k8s/helm -prune -o -name '*.yaml' -print | sort) "$out"/*.yaml \
    -o cli -o json --output-file-path "$out/checkov" >/dev/null; then
  failed+=(checkov)
fi
cat "$out/checkov/results_cli.txt"
# A check that did not load, or a rendered body checkov did not recognise, would pass silently: make sure
# every framework saw its input and the custom Docker checks ran.
"$SCAN_VENV/bin/python" - "$out/checkov/results_json.json" <<'PY' || failed+=(checkov-coverage)
import json
import sys

reports = json.load(open(sys.argv[1]))
summary = {r["check_type"]: r["summary"] for r in (reports if isinstance(reports, list) else [reports])}
ran = {kind: s["passed"] + s["failed"] + s["skipped"] for kind, s in summary.items()}
problems = [f"{kind}: {why}" for kind, ok, why in [
    ("kubernetes", summary.get("kubernetes", {}).get("resource_count", 0) >= 3, "expected k8s/ objects and 2 rendered pods"),
    ("dockerfile", ran.get("dockerfile", 0) > 0, "the Dockerfile was not scanned"),
    ("yaml", ran.get("yaml", 0) >= 6, "the custom Docker container checks (scripts/checkov-checks) did not all run"),
] if not ok]
sys.exit("scan.sh: checkov coverage: " + "; ".join(problems) if problems else 0)
PY

# bandit warns for each multi-line statement whose `# nosec` it already honoured: drop that noise only.
if ! "$SCAN_VENV/bin/bandit" -r worker orchestrator -q 2> >(grep -v 'nosec encountered' >&2); then
  failed+=(bandit)
fi

if ! "$SCAN_VENV/bin/zizmor" --offline -q .github/workflows/ci.yml; then
  failed+=(zizmor)
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "scan.sh: findings from: ${failed[*]} (fix them, or justify each inline where it is)" >&2
  exit 1
fi
echo "scan.sh: checkov, bandit, zizmor: no unjustified findings"
