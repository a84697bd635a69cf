"""The video predictor: sessions over a video, prompts per object, propagation, per-frame results."""

from .results import FrameResult
from .video_predictor import VideoPredictor

__all__ = ["FrameResult", "VideoPredictor"]
