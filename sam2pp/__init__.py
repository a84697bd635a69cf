"""sam2pp: SAM 2++, one video tracker for masks, boxes and points.

    import sam2pp
    predictor = sam2pp.VideoPredictor.from_pretrained("MCG-NJU/SAM2-Plus", device="cuda")
    state = predictor.init_state("video_frames/")
"""

from . import configs
from .checkpoint import CheckpointMismatchError, build_model
from .config import ModelConfig

__version__ = "0.1.0"

__all__ = ["CheckpointMismatchError", "ModelConfig", "VideoPredictor", "FrameResult", "build_model", "configs",
           "connected_components", "demo_predictor"]


def __getattr__(name: str):
    # The predictor pulls in frame decoding and tqdm; load it on first use.
    if name in ("VideoPredictor", "FrameResult"):
        from .predictor import video_predictor, results

        return {"VideoPredictor": video_predictor.VideoPredictor, "FrameResult": results.FrameResult}[name]
    if name == "demo_predictor":
        from .demo import demo_predictor

        return demo_predictor
    if name == "connected_components":
        from .kernels import connected_components

        return connected_components
    raise AttributeError(f"module 'sam2pp' has no attribute {name!r}")
