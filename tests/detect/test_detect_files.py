"""Detections from COCO results and MOTChallenge files, and create_detector's dispatch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stip_rt.detect.factory import create_detector
from stip_rt.detect.files import FileDetector, read_detections_file
from stip_rt.errors import ConfigError, DataError
from stip_rt.types import Detections

FRAME = np.zeros((10, 10, 3), np.uint8)


def test_coco_image_ids_are_frame_indices(tmp_path):
    path = tmp_path / "dets.json"
    entries = [
        {"image_id": 0, "category_id": 1, "bbox": [10, 20, 30, 40], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5},
        {"image_id": 2, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.99},  # not a person
    ]
    path.write_text(json.dumps(entries))
    det = create_detector(path)
    assert isinstance(det, FileDetector) and det.name == "file:dets.json"
    d0, d1, d2 = det.detect([FRAME] * 3, [0, 1, 2])
    np.testing.assert_allclose(d0.boxes, [[10, 20, 40, 60]])
    assert len(d1) == 0 and len(d2) == 1


def test_coco_image_ids_mapped_through_file_names(data_dir):
    ann = data_dir / "coco_val2017_keypoints" / "annotations"
    images = sorted((data_dir / "coco_val2017_keypoints" / "images").glob("*.jpg"))
    det = read_detections_file(
        ann / "person_detections_results_sample.json", images, ann / "person_keypoints_val2017_sample.json"
    )
    raw = json.loads((ann / "person_detections_results_sample.json").read_text())
    ids = json.loads((ann / "person_keypoints_val2017_sample.json").read_text())["images"]
    id_of = {img["file_name"]: img["id"] for img in ids}
    out = det.detect([FRAME] * len(images), list(range(len(images))))
    for i, img in enumerate(images):
        want = [r for r in raw if r["image_id"] == id_of[img.name] and r.get("category_id", 1) == 1]
        assert len(out[i]) == len(want)
    # without annotations: COCO file names carry the image id
    by_name = read_detections_file(ann / "person_detections_results_sample.json", images)
    assert [len(d) for d in by_name.detect([FRAME] * len(images))] == [len(d) for d in out]
    with pytest.raises(DataError, match=r"no image with file_name 'nope\.jpg'"):
        read_detections_file(
            ann / "person_detections_results_sample.json", ["nope.jpg"], ann / "person_keypoints_val2017_sample.json"
        )


def test_mot_gt_frames_are_one_based_and_ignored_rows_dropped(data_dir):
    path = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    det = create_detector(path)
    rows = np.loadtxt(path, delimiter=",")
    first = rows[(rows[:, 0] == 1) & (rows[:, 6] != 0)]
    (d,) = det.detect([FRAME], [0])
    assert len(d) == len(first)
    np.testing.assert_allclose(np.sort(d.boxes[:, 0]), np.sort(first[:, 2]), rtol=1e-6)
    assert (d.scores == 1).all()
    total = sum(len(x) for x in det.detect([FRAME] * 795, list(range(795))))
    assert total == int((rows[:, 6] != 0).sum())


def test_mot_det_scores_are_clipped(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,20,40,35.5,-1,-1,-1\n3,-1,0,0,5,5,0.25,-1,-1,-1\n")
    det = read_detections_file(path)
    d0, d1, d2 = det.detect([FRAME] * 3, [0, 1, 2])
    np.testing.assert_allclose(d0.boxes, [[10, 10, 30, 50]])
    assert d0.scores[0] == 1.0 and len(d1) == 0 and d2.scores[0] == 0.25


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"missing\.json: file not found"):
        read_detections_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 0, "bbox": [1, 2], "score": 1}]')
    with pytest.raises(DataError, match=r"bad.json: entry \[0\]"):
        read_detections_file(bad)
    other = tmp_path / "dets.csv"
    other.write_text("x")
    with pytest.raises(DataError, match=r"unknown format '\.csv'"):
        read_detections_file(other)
    with pytest.raises(ConfigError, match="did you mean 'rtmdet-tiny'"):
        create_detector("rtmdet-tine")


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((576, 768, 3), np.uint8), r"takes a sequence of images; got one \(576, 768, 3\) array"),
        ([np.zeros((0, 10, 3), np.uint8)], r"frames\[0\] must be an \(H, W, 3\) image.*got shape \(0, 10, 3\)"),
        ([FRAME, np.zeros((10, 10), np.uint8)], r"frames\[1\] must be .*got shape \(10, 10\)"),
        ([FRAME, "frame.png"], r"frames\[1\] must be .*got str"),
    ],
    ids=["one-image", "empty-image", "grey-image", "a-path"],
)
def test_detect_refuses_what_is_not_a_sequence_of_images_and_keeps_its_count(frames: object, message: str) -> None:
    det = FileDetector({0: Detections(np.float32([[1, 2, 3, 4]]), np.float32([0.9]))}, "file:d.txt")
    with pytest.raises(DataError, match=r"detector file:d\.txt: detect\(\) " + message):
        det.detect(frames)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="2 frames but 1 indices"):
        det.detect([FRAME, FRAME], [0])
    (d,) = det.detect([FRAME])  # the running count has not moved: this is frame 0
    assert len(d) == 1
