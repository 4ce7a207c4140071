"""MOT metrics (motmetrics + our HOTA), PoseTrack keypoint MOTA, the eval-track verb."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from stip_rt.cli import main
from stip_rt.eval.hota import hota
from stip_rt.eval.mot_metrics import OVERALL, evaluate_mot
from stip_rt.eval.posetrack import evaluate_posetrack, load_posetrack
from stip_rt.io.mot import MotSequence, read_mot, write_mot


def seq(rows) -> MotSequence:
    a = np.asarray(rows, float).reshape(-1, 6)
    return MotSequence(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6], np.ones(len(a)))


# Ground truth: two people, 4 frames. The tracker swaps to a new id for person 2 at frame 3,
# misses person 1 at frame 4 and has one false positive at frame 2.
GT = seq([[f, 1, 0, 0, 10, 10] for f in (1, 2, 3, 4)] + [[f, 2, 100, 0, 10, 10] for f in (1, 2, 3, 4)])
RES = seq(
    [
        [1, 7, 1, 0, 10, 10],
        [2, 7, 1, 0, 10, 10],
        [3, 7, 1, 0, 10, 10],
        [1, 8, 100, 0, 10, 10],
        [2, 8, 100, 0, 10, 10],
        [3, 9, 100, 0, 10, 10],
        [4, 9, 100, 0, 10, 10],
        [2, 5, 300, 300, 10, 10],
    ]
)


def test_clear_mot_hand_checked():
    m = evaluate_mot({"s": (GT, RES)})["s"]
    # GT 8, misses 1, FP 1, IDSW 1 → MOTA = 1 - 3/8
    assert (m.num_gt, m.num_misses, m.num_fp, m.idsw) == (8, 1, 1, 1)
    assert m.mota == pytest.approx(1 - 3 / 8)
    assert m.motp == pytest.approx((3 * (90 / 110) + 4) / 7)  # mean IoU of the 7 matches
    # IDF1: best id pairing 1↔7 (3), 2↔8 or 2↔9 (2) → IDTP 5; 2·5 / (8 + 8)
    assert m.idf1 == pytest.approx(10 / 16)


def test_hota_hand_checked():
    # One gt id over 2 frames, tracked as id 1 then id 2, perfect boxes: DetA 1, AssA 1/2.
    h = hota([np.array([1]), np.array([1])], [np.array([1]), np.array([2])], [np.ones((1, 1)), np.ones((1, 1))])
    assert h.det_a == pytest.approx(1.0)
    assert h.ass_a_mean == pytest.approx(0.5)
    assert h.hota == pytest.approx(np.sqrt(0.5))
    # IoU 0.5: matched at the 10 alphas <= 0.5, missed (FN + FP) at the 9 above
    h = hota([np.array([1])], [np.array([1])], [np.full((1, 1), 0.5)])
    assert h.det_a == pytest.approx(10 / 19)
    assert h.hota == pytest.approx(10 / 19)
    assert hota([np.array([1])], [np.zeros(0, np.int64)], [np.zeros((1, 0))]).hota == 0.0


def test_hota_matches_trackeval_when_installed(data_dir):
    trackeval = pytest.importorskip("trackeval")
    from stip_rt.eval.mot_metrics import _per_frame

    gt = read_mot(data_dir / "mot15/TUD-Campus/gt/gt.txt", min_score=1)
    res = read_mot(data_dir / "mot15/TUD-Campus/tracker_results/TUD-Campus.txt")
    frames = _per_frame(gt, res)
    gu, tu = np.unique(gt.ids), np.unique(res.ids)
    data = dict(
        num_timesteps=len(frames),
        num_gt_dets=len(gt),
        num_tracker_dets=len(res),
        num_gt_ids=len(gu),
        num_tracker_ids=len(tu),
        gt_ids=[np.searchsorted(gu, g) for _, g, _, _ in frames],
        tracker_ids=[np.searchsorted(tu, t) for _, _, t, _ in frames],
        similarity_scores=[s for *_, s in frames],
    )
    ref = trackeval.metrics.HOTA().eval_sequence(data)
    m = evaluate_mot({"s": (gt, res)})["s"]
    assert m.hota == pytest.approx(ref["HOTA"].mean())
    assert m.assa == pytest.approx(ref["AssA"].mean())


def test_shared_tracker_results(data_dir):
    """The mmtracking tracker output on TUD-Campus; values cross-checked with TrackEval 1.3.0."""
    d = data_dir / "mot15/TUD-Campus"
    m = evaluate_mot({"tud": (read_mot(d / "gt/gt.txt", min_score=1), read_mot(d / "tracker_results/TUD-Campus.txt"))})
    m = m["tud"]
    assert (m.idsw, m.num_fp, m.num_misses) == (7, 13, 150)
    assert m.mota == pytest.approx(0.52646, abs=1e-5)
    assert m.idf1 == pytest.approx(0.55766, abs=1e-5)
    assert m.hota == pytest.approx(0.39140, abs=1e-5)


def test_overall_combines():
    out = evaluate_mot({"a": (GT, RES), "b": (GT, GT)})
    assert out[OVERALL].num_gt == 16 and out[OVERALL].idsw == 1
    assert out["b"].mota == 1.0 and out["b"].hota == pytest.approx(1.0)


def test_posetrack_self_is_perfect(data_dir):
    gt, names = load_posetrack(data_dir / "posetrack18/annotations/val")
    m = evaluate_posetrack(gt, gt, names)
    assert m.mota == 1.0 and m.num_frames == 2 and m.num_gt == 39  # one joint lies in an ignore region


def _two_frames(data_dir):
    gt, names = load_posetrack(data_dir / "posetrack18/annotations/val/009473_mpii_test.json")
    (f,) = gt.values()
    g2 = copy.deepcopy(f)
    g2 = type(f)(f.image_id + 1, f.video, f.order + 1, True, f.track_ids, f.keypoints, f.head_boxes, f.ignore_regions)
    return {f.image_id: f, g2.image_id: g2}, names


def test_posetrack_id_switch_and_misses(data_dir):
    gt, names = _two_frames(data_dir)
    a, b = sorted(gt)
    pred = dict(gt)
    fb = gt[b]
    pred[b] = type(fb)(
        fb.image_id, fb.video, fb.order, True, fb.track_ids + 100, fb.keypoints, fb.head_boxes, fb.ignore_regions
    )  # every person changes id in frame 2
    m = evaluate_posetrack(gt, pred, names)
    n_joints = m.num_gt // 2
    assert m.idsw == n_joints and m.num_misses == 0 and m.num_fp == 0
    assert m.mota == pytest.approx(0.5)
    # move every predicted joint of frame 1 by more than half a head size: FN + FP for all of them
    fa = gt[a]
    head = 0.6 * np.linalg.norm(fa.head_boxes[:, 2:] - fa.head_boxes[:, :2], axis=1)
    far = fa.keypoints.copy()
    far[..., 0] += head[:, None] * 0.6 + 5000  # beyond half a head size, and away from everyone else
    pred2 = dict(gt)
    pred2[a] = type(fa)(fa.image_id, fa.video, fa.order, True, fa.track_ids, far, fa.head_boxes, fa.ignore_regions)
    m2 = evaluate_posetrack(gt, pred2, names)
    assert m2.num_misses == n_joints and m2.num_fp == n_joints and m2.idsw == 0


@pytest.mark.parametrize("fmt", ["mot", "posetrack"])
def test_cli_eval_track(tmp_path, data_dir, capsys, fmt):
    if fmt == "mot":
        gt = data_dir / "mot15/TUD-Campus/gt/gt.txt"
        res = data_dir / "mot15/TUD-Campus/tracker_results/TUD-Campus.txt"
        expect = "TUD-Campus"
    else:
        gt = data_dir / "posetrack18/annotations/val"
        res = data_dir / "posetrack18/annotations/posetrack18_val_sample.json"
        expect = "PoseTrack keypoint MOTA 100.0"
    assert main(["eval-track", "--gt", str(gt), "--results", str(res), "--format", fmt]) == 0
    assert expect in capsys.readouterr().out


def test_cli_eval_track_folders(tmp_path, data_dir, capsys):
    res = tmp_path / "res"
    res.mkdir()
    write_mot(res / "TUD-Campus.txt", read_mot(data_dir / "mot15/TUD-Campus/tracker_results/TUD-Campus.txt"))
    assert main(["eval-track", "--gt", str(data_dir / "mot15"), "--results", str(res)]) == 2
    assert "no PETS09-S2L1.txt" in capsys.readouterr().err


def test_cli_eval_track_missing(tmp_path, capsys):
    assert main(["eval-track", "--gt", str(tmp_path / "none"), "--results", str(tmp_path)]) == 2
    assert "none: not found" in capsys.readouterr().err


def test_cli_eval_track_names_the_file_line(tmp_path, data_dir, capsys):
    res = tmp_path / "res.txt"
    res.write_text("\n\n\n1,1,1,1,5,5,1\n2,1,1,1,5,5,1\n0,1,1,1,5,5,1\n")  # the 3rd row is file line 6
    gt = data_dir / "mot15/TUD-Campus/gt/gt.txt"
    assert main(["eval-track", "--gt", str(gt), "--results", str(res)]) == 2
    assert f"MOT file {res}: line 6: frame numbers must be integers >= 1" in capsys.readouterr().err


def test_cli_eval_track_reads_posetrack_per_joint_scores(tmp_path, data_dir, capsys):
    gt = data_dir / "posetrack18/annotations/val/009473_mpii_test.json"
    pred = json.loads(gt.read_text())
    for a in pred["annotations"]:  # the official format's per-joint scores; the third values say nothing
        a["scores"] = [0.9 if v > 0 else 0.0 for v in a["keypoints"][2::3]]  # the labelled joints score 0.9
        a["keypoints"][2::3] = [0] * 17
    res = tmp_path / "pred.json"
    res.write_text(json.dumps(pred))
    argv = ["eval-track", "--gt", str(gt), "--results", str(res), "--format", "posetrack"]
    assert main(argv) == 0
    assert "PoseTrack keypoint MOTA 100.0" in capsys.readouterr().out  # (third values: every joint dropped, 0.0)
    assert main([*argv, "--min-score", "0.95"]) == 0  # the scores are what --min-score compares
    assert "PoseTrack keypoint MOTA 0.0" in capsys.readouterr().out
    pred["annotations"][1]["scores"] = [0.9] * 15
    res.write_text(json.dumps(pred))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"stip-rt eval-track: error: PoseTrack file {res}: annotation 1: 'scores' has 15 values, "
                   "expected 17 (one per joint, as 'keypoints' has 17 × 3)"]


def test_mot15_ground_truth_against_itself_counts_its_zero_marked_rows_as_false_positives(data_dir):
    # As TrackEval's MOT15 evaluation (mot_challenge_2d_box.py, get_preprocessed_seq_data): ground-truth rows
    # marked 0 are dropped; tracker rows are never removed for MOT15 (its distractor matching is skipped), and
    # tracker confidences are not filtered. PETS09-S2L1 marks 174 of its 4650 rows 0: MOTA 1 - 174/4476.
    gt_file = data_dir / "mot15/PETS09-S2L1/gt/gt.txt"
    gt, as_results = read_mot(gt_file, min_score=1), read_mot(gt_file)
    assert len(as_results.frames) - len(gt.frames) == 174
    m = evaluate_mot({"pets": (gt, as_results)})["pets"]
    assert (m.num_fp, m.num_misses, m.idsw, m.num_gt) == (174, 0, 0, 4476)
    assert m.mota == pytest.approx(1 - 174 / 4476) and round(100 * m.mota, 1) == 96.1
    assert evaluate_mot({"pets": (gt, gt)})["pets"].mota == 1.0  # the rows it scores, against themselves
