"""Video data: the synthetic generator behind the tests, notebooks and shipped samples."""

from sam2pp.data.synthetic import (
    SHIPPED_SAMPLES,
    SampleFiles,
    SyntheticSpec,
    SyntheticVideo,
    box_file_name,
    make_video,
)

__all__ = [
    "SHIPPED_SAMPLES",
    "SampleFiles",
    "SyntheticSpec",
    "SyntheticVideo",
    "box_file_name",
    "make_video",
]
