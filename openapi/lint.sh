#!/usr/bin/env bash
# meson test openapi-lint: redocly's recommended-strict rules over the
# document, zero problems allowed. The linter is pinned in
# openapi/package-lock.json; test/run-all.sh installs it (npm ci).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/.bin/redocly ]; then
  echo "1..0 # SKIP the linter is not installed (npm ci in openapi/)"
  exit 77
fi
out=$(node_modules/.bin/redocly lint --config redocly.yaml --format=stylish ocps-proxy.yaml 2>&1) && rc=0 || rc=$?
echo "$out" | grep -v '^\s*$' | sed 's/^/# /'
if [ "$rc" -eq 0 ]; then
  echo "ok 1 - openapi/ocps-proxy.yaml passes redocly lint (recommended-strict)"
else
  echo "not ok 1 - openapi/ocps-proxy.yaml passes redocly lint (recommended-strict)"
fi
echo "1..1"
[ "$rc" -eq 0 ]
