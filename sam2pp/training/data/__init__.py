"""Training videos of each task, read lazily from disk or generated, and cut into `RawClip`s as published.

Modules: `errors` (`DatasetError`), `videos` (one video's frames and annotations, on disk or generated, and the
annotation file readers), `sampling` (per-task candidate objects and targets, `sample_clip`), `datasets`
(`VideoDataset` and its folder, synthetic and resampled kinds), `layouts` (section 4, TAG, DAVIS, GOT-10k, LaSOT,
`open_dataset`), `checks` (one video's files validated) and `scan` (every video checked before training starts).
"""

from .checks import VideoCheck
from .datasets import MAX_VIDEO_TRIES, FolderDataset, Resampled, SyntheticDataset, VideoDataset
from .errors import DatasetError
from .layouts import (
    DAVIS_RESOLUTIONS,
    LASOT_LISTS,
    LAYOUTS,
    davis_dataset,
    got10k_dataset,
    lasot_dataset,
    open_dataset,
    section4_dataset,
    tag_dataset,
)
from .sampling import MIN_MASK_PIXELS, RULES, sample_clip
from .scan import ScanReport, scan
from .videos import (
    VISIBILITY_READERS,
    DiskVideo,
    GeneratedVideo,
    VideoFiles,
    VideoSource,
    read_got10k_visibility,
    read_lasot_visibility,
    read_visibles_txt,
)

__all__ = [
    "DAVIS_RESOLUTIONS",
    "LASOT_LISTS",
    "LAYOUTS",
    "MAX_VIDEO_TRIES",
    "MIN_MASK_PIXELS",
    "RULES",
    "VISIBILITY_READERS",
    "DatasetError",
    "DiskVideo",
    "FolderDataset",
    "GeneratedVideo",
    "Resampled",
    "ScanReport",
    "SyntheticDataset",
    "VideoCheck",
    "VideoDataset",
    "VideoFiles",
    "VideoSource",
    "davis_dataset",
    "got10k_dataset",
    "lasot_dataset",
    "open_dataset",
    "read_got10k_visibility",
    "read_lasot_visibility",
    "read_visibles_txt",
    "sample_clip",
    "scan",
    "section4_dataset",
    "tag_dataset",
]
