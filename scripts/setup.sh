#!/usr/bin/env bash
# Creates .venv with lamae installed. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Install the pinned torch first where torch is missing, so pip never resolves an unpinned
# torch (which would pull several GB of CUDA packages on a CPU machine).
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet "torch==2.13.0"
fi
.venv/bin/pip install --quiet -e ".[dev,tracking,hub,formats,docs]"
