#!/usr/bin/env bash
# Creates .venv with the pinned CPU-friendly torch and installs sam2pp in editable mode.
#   bash scripts/setup.sh          the package and its notebook extras
#   bash scripts/setup.sh --dev    also the test and build tools (pytest, nbmake, playwright, build), and
#                                  Debian's Chromium for the browser tests (needs apt)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=".venv/bin/python -m pip"
$pip install -q --upgrade pip
# Pinned: this pair installs quickly and runs on the CPU; unpinned, pip may pull several GB of CUDA wheels.
$pip install -q "torch==2.14.1" "torchvision==0.29.1"
if [ "${1:-}" = "--dev" ]; then
  $pip install -q -e ".[dev]"
  if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
  fi
else
  $pip install -q -e ".[notebooks]"
fi
