"""Training, fine-tuning and ablation of SAM 2++ with the published three-task recipe.

    from sam2pp.training import load_config, train
    config = load_config("tiny_cpu")           # or "published", "smoke", or a JSON file
    result = train(config, "runs/tiny", callback=print)

Modules: `data` (datasets, scan), `mixing` (one task per step), `transforms` (augmentation), `prompts` (prompt
simulation), `unroll` (the training forward over a clip), `losses`, `optim` (parameter groups, schedule, freezing,
LoRA), `distributed` (torchrun / DDP), `checkpoints` (atomic saves), `run_folder` (resume or start over, checked
first), `interrupt` (Ctrl-C), `validation`, `monitor` and `pictures`, `loop` (`train`), `ablation` (`ablate`: the
task-adaptive memory grid).
"""

from .ablation import AblationGrid, AblationResult, Variant, ablate
from .config import PRESETS, DataConfig, DataSource, SyntheticData, TrainConfig, ValidationConfig, load_config
from .interrupt import TrainingInterrupted
from .loop import TrainResult, build_training_model, read_history, train
from .run_folder import RunFolderError

__all__ = [
    "AblationGrid",
    "AblationResult",
    "PRESETS",
    "DataConfig",
    "DataSource",
    "SyntheticData",
    "RunFolderError",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "ValidationConfig",
    "Variant",
    "ablate",
    "build_training_model",
    "load_config",
    "read_history",
    "train",
]
