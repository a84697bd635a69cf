"""sam2pp: SAM 2++, one video tracker for masks, boxes and points.

    import sam2pp
    predictor = sam2pp.VideoPredictor.from_pretrained("MCG-NJU/SAM2-Plus", device="cuda")
    predictor = sam2pp.VideoPredictor.from_pretrained("sam2pp-demo")  # the small shipped model, offline
    state = predictor.init_state("video_frames/")

Names load on first use, so `import sam2pp` (and `sam2pp --help`) does not import torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "CheckpointMismatchError": ".checkpoint",
    "ModelConfig": ".config",
    "VideoPredictor": ".predictor.video_predictor",
    "FrameResult": ".predictor.results",
    "build_model": ".checkpoint",
    "configs": None,
    "connected_components": ".kernels",
    "demo_predictor": ".demo",
}
"""Public name -> the module that defines it (None: the name is a submodule)."""

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'sam2pp' has no attribute {name!r}")
    module = _LAZY[name]
    value = import_module(f".{name}", __name__) if module is None else getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
