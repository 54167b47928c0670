#!/usr/bin/env bash
# Run the whole test suite: unit tests, then integration tests against a real local control
# plane (etcd + kube-apiserver + kube-controller-manager started by the test fixtures).
# Extra arguments go to pytest, e.g. `hack/test.sh -m unit` for the unit tests alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash hack/setup.sh
exec .venv/bin/pytest -q "$@"
