"""TAP-Vid point scores (query_mode 'first'): conventions and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from sam2pp.eval import evaluate
from sam2pp.eval.pt import score_video, scored_frames
from sam2pp.io import PointTracks, write_points_npz


def _tracks(t=5, n=3, size=(256, 256), visible=True):
    xy = np.stack([np.stack([np.full(n, 10.0 + 5 * i), 20.0 + 7 * np.arange(n)], -1) for i in range(t)])
    return PointTracks(xy, np.full((t, n), visible), size)


def _shifted(tracks, dx, visibs=None, size=None):
    return PointTracks(tracks.trajs_2d + [dx, 0], tracks.visibs if visibs is None else visibs,
                       size or tracks.size)


def test_perfect_prediction():
    gt = _tracks()
    row = score_video("v", gt, gt)
    assert row["AJ"] == 1 and row["delta_avg"] == 1 and row["OA"] == 1


def test_thresholds_are_strict_and_rescaled():
    gt = _tracks(size=(512, 512))  # 4 px in the video = 2 px at 256x256
    row = score_video("v", gt, _shifted(gt, 4))
    assert row["pts_within_2"] == 0 and row["pts_within_4"] == 1  # squared distance 4 is not < 4
    assert row["Jaccard_2"] == 0  # all predicted visible but too far: false positives


def test_coordinates_are_truncated_before_rescaling():
    gt = _tracks()
    row = score_video("v", gt, _shifted(gt, 1.9))  # 1.9 truncates to 1: distance 1 is not < 1
    assert row["pts_within_1"] == 0 and row["pts_within_2"] == 1


def test_prediction_uses_its_own_size_or_the_gt_size():
    gt = _tracks(size=(256, 256))
    pred = PointTracks(gt.trajs_2d * 2, gt.visibs, (512, 512))
    assert score_video("v", gt, pred)["AJ"] == 1
    assert score_video("v", gt, PointTracks(gt.trajs_2d, gt.visibs, None))["AJ"] == 1


def test_only_frames_after_first_visible_are_scored():
    visibs = np.ones((5, 2), bool)
    visibs[:2, 0] = False
    visibs[:, 1] = False  # never visible: not scored at all
    np.testing.assert_array_equal(scored_frames(visibs)[:, 0], [False, False, False, True, True])
    assert not scored_frames(visibs)[:, 1].any()
    gt = PointTracks(_tracks(n=2).trajs_2d, visibs, (256, 256))
    pred = PointTracks(gt.trajs_2d + 100, np.ones((5, 2), bool), (256, 256))
    pred.trajs_2d[3:, 0] = gt.trajs_2d[3:, 0]  # correct exactly on the scored frames of point 0
    row = score_video("v", gt, pred)
    assert row["pts_within_1"] == 1 and row["OA"] == 1 and row["AJ"] == 1


def test_visibility_mistakes():
    gt = _tracks(t=3, n=2)
    visibs = gt.visibs.copy()
    visibs[1:, 1] = False  # point 1 later occluded in GT
    gt = PointTracks(gt.trajs_2d, visibs, gt.size)
    row = score_video("v", gt, _shifted(gt, 0, visibs=np.ones((3, 2), bool)))
    assert row["OA"] == pytest.approx(2 / 4)
    assert row["pts_within_1"] == 1  # visibility is ignored
    assert row["Jaccard_1"] == pytest.approx(2 / (2 + 2))  # two false positives


def test_dataset_mean_is_over_videos(tmp_path):
    good, bad = _tracks(t=3, n=1), _tracks(t=9, n=4)
    for video, gt, pred in (("good", good, good), ("bad", bad, _shifted(bad, 50))):
        write_points_npz(tmp_path / "GT" / f"{video}.npz", gt)
        write_points_npz(tmp_path / "PRED" / f"{video}.npz", pred)
    result = evaluate("pt", tmp_path / "GT", tmp_path / "PRED", progress=False)
    assert result.summary["AJ"] == pytest.approx(0.5)
    assert result.per_sequence["bad"]["AJ"] == 0


def test_gt_without_size_is_an_error(tmp_path):
    write_points_npz(tmp_path / "GT" / "v.npz", _tracks(size=None))
    write_points_npz(tmp_path / "PRED" / "v.npz", _tracks())
    with pytest.raises(ValueError, match=r"v\.npz: GT needs `size`"):
        evaluate("pt", tmp_path / "GT", tmp_path / "PRED", progress=False)


def test_missing_sequence_is_an_error(tmp_path):
    write_points_npz(tmp_path / "GT" / "v.npz", _tracks())
    (tmp_path / "PRED").mkdir()
    with pytest.raises(ValueError, match=r"missing prediction file.*'v'"):
        evaluate("pt", tmp_path / "GT", tmp_path / "PRED", progress=False)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"video 'v': prediction has \(T, N\) = \(4, 3\)"):
        score_video("v", _tracks(t=5), _tracks(t=4))


def test_never_visible_video_is_an_error():
    with pytest.raises(ValueError, match="video 'v': nothing to score"):
        score_video("v", _tracks(visible=False), _tracks())


def test_visible_gt_point_with_nan_is_an_error():
    gt = _tracks()
    gt.trajs_2d[2, 1] = np.nan
    with pytest.raises(ValueError, match="video 'v', frame 2: GT point 1 is visible but has NaN"):
        score_video("v", gt, _tracks())


def test_nan_prediction_counts_as_far():
    gt = _tracks()
    pred = _shifted(gt, 0)
    pred.trajs_2d[:] = np.nan
    row = score_video("v", gt, pred)
    assert row["pts_within_16"] == 0 and row["AJ"] == 0


def test_hidden_files_are_not_videos(tmp_path):
    write_points_npz(tmp_path / "GT" / "v.npz", _tracks())
    write_points_npz(tmp_path / "PRED" / "v.npz", _tracks())
    (tmp_path / "GT" / "._v.npz").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    assert list(evaluate("pt", tmp_path / "GT", tmp_path / "PRED", progress=False).per_sequence) == ["v"]
