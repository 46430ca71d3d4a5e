# Custom checkov checks, loaded by scripts/scan.sh with --external-checks-dir (checkov needs this file).
