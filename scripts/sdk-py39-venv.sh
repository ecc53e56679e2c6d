#!/usr/bin/env bash
# A Python 3.9 for the SDK (libs/client keeps to 3.9, to sit beside cmflib in older
# environments): Debian's PyPy, whose bookworm pypy3 (7.3.11) implements Python 3.9 with 3.9's
# standard library (no CPython 3.9 is packaged for this machine's Debian), installed with
# apt-get when missing; then a venv of it with what the SDK's own tests need and nothing of the
# SDK (tests/integration/test_sdk_python39.py installs it), keyed by its pinned requirements.
# Prints the venv's path.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pypy3 >/dev/null 2>&1 || ! pypy3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "pypy3 is missing: apt-get install pypy3 pypy3-venv (Debian's Python 3.9)" >&2
    exit 1
  fi
  echo "apt-get install pypy3 pypy3-venv" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pypy3 pypy3-venv >&2
fi
version=$(pypy3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ $version != 3.9 ]]; then
  echo "pypy3 implements Python $version here, not 3.9" >&2
  exit 1
fi
req=tests/client/requirements-py39.txt
hash=$(sha256sum "$req" | cut -c1-12)
venv="${HOME}/.cache/cmf-server/pypy39-${hash}"
if [ ! -f "$venv/.complete" ]; then
  echo "installing the SDK's test requirements into $venv" >&2
  rm -rf "$venv"
  pypy3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  touch "$venv/.complete"
fi
echo "$venv"
