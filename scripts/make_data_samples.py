"""Regenerate the shipped sample videos in data_samples/ from their seeds (see data_samples/README.md).

Deterministic and idempotent: each sample's folder is rebuilt from scratch, so running it twice, or on
another machine, gives the same masks, boxes and points (JPEG bytes may differ across Pillow builds).

    python scripts/make_data_samples.py [--out data_samples] [--only synth-shapes ...]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from sam2pp.data.synthetic import SHIPPED_SAMPLES

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data_samples", help="folder holding one folder per sample")
    parser.add_argument("--only", nargs="+", choices=sorted(SHIPPED_SAMPLES), help="regenerate these samples only")
    args = parser.parse_args(argv)
    for name in args.only or SHIPPED_SAMPLES:
        folder = args.out / name
        if folder.exists():
            shutil.rmtree(folder)
        video = SHIPPED_SAMPLES[name].generate()
        video.write(folder, name)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{folder}: {video.num_frames} frames {video.size[0]}x{video.size[1]}, "
              f"{len(video.obj_ids)} objects, {video.points.shape[1]} points, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
