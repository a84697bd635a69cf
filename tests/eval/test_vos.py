"""DAVIS J&F: conventions and clear errors on malformed folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.morphology import disk

from sam2pp.eval import evaluate
from sam2pp.eval.vos import boundary_f, jaccard, seg2bmap, statistics, within
from sam2pp.io import write_palette_png


def _write_video(root, video, frames):
    for t, ids in enumerate(frames):
        write_palette_png(root / video / f"{t:05d}.png", np.asarray(ids))


def _square(h=20, w=30, box=(5, 5, 12, 15), obj=1):
    ids = np.zeros((h, w), np.uint8)
    ids[box[0]:box[2], box[1]:box[3]] = obj
    return ids


def _folders(tmp_path, gt_frames, pred_frames, video="v"):
    _write_video(tmp_path / "GT", video, gt_frames)
    _write_video(tmp_path / "PRED", video, pred_frames)
    return tmp_path / "GT", tmp_path / "PRED"


def test_perfect_prediction_scores_one(tmp_path):
    frames = [_square(box=(2 + t, 3, 10 + t, 12)) for t in range(6)]
    result = evaluate("vos", *_folders(tmp_path, frames, frames), progress=False)
    assert result.summary["J-Mean"] == 1 and result.summary["F-Mean"] == 1
    assert result.summary["J-Decay"] == 0 and result.summary["J&F-Mean"] == 1
    assert list(result.per_sequence) == ["v_1"]


def test_first_and_last_frames_are_not_scored(tmp_path):
    gt = [_square() for _ in range(4)]
    pred = [np.zeros_like(gt[0]), gt[1], gt[2], np.zeros_like(gt[0])]
    result = evaluate("vos", *_folders(tmp_path, gt, pred), progress=False)
    assert result.summary["J-Mean"] == 1


def test_object_absent_from_frame0_below_max_is_scored_and_late_ids_are_not(tmp_path):
    first = _square(obj=2)  # ids 1..2 are the objects; 1 is absent here
    later = _square(obj=1) + _square(box=(0, 0, 3, 3), obj=3)  # id 3 appears late: not an object
    gt = [first, later, later, later]
    pred = [first, np.zeros_like(first), np.zeros_like(first), first]
    result = evaluate("vos", *_folders(tmp_path, gt, pred), progress=False)
    assert set(result.per_sequence) == {"v_1", "v_2"}
    assert result.per_sequence["v_1"]["J-Mean"] == 0  # present in GT, predicted empty
    assert result.per_sequence["v_2"]["J-Mean"] == 1  # empty in both: J = 1
    assert result.per_sequence["v_2"]["F-Mean"] == 1


def test_dataset_mean_is_object_weighted(tmp_path):
    two = _square(obj=1) + _square(box=(15, 20, 19, 28), obj=2)
    _write_video(tmp_path / "GT", "a", [two] * 3)
    _write_video(tmp_path / "PRED", "a", [two] * 3)
    _write_video(tmp_path / "GT", "b", [_square()] * 3)
    _write_video(tmp_path / "PRED", "b", [np.zeros_like(two)] * 3)
    result = evaluate("vos", tmp_path / "GT", tmp_path / "PRED", progress=False)
    assert result.summary["J-Mean"] == pytest.approx(2 / 3)  # per-video mean would give 1/2


def test_void_pixels_are_ignored(tmp_path):
    gt = _square()
    gt[0:3, :] = 255
    pred = _square()
    pred[0:3, :] = 1
    result = evaluate("vos", *_folders(tmp_path, [gt] * 3, [pred] * 3), progress=False)
    assert result.summary["J-Mean"] == 1 and result.summary["F-Mean"] == 1


def test_missing_sequence_in_predictions(tmp_path):
    gt, pred = _folders(tmp_path, [_square()] * 3, [_square()] * 3)
    _write_video(gt, "other", [_square()] * 3)
    with pytest.raises(ValueError, match=r"missing prediction folder.*'other'"):
        evaluate("vos", gt, pred, progress=False)


def test_frame_count_mismatch_names_video_and_frame(tmp_path):
    gt, pred = _folders(tmp_path, [_square()] * 5, [_square()] * 4)
    with pytest.raises(ValueError, match=r"video 'v'.*prediction frame\(s\) missing.*00004\.png"):
        evaluate("vos", gt, pred, progress=False)


def test_wrong_shape_names_video_and_frame(tmp_path):
    gt, pred = _folders(tmp_path, [_square()] * 3, [_square()] * 2 + [_square(h=21)])
    with pytest.raises(ValueError, match=r"video 'v', frame 00002\.png: prediction mask is 30x21"):
        evaluate("vos", gt, pred, progress=False)


def test_rgb_prediction_is_rejected(tmp_path):
    gt, pred = _folders(tmp_path, [_square()] * 3, [_square()] * 3)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(pred / "v" / "00001.png")
    with pytest.raises(ValueError, match=r"00001\.png.*'RGB'"):
        evaluate("vos", gt, pred, progress=False)


def test_prediction_id_above_object_count(tmp_path):
    pred = [_square(), _square(obj=3), _square()]
    gt, pred = _folders(tmp_path, [_square()] * 3, pred)
    with pytest.raises(ValueError, match=r"video 'v', frame 00001\.png: prediction holds id 3"):
        evaluate("vos", gt, pred, progress=False)


def test_too_few_frames(tmp_path):
    gt, pred = _folders(tmp_path, [_square()] * 2, [_square()] * 2)
    with pytest.raises(ValueError, match="at least 3"):
        evaluate("vos", gt, pred, progress=False)


def test_no_objects_at_all(tmp_path):
    empty = np.zeros((10, 10), np.uint8)
    gt, pred = _folders(tmp_path, [empty] * 3, [empty] * 3)
    with pytest.raises(ValueError, match="no object"):
        evaluate("vos", gt, pred, progress=False)


def test_jaccard_counts_and_empty_convention():
    gt = np.zeros((2, 4, 4), bool)
    pred = np.zeros((2, 4, 4), bool)
    gt[0, :2, :2] = True
    pred[0, :2, :] = True
    np.testing.assert_allclose(jaccard(gt, pred), [0.5, 1.0])


def test_seg2bmap_semantics():
    dot = np.zeros((5, 5), bool)
    dot[2, 2] = True
    # the pixel differs from its right/lower neighbours, and its upper/left neighbours differ from it
    assert set(map(tuple, np.argwhere(seg2bmap(dot)))) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert not seg2bmap(np.ones((4, 6), bool)).any()  # the frame's edge is not a boundary
    stack = np.stack([dot, np.ones((5, 5), bool)])
    np.testing.assert_array_equal(seg2bmap(stack)[0], seg2bmap(dot))


def test_within_equals_disk_dilation():
    rng = np.random.default_rng(3)
    points = rng.uniform(size=(40, 50)) > 0.97
    for radius in (1, 2, 5):
        np.testing.assert_array_equal(within(points, radius), ndimage.binary_dilation(points, disk(radius)))


def test_boundary_f_special_cases():
    some = np.zeros((1, 20, 20), bool)
    some[0, 5:10, 5:10] = True
    none = np.zeros_like(some)
    assert boundary_f(none, none, 2)[0] == 1  # neither boundary
    assert boundary_f(some, none, 2)[0] == 0  # no prediction: P=1, R=0
    assert boundary_f(none, some, 2)[0] == 0  # no GT boundary: P=0, R=1
    assert boundary_f(some, some, 2)[0] == 1
    far = np.roll(some, 8, axis=2)
    assert boundary_f(some, far, 2)[0] < boundary_f(some, np.roll(some, 1, axis=2), 2)[0]


def test_boundary_f_tolerance():
    gt = np.zeros((1, 30, 30), bool)
    gt[0, 10:20, 10:20] = True
    shifted = np.roll(gt, 2, axis=2)
    assert boundary_f(gt, shifted, 2)[0] == 1  # every boundary pixel within 2 px
    assert boundary_f(gt, shifted, 1)[0] < 1


def test_statistics_recall_and_decay_bins():
    mean, recall, decay = statistics(np.array([1.0, 0.5, 0.2]))
    assert mean == pytest.approx(1.7 / 3)
    assert recall == pytest.approx(1 / 3)  # 0.5 is not > 0.5
    # N=3: linspace gives 1, 1.5, 2, 2.5, 3; with the +1e-10 nudge ids = [0, 1, 1, 2, 2]
    assert decay == pytest.approx((1.0 + 0.5) / 2 - 0.2)
    values = np.arange(10, dtype=float)[::-1]
    # N=10: ids = [0, 2, 5, 7, 9] -> first bin values[0:3], last bin values[7:10]
    assert statistics(values)[2] == pytest.approx(np.mean(values[0:3]) - np.mean(values[7:10]))


def test_cropping_to_the_object_keeps_scores(tmp_path):
    """score_video crops each object to its support; edge-touching objects must score as on full frames."""
    gt = [_square(box=(10, 18, 20, 30)), _square(box=(12, 20, 20, 30)), _square(box=(0, 0, 6, 9))]
    pred = [g.copy() for g in gt]
    pred[1] = np.roll(gt[1], (-3, -2), axis=(0, 1))
    result = evaluate("vos", *_folders(tmp_path, gt + [gt[0]], pred + [pred[0]]), progress=False)
    gt_stack, pred_stack = np.stack(gt[1:]) == 1, np.stack(pred[1:]) == 1
    radius = int(np.ceil(0.008 * np.hypot(20, 30)))
    assert result.per_sequence["v_1"]["J-Mean"] == pytest.approx(jaccard(gt_stack, pred_stack).mean())
    assert result.per_sequence["v_1"]["F-Mean"] == pytest.approx(boundary_f(gt_stack, pred_stack, radius).mean())
    assert result.per_sequence["v_1"]["F-Mean"] < 1
