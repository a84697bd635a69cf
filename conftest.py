"""Test-session settings shared by tests/ and the notebooks nbmake runs.

The tests never reach the network: the hub runs in offline mode (notebook kernels inherit the environment).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
