"""File formats of CONTRACT.md section 4: mask PNGs, box text files, point tracks, frame folders."""

from sam2pp.io.formats import (
    DAVIS_PALETTE,
    FRAME_EXTENSIONS,
    PointTracks,
    box_absent,
    is_hidden,
    list_frames,
    ordered_xyxy,
    read_boxes_txt,
    read_palette_png,
    read_points_npz,
    read_text,
    write_boxes_txt,
    write_palette_png,
    write_points_npz,
    xywh_to_xyxy,
    xyxy_to_xywh,
)

__all__ = [
    "DAVIS_PALETTE",
    "FRAME_EXTENSIONS",
    "PointTracks",
    "box_absent",
    "is_hidden",
    "list_frames",
    "ordered_xyxy",
    "read_boxes_txt",
    "read_palette_png",
    "read_points_npz",
    "read_text",
    "write_boxes_txt",
    "write_palette_png",
    "write_points_npz",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]
