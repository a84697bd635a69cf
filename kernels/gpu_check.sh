#!/usr/bin/env bash
# On a GPU machine: builds the CUDA extension, runs the kernel tests (CUDA ones included) and prints timings.
# Usage, from anywhere: bash kernels/gpu_check.sh [python]   (default python3; logs to $OUT when set)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
log=${OUT:-/tmp}/kernels_gpu_check.log
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MAX_JOBS=${MAX_JOBS:-16}
{
  "$python" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; \
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nvcc --version | tail -n 1
  "$python" -m pytest -q -rs -p no:cacheprovider tests/test_kernels.py
  "$python" benchmarks/bench_kernels.py --size 1080x1920 --batch 1
  "$python" benchmarks/bench_kernels.py --size 256x256 --batch 16
} 2>&1 | tee "$log"
