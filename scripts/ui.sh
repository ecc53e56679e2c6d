#!/usr/bin/env bash
# The web UI's build (docs/ui.md). `scripts/ui.sh build` builds services/ui/dist when it is
# missing or stale: the bundle carries a stamp of the hash of every source it was built from, so
# an unchanged checkout builds nothing. Without Node.js (>= 20.19) and npm it says so and skips:
# `make run` still serves the API, and /ui/ answers a page that says how to build it.
# `--required` (make ui, make test) fails instead of skipping.
# `scripts/ui.sh browser` makes sure Debian's chromium is there for the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/../services/ui"

MIN_NODE_MAJOR=20
MIN_NODE_MINOR=19

node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
  local version major minor
  version=$(node --version | sed 's/^v//')
  major=${version%%.*}
  minor=$(echo "$version" | cut -d. -f2)
  (( major > MIN_NODE_MAJOR || (major == MIN_NODE_MAJOR && minor >= MIN_NODE_MINOR) ))
}

sources_hash() {
  { find src public -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum package.json package-lock.json index.html vite.config.ts tsconfig.json
  } | sha256sum | cut -c1-16
}

build() {
  local required=${1:-}
  if ! node_ok; then
    local msg="Node.js >= ${MIN_NODE_MAJOR}.${MIN_NODE_MINOR} with npm was not found"
    if [[ $required == --required ]]; then
      echo "ui: $msg; the web UI cannot be built (apt-get install nodejs npm, or nodejs.org)" >&2
      exit 1
    fi
    echo "ui: $msg: skipping the web UI. The server runs without it (/ui/ says how to build it)." >&2
    return 0
  fi
  local lock_hash
  lock_hash=$(sha256sum package-lock.json | cut -c1-16)
  if [[ ! -f node_modules/.cmf-lock-stamp || $(cat node_modules/.cmf-lock-stamp) != "$lock_hash" ]]; then
    echo "ui: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$lock_hash" > node_modules/.cmf-lock-stamp
  fi
  local hash
  hash=$(sources_hash)
  if [[ -f dist/.cmf-build-stamp && $(cat dist/.cmf-build-stamp) == "$hash" ]]; then
    echo "ui: the bundle is up to date" >&2
    return 0
  fi
  echo "ui: npm run build" >&2
  npm run --silent build >&2
  echo "$hash" > dist/.cmf-build-stamp
}

browser() {
  if [[ -x /usr/bin/chromium ]]; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "ui: /usr/bin/chromium is missing; install Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
  echo "ui: apt-get install chromium" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
}

case "${1:-}" in
  build) build "${2:-}" ;;
  browser) browser ;;
  *) echo "usage: scripts/ui.sh build [--required] | browser" >&2; exit 2 ;;
esac
