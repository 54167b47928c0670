#!/usr/bin/env bash
# Set up a fresh machine for kubestack: the Python venv with the package and its test extras,
# and the local control plane binaries (built once into the cache; reruns take seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "setup: Python >= 3.11 is required" >&2; exit 1
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "setup: installing python3-venv from Debian" >&2
  (apt-get update -qq && apt-get install -y -qq python3-venv) >&2
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# reinstall only when pyproject.toml changed since the last install
stamp=.venv/.kubestack-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >&2
  .venv/bin/pip install -q -e '.[test]' >&2
  touch "$stamp"
fi
bash hack/build-controlplane.sh >/dev/null
