"""`sam2pp benchmark`: run a tracker over a whole benchmark in its native layout and score it like `sam2pp eval`.

`layouts` finds the benchmark and its videos (through the training system's dataset readers), `protocols` runs and
scores one video per task, `runner` shards videos over ranks and machines with resume, `report` merges the records.
"""

from .command import add_parser
from .layouts import Benchmark, detect_layout, open_benchmark
from .runner import BenchmarkConfig, BenchmarkResult, run_benchmark

__all__ = ["Benchmark", "BenchmarkConfig", "BenchmarkResult", "add_parser", "detect_layout", "open_benchmark",
           "run_benchmark"]
