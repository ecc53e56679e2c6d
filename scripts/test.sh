#!/usr/bin/env bash
# `make test`: install what is missing, lint, start the real services, run every test.
# Prints how long each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -a PHASES=()
phase() {
  local name=$1; shift
  local started=$SECONDS
  echo "==> $name"
  "$@"
  PHASES+=("$(printf '%-16s %4ds' "$name" $((SECONDS - started)))")
}
report() {
  echo "==> phase times"
  printf '    %s\n' "${PHASES[@]}"
}
trap report EXIT

phase install make --no-print-directory install
phase client-venv scripts/cmflib-venv.sh
phase ui-build scripts/ui.sh build --required
phase ui-browser scripts/ui.sh browser
phase lint make --no-print-directory lint
phase services-up make --no-print-directory services-up
phase deploy-tools make --no-print-directory -s kustomize
# Two workers: much of the suite waits on servers and subprocesses, so two share the 2 cores
# well. The tests that use the shared Neo4j run on one worker, in order
# (cmf_testing.suite_split). The slowest tests are listed at the end, so a run that nears CI's
# limit says where to cut.
WORKERS=${PYTEST_WORKERS:-2}
phase pytest make --no-print-directory test-only \
  ARGS="-n $WORKERS --durations=25 ${PYTEST_ARGS:-}"
