"""Test-session settings shared by tests/ and the notebooks nbmake runs (notebook kernels inherit the environment).

- The tests never reach the network: the hub runs in offline mode.
- One intra-op thread, unless OMP_NUM_THREADS says otherwise: the suite's models are small, and on a shared CI machine
  several threads per op make it many times slower (see `sam2pp/threads.py`).
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:  # imported before this file (by a plugin): it has read the variable already
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
