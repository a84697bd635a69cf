"""LaSOT/OTB and GOT-10k box scores: conventions and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from sam2pp.eval import evaluate
from sam2pp.eval.sot import iou, lasot_scores, score_sequence
from sam2pp.io import write_boxes_txt

NAN = [np.nan] * 4


def _track(n=6):
    return np.array([[10 + 3 * t, 20 + 2 * t, 40, 30] for t in range(n)], dtype=float)


def _folders(tmp_path, sequences):
    for video, (gt, pred) in sequences.items():
        write_boxes_txt(tmp_path / "GT" / f"{video}.txt", gt)
        write_boxes_txt(tmp_path / "PRED" / f"{video}.txt", pred)
    return tmp_path / "GT", tmp_path / "PRED"


def test_perfect_tracker(tmp_path):
    gt = _track()
    result = evaluate("sot", *_folders(tmp_path, {"a": (gt, gt)}), progress=False)
    assert result.summary["AUC"] == pytest.approx(20 / 21)  # IoU 1 is not > 1
    assert result.summary["Precision"] == 1 and result.summary["NormPrecision"] == 1
    assert (result.summary["AO"], result.summary["SR50"], result.summary["SR75"]) == (1, 1, 1)


def test_absent_gt_counts_as_failure_for_lasot_and_is_dropped_for_got():
    gt = _track(5)
    gt[3] = np.nan
    gt[4] = 0
    scores = score_sequence("a", gt, _track(5))
    assert scores.precision == pytest.approx(3 / 5)
    assert scores.auc == pytest.approx(3 / 5 * 20 / 21)
    assert scores.got_ious.tolist() == [1.0, 1.0]  # frames 1, 2 (frame 0 skipped, 3 and 4 absent)


def test_frame0_replaced_for_lasot_and_skipped_for_got():
    gt = _track(3)
    pred = gt.copy()
    pred[0] = [500, 500, 5, 5]
    scores = score_sequence("a", gt, pred)
    assert scores.precision == 1
    assert scores.got_ious.size == 2


def test_zero_size_prediction_holds_previous_box_for_lasot_only():
    gt = _track(4)
    pred = gt.copy()
    pred[2] = pred[3] = 0
    auc, precision, _ = lasot_scores(gt, pred.copy(), np.ones(4, bool))
    held = iou(gt[1:2], gt[2:3])[0]  # frames 2 and 3 both scored with frame 1's box
    assert auc == pytest.approx(np.mean([(np.array([1, 1, held, iou(gt[1:2], gt[3:4])[0]]) > t).mean()
                                         for t in np.arange(21) * 0.05]))
    assert precision == 1  # held boxes are only a few px off
    np.testing.assert_array_equal(score_sequence("a", gt, pred).got_ious, [1.0, 0.0, 0.0])


def test_got_scores_pool_frames_across_sequences(tmp_path):
    long_gt, short_gt = _track(9), _track(3)
    wrong = short_gt + [200, 0, 0, 0]
    result = evaluate("sot", *_folders(tmp_path, {"long": (long_gt, long_gt), "short": (short_gt, wrong)}),
                      progress=False)
    assert result.summary["AO"] == pytest.approx(8 / 10)  # 8 perfect frames out of 10 pooled
    assert result.per_sequence["short"]["AO"] == 0


def test_boxes_clipped_to_image_when_size_known(tmp_path):
    gt = np.array([[0, 0, 20, 20]] * 3, float)
    pred = np.array([[0, 0, 20, 20], [-20, 0, 40, 20], [-20, 0, 40, 20]], float)
    gt_dir, pred_dir = _folders(tmp_path, {"a": (gt, pred)})
    assert evaluate("sot", gt_dir, pred_dir, progress=False).summary["AO"] == pytest.approx(0.5)
    (gt_dir / "a.size").write_text("100,50\n")
    # x clipped to 0, then w to 100 - 0 = 100: the box becomes 0,0,40,20
    assert evaluate("sot", gt_dir, pred_dir, progress=False).summary["AO"] == pytest.approx(0.5)
    (gt_dir / "a.size").write_text("10 50\n")  # clipping both boxes to a 10 px wide image
    assert evaluate("sot", gt_dir, pred_dir, progress=False).summary["AO"] == pytest.approx(1.0)


def test_bad_size_file(tmp_path):
    gt_dir, pred_dir = _folders(tmp_path, {"a": (_track(), _track())})
    (gt_dir / "a.size").write_text("100\n")
    with pytest.raises(ValueError, match=r"a\.size: expected two numbers"):
        evaluate("sot", gt_dir, pred_dir, progress=False)


def test_nan_prediction_is_an_error():
    pred = _track()
    pred[2] = NAN
    with pytest.raises(ValueError, match=r"video 'a': prediction at frame\(s\) \[2\] is NaN"):
        score_sequence("a", _track(), pred)


def test_length_mismatch_is_an_error(tmp_path):
    gt_dir, pred_dir = _folders(tmp_path, {"a": (_track(6), _track(5))})
    with pytest.raises(ValueError, match="video 'a': prediction has 5 lines, GT has 6"):
        evaluate("sot", gt_dir, pred_dir, progress=False)


def test_missing_sequence_is_an_error(tmp_path):
    gt_dir, pred_dir = _folders(tmp_path, {"a": (_track(), _track())})
    write_boxes_txt(gt_dir / "b.txt", _track())
    with pytest.raises(ValueError, match=r"missing prediction file.*'b'"):
        evaluate("sot", gt_dir, pred_dir, progress=False)


def test_iou_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]], float)
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]], float)
    np.testing.assert_allclose(iou(a, b), [50 / 150, 0, 0])


def test_binary_prediction_or_size_file_names_the_file(tmp_path):
    gt_dir, pred_dir = _folders(tmp_path, {"a": (_track(), _track())})
    (pred_dir / "a.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ValueError, match=r"PRED/a\.txt: not a text box file"):
        evaluate("sot", gt_dir, pred_dir, progress=False)
    write_boxes_txt(pred_dir / "a.txt", _track())
    (gt_dir / "a.size").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(ValueError, match=r"a\.size: not a text image size file"):
        evaluate("sot", gt_dir, pred_dir, progress=False)


def test_hidden_files_are_not_videos(tmp_path):
    gt_dir, pred_dir = _folders(tmp_path, {"a": (_track(), _track())})
    (gt_dir / "._a.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    assert list(evaluate("sot", gt_dir, pred_dir, progress=False).per_sequence) == ["a"]
