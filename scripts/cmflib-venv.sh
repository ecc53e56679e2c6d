#!/usr/bin/env bash
# Installs the real CMF client (cmflib from PyPI) into its own Python 3.11 venv, keyed by its
# pinned requirements; prints the venv's path. Its pins (ml-metadata, protobuf 4, dvc 3.51)
# clash with the server's stack, so it never shares our environment.
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/client/requirements.txt
hash=$(sha256sum "$req" | cut -c1-12)
venv="${HOME}/.cache/cmf-server/cmflib-${hash}"
if [ ! -f "$venv/.complete" ]; then
  echo "installing cmflib into $venv" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  touch "$venv/.complete"
fi
echo "$venv"
