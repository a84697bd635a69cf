"""Building a model from a config, strict checkpoint loading with readable key differences, and hub downloads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import configs
from .config import ModelConfig
from .modeling.task_modules import TASKS

# Hub repositories whose checkpoints this package knows: repo id -> (preset name, checkpoint file).
HUB_MODELS: dict[str, tuple[str, str]] = {
    "MCG-NJU/SAM2-Plus": ("sam2pp_hiera_b+", "checkpoint_phase123.pt"),
}

# Models shipped inside the package (sam2pp/models/): name -> (preset name, file). Loading them needs no network.
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sam2pp-demo": ("sam2pp_tiny", "sam2pp_demo.pt"),
}
DEMO_MODEL = "sam2pp-demo"
TRAINED_CHECKPOINT = "checkpoint.pt"  # the model file of a `sam2pp train` run folder (`training.checkpoints.MODEL_FILE`)


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose keys or shapes differ from the model's; lists every difference."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[tuple[str, tuple, tuple]]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = ["checkpoint does not match the model:"]
        lines += [f"  missing ({len(missing)}): {_preview(missing)}"] if missing else []
        lines += [f"  unexpected ({len(unexpected)}): {_preview(unexpected)}"] if unexpected else []
        if mismatched:
            shown = [f"{k} checkpoint {list(a)} vs model {list(b)}" for k, a, b in mismatched]
            lines.append(f"  mis-shaped ({len(mismatched)}): {_preview(shown)}")
        lines += _layout_hints(missing, unexpected)
        super().__init__("\n".join(lines))


def _layouts(keys: list[str]) -> dict[str, str]:
    """{module: "shared" or "per-task"} for the keys of modules a `separate_<module>` switch lays out."""
    switchable = {f.name[len("separate_"):] for f in dataclasses.fields(ModelConfig) if f.name.startswith("separate_")}
    found = {}
    for key in keys:
        top = key.split(".", 1)[0]
        base, _, task = top.rpartition("_")
        if top in switchable:
            found[top] = "shared"
        elif task in TASKS and base in switchable:
            found[base] = "per-task"
    return found


def _layout_hints(missing: list[str], unexpected: list[str]) -> list[str]:
    """A hint for each module the checkpoint lays out shared and the model per task, or the other way round."""
    saved, built = _layouts(unexpected), _layouts(missing)
    return [
        f"  hint: the checkpoint has a {saved[name]} {name} but the model a {built[name]} one; "
        f"build the model with separate_{name}={saved[name] == 'per-task'} to match the checkpoint"
        for name in sorted(saved)
        if built.get(name, saved[name]) != saved[name]
    ]


def _preview(items: list[str], limit: int = 20) -> str:
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def checkpoint_file(path: str | Path) -> Path:
    """`path` once it is known to be a file. A folder is named as one, with the file expected: the `checkpoint.pt` a
    training run folder holds (which is what a folder given here usually is)."""
    path = Path(path)
    if path.is_dir():
        inside = path / TRAINED_CHECKPOINT
        where = f"did you mean {inside}?" if inside.is_file() else f"{path} holds none"
        raise IsADirectoryError(f"checkpoint {path} is a folder, not a checkpoint file: expected a {{'model': "
                                f"state_dict}} file such as the {TRAINED_CHECKPOINT} of a `sam2pp train` run folder; "
                                f"{where}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return path


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a `{"model": state_dict}` file (a bare state dict is accepted too)."""
    path = checkpoint_file(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"checkpoint {path} holds no state dict (expected {{'model': state_dict}})")
    return data


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load every entry or none: any missing, unexpected or mis-shaped key raises `CheckpointMismatchError`."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [
        (k, tuple(state_dict[k].shape), tuple(own[k].shape))
        for k in sorted(set(own) & set(state_dict))
        if state_dict[k].shape != own[k].shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched)
    model.load_state_dict(state_dict, strict=True)


def resolve_config(config: ModelConfig | str | Path) -> ModelConfig:
    """A `ModelConfig` from itself, a preset name, or a JSON file path."""
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, str) and config in configs.PRESETS:
        return configs.get(config)
    if Path(config).suffix == ".json":
        return ModelConfig.from_json(config)
    raise ValueError(f"unknown config {config!r}: give a preset ({', '.join(configs.names())}) or a .json file")


def build_model(
    config: ModelConfig | str | Path, checkpoint: str | Path | None = None, device: str | torch.device = "cpu"
):
    """The SAM 2++ model in eval mode, with `checkpoint` loaded strictly when given (random init otherwise)."""
    from .modeling.model import SAM2PlusModel

    model = SAM2PlusModel(resolve_config(config))
    if checkpoint is not None:
        load_strict(model, read_checkpoint(checkpoint))
    return model.to(device).eval()


def download_checkpoint(repo_id: str, filename: str | None = None, **hub_kwargs) -> Path:
    """The local path of a hub checkpoint (downloaded into the hub cache, or found there in offline mode)."""
    from huggingface_hub import hf_hub_download

    if filename is None:
        if repo_id not in HUB_MODELS:
            raise ValueError(f"unknown hub model {repo_id!r}; known: {', '.join(HUB_MODELS)} (or pass filename=)")
        filename = HUB_MODELS[repo_id][1]
    return Path(hf_hub_download(repo_id=repo_id, filename=filename, **hub_kwargs))


def packaged_checkpoint(name: str) -> Path:
    """The file of a model shipped with the package (`PACKAGED_MODELS`), checked to exist."""
    from importlib.resources import files

    if name not in PACKAGED_MODELS:
        raise ValueError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED_MODELS)}")
    path = Path(str(files(__package__) / "models" / PACKAGED_MODELS[name][1]))
    if not path.is_file():
        raise FileNotFoundError(f"the {name} weights ({path}) are missing from this installation; reinstall sam2pp "
                                f"or regenerate them with scripts/train_demo_model.py")
    return path


@dataclass(frozen=True)
class HubModel:
    """Where a hub model's config and weights come from."""

    config: str
    checkpoint: Path


def resolve_hub_model(repo_id: str, config: str | None = None, **hub_kwargs) -> HubModel:
    """A packaged model (no network) or a hub checkpoint (cache first, as `hf_hub_download` does)."""
    if repo_id in PACKAGED_MODELS:
        return HubModel(config or PACKAGED_MODELS[repo_id][0], packaged_checkpoint(repo_id))
    preset = config or HUB_MODELS.get(repo_id, (None,))[0]
    if preset is None:
        raise ValueError(f"no preset known for hub model {repo_id!r}; pass config=")
    return HubModel(preset, download_checkpoint(repo_id, **hub_kwargs))
