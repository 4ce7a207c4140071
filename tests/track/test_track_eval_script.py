"""scripts/eval_tracking.py on TUD-Campus (71 frames): the tracker beats the baselines; the detections it
tracks (scripts/mot_detections.py)."""

from __future__ import annotations

import numpy as np
from load_script import load_script

from stip_rt.eval.mot_metrics import evaluate_mot
from stip_rt.io.mot import read_mot
from stip_rt.types import Detections


def _script():
    return load_script("eval_tracking")


def _detections():
    return load_script("mot_detections")


def test_synthetic_detections_and_ranking(data_dir):
    ev, md = _script(), _detections()
    gt = read_mot(data_dir / "mot15/TUD-Campus/gt/gt.txt", min_score=1)
    frames = md.synthesise(gt, 640, 480, 25.0, seed=0)
    assert len(frames) == 71
    n_dets = sum(len(p) for p in frames)
    assert 0.8 * len(gt) < n_dets < 1.1 * len(gt)  # misses and false positives, roughly balanced
    assert all(p.keypoints.shape[1:] == (17, 3) for p in frames)
    scores = {}
    for name in (
        "ours (IoU+OKS, Kalman)",
        "ours live (no back-fill)",
        "ours, 1 s buffer, no OKS",
        "greedy IoU (mmpose/rtmlib)",
    ):
        tracker, box_only, backfill = ev.TRACKERS[name](25.0, (640, 480))
        res = ev.run_tracker(tracker, frames, box_only, backfill)
        scores[name] = evaluate_mot({"tud": (gt, res)})["tud"]
    ours = scores["ours (IoU+OKS, Kalman)"]
    greedy = scores["greedy IoU (mmpose/rtmlib)"]
    assert ours.idf1 > greedy.idf1 + 0.3 and ours.idsw < greedy.idsw
    assert ours.idf1 >= scores["ours, 1 s buffer, no OKS"].idf1
    assert ours.num_misses < scores["ours live (no back-fill)"].num_misses  # back-filled first frames
    assert np.isfinite([m.hota for m in scores.values()]).all()


def test_detect_every_mode_drives_the_pipeline_steps(data_dir):
    """Box-only, detect every N through the pipeline's steps: every 1 is the plain box-only tracker bit for
    bit; every 3 detects frames 0, 3, 6, … only (the other frames' detections are never read while people
    are tracked), and the coasted frames are output."""
    ev, md = _script(), _detections()
    fps, w, h, gt = ev.sequence_info(data_dir / "mot15", "TUD-Campus")
    frames = md.synthesise(gt, w, h, fps, seed=0)
    dets = [Detections(p.boxes, p.box_scores) for p in frames]
    tracker, box_only, backfill = ev.TRACKERS["ours box-only"](fps, (w, h))
    plain = ev.run_tracker(tracker, frames, box_only, backfill)
    every1 = ev.track_every(dets, 1, 0.3 * fps, fps, (w, h))
    for a in ("frames", "ids", "boxes"):
        np.testing.assert_array_equal(getattr(every1, a), getattr(plain, a))
    every3 = ev.track_every(dets, 3, 0.3 * fps, fps, (w, h))
    blanked = [d if i % 3 == 0 else Detections.empty() for i, d in enumerate(dets)]
    same = ev.track_every(blanked, 3, 0.3 * fps, fps, (w, h))
    for a in ("frames", "ids", "boxes"):
        np.testing.assert_array_equal(getattr(same, a), getattr(every3, a))
    coasted = every3.frames[(every3.frames - 1) % 3 != 0]
    assert len(coasted) > 0.5 * len(every3.frames)  # 2 frames in 3 are coasted, and output
    m = evaluate_mot({"tud": (gt, every3)})["tud"]
    assert 0.5 < m.mota < evaluate_mot({"tud": (gt, every1)})["tud"].mota
    perfect = ev.track_every(md.gt_detections(gt), 1, 0.3 * fps, fps, (w, h))  # the ground truth as detections
    assert evaluate_mot({"tud": (gt, perfect)})["tud"].mota == 1.0


def test_hog_cache_is_read_as_people_boxes(tmp_path):
    """HOG's cached windows become the person inside (15 % / 5 % margins off) with the margin clipped to [0, 1]."""
    md = _detections()
    cache = tmp_path / "seq.npz"
    xywh = np.array([[100.0, 50.0, 64.0, 128.0], [10.0, 20.0, 32.0, 64.0]])
    np.savez(cache, frame=np.array([0, 2]), xywh=xywh, weight=np.array([1.7, 0.3]), frames=3)
    dets = md.hog_detections(tmp_path / "never-read.avi", 1.0, cache)
    assert [len(d) for d in dets] == [1, 0, 1]
    np.testing.assert_allclose(dets[0].boxes, [[109.6, 56.4, 154.4, 171.6]], rtol=1e-6)
    np.testing.assert_allclose(dets[2].boxes, [[14.8, 23.2, 37.2, 80.8]], rtol=1e-6)
    np.testing.assert_allclose([dets[0].scores[0], dets[2].scores[0]], [1.0, 0.3], rtol=1e-6)
