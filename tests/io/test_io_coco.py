"""COCO files: validation errors name the file and the entry; detection box clamps; atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stip_rt.errors import DataError
from stip_rt.io.coco import (
    keypoint_category,
    poses_to_coco,
    read_coco_detections,
    read_coco_gt,
    read_coco_results,
    write_coco_results,
)
from stip_rt.types import Poses


def _write(tmp_path: Path, data, name: str = "f.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


def test_shared_files_read(data_dir: Path) -> None:
    coco = data_dir / "coco_val2017_keypoints" / "annotations"
    gt = read_coco_gt(coco / "person_keypoints_val2017_sample.json", 17)
    assert len(gt["images"]) == 3
    res = read_coco_results(coco / "keypoint_results_sample.json", 17, {i["id"] for i in gt["images"]})
    assert len(res) == 55
    sizes = {i["id"]: (i["width"], i["height"]) for i in gt["images"]}
    dets = read_coco_detections(coco / "person_detections_results_sample.json", sizes)
    assert sum(len(d) for d in dets.values()) == 81 and set(dets) == set(sizes)
    d = dets[785]
    assert d.boxes.dtype == np.float32 and np.all(d.boxes[:, 2] > d.boxes[:, 0])
    first = json.loads((coco / "person_detections_results_sample.json").read_text())[0]
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose(d.boxes[0], [x, y, x + w, y + h], rtol=1e-6)


BAD_RESULTS = [
    ({"x": 1}, "expected a JSON list"),
    ([{"image_id": 1, "category_id": 1, "score": 0.5}], r"entry \[0\]: missing key\(s\) 'keypoints'"),
    ([{"image_id": 1, "category_id": 1, "keypoints": [0.0] * 42, "score": 0.5}], r"entry \[0\].*14 joints.*17"),
    ([{"image_id": 9, "category_id": 1, "keypoints": [0.0] * 51, "score": 0.5}], r"entry \[0\]: image_id 9 is not"),
    ([{"image_id": 1, "category_id": 1, "keypoints": [0.0] * 51, "score": 0.5},
      {"image_id": 1, "category_id": 1, "keypoints": [float("nan")] * 51, "score": 0.5}], r"entry \[1\].*NaN"),
    ([{"image_id": 1, "category_id": 1, "keypoints": [0.0] * 51, "score": None}], r"'score' must be a finite"),
    ("[{", "invalid JSON at line 1"),
]  # fmt: skip


@pytest.mark.parametrize("data,match", BAD_RESULTS)
def test_bad_results(tmp_path: Path, data, match: str) -> None:
    p = _write(tmp_path, data, "res.json")
    with pytest.raises(DataError, match=match) as e:
        read_coco_results(p, 17, {1})
    assert str(p) in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_coco_gt(tmp_path / "nope.json")


def _gt(**ann) -> dict:
    """One image (id 1) with one annotation: a valid one, with ``ann``'s keys changed (None: removed)."""
    a = {"image_id": 1, "keypoints": [0] * 51, "bbox": [0, 0, 1, 1], "num_keypoints": 0, "iscrowd": 0} | ann
    return {"images": [{"id": 1}], "annotations": [{k: v for k, v in a.items() if v is not None}], "categories": []}


BAD_GT = [
    ({"images": [], "annotations": []}, "missing key"),
    ({"images": [{"id": 1}, {"id": 1}], "annotations": [], "categories": []}, r"images\[1\]: duplicate image id 1"),
    (_gt(image_id=2), r"annotations\[0\]: image_id 2 is not in 'images'"),
    (_gt(keypoints=[0] * 42), r"annotations\[0\]: 'keypoints' has 14 joints, expected 17"),
    # pycocotools / xtcocotools need both (KeyError), faster-coco-eval ignores people without num_keypoints
    (_gt(num_keypoints=None), r"annotations\[0\]: missing key\(s\) 'num_keypoints'"),
    (_gt(iscrowd=None), r"annotations\[0\]: missing key\(s\) 'iscrowd'"),
    (_gt(num_keypoints=-1), r"annotations\[0\]: 'num_keypoints' must be an integer >= 0, got -1"),
    (_gt(num_keypoints="3"), r"'num_keypoints' must be an integer >= 0, got '3'"),
    (_gt(iscrowd=2), r"annotations\[0\]: 'iscrowd' must be 0 or 1, got 2"),
]


def test_valid_gt_fixture(tmp_path: Path) -> None:
    assert read_coco_gt(_write(tmp_path, _gt(), "gt.json"), 17)["annotations"][0]["iscrowd"] == 0


@pytest.mark.parametrize("data,match", BAD_GT)
def test_bad_gt(tmp_path: Path, data, match: str) -> None:
    p = _write(tmp_path, data, "gt.json")
    with pytest.raises(DataError, match=match) as e:
        read_coco_gt(p, 17)
    assert str(p) in str(e.value)


def test_detection_clamps_and_errors(tmp_path: Path) -> None:
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 0], "score": 0.9},  # zero size → 1 px
        {"image_id": 1, "category_id": 1, "bbox": [500, 10, 20, 20], "score": 0.8},  # outside → dropped
        {"image_id": 1, "category_id": 1, "bbox": [-20, -20, 40, 40], "score": 0.7},  # partly outside → kept
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "score": 0.9},  # not a person
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.01},  # under the threshold
    ]
    out = read_coco_detections(_write(tmp_path, dets), {1: (100, 100), 2: (50, 50)}, score_threshold=0.05)
    np.testing.assert_allclose(out[1].boxes, [[9.5, 9.5, 10.5, 10.5], [-20, -20, 20, 20]])
    np.testing.assert_allclose(out[1].scores, [0.9, 0.7])
    assert len(out[2]) == 0
    bad = [
        ([{"image_id": 3, "bbox": [0, 0, 1, 1], "score": 1}], r"entry \[0\]: image_id 3 is not among"),
        ([{"image_id": 1, "bbox": [0, 0, -1, 1], "score": 1}], r"entry \[0\]: 'bbox' has a negative size"),
        ([{"image_id": 1, "bbox": [0, float("nan"), 1, 1], "score": 1}], r"NaN"),
        ([{"image_id": 1, "bbox": [0, 0, 1], "score": 1}], r"'bbox' has 3 values, expected 4"),
        ([{"image_id": 1, "box": [0, 0, 1, 1], "score": 1}], r"missing key\(s\) 'bbox'"),
    ]
    for data, match in bad:
        p = _write(tmp_path, data, "dets.json")
        with pytest.raises(DataError, match=match):
            read_coco_detections(p, {1: (100, 100)})


def test_write_and_read_back(tmp_path: Path) -> None:
    kps = np.random.default_rng(0).random((2, 17, 3)).astype(np.float32)
    poses = Poses(np.zeros((2, 4), np.float32), np.ones(2, np.float32), kps, np.array([0.5, 0.25], np.float32))
    out = write_coco_results(tmp_path / "sub" / "res.json", poses_to_coco(7, poses))
    back = read_coco_results(out, 17, {7})
    assert [r["score"] for r in back] == [0.5, 0.25]
    np.testing.assert_allclose(np.array(back[1]["keypoints"]).reshape(17, 3), kps[1], rtol=1e-6)
    assert list((tmp_path / "sub").iterdir()) == [out]  # no temp file left behind


def test_results_carry_the_box_and_pycocotools_evaluates_them(data_dir: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from stip_rt.eval.keypoints import evaluate_keypoints

    gt_path = data_dir / "coco_val2017_keypoints" / "annotations" / "person_keypoints_val2017_sample.json"
    gt = json.loads(gt_path.read_text())
    results = []
    for a in gt["annotations"]:  # perfect keypoints, each with its ground-truth box (a detector box)
        if a["num_keypoints"] == 0 or a.get("iscrowd", 0):
            continue
        kp = np.array(a["keypoints"], np.float32).reshape(1, 17, 3)
        kp[..., 2] = 1.0
        x, y, w, h = a["bbox"]
        poses = Poses(np.array([[x, y, x + w, y + h]], np.float32), np.ones(1, np.float32), kp, np.ones(1, np.float32))
        results.extend(poses_to_coco(a["image_id"], poses))
    assert results and all(len(r["bbox"]) == 4 for r in results)
    a0 = next(a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a.get("iscrowd", 0))
    assert results[0]["bbox"] == pytest.approx(a0["bbox"], abs=1e-3)
    coco = COCO(str(gt_path))
    dt = coco.loadRes(json.loads(json.dumps(results)))  # the bbox is what pycocotools keeps
    assert dt.anns[1]["bbox"] == pytest.approx(a0["bbox"], abs=1e-3)
    ev = COCOeval(coco, dt, "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)
    # stip-rt's own evaluation ignores the box (the official keypoint protocol): same numbers either way
    no_box = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    assert evaluate_keypoints(gt_path, results).values == evaluate_keypoints(gt_path, no_box).values
    assert "bbox" not in poses_to_coco(1, poses, bbox=False)[0]


@pytest.mark.parametrize("num_keypoints", [17, None])
def test_no_people_give_no_results(num_keypoints: int | None) -> None:
    assert poses_to_coco(7, Poses.empty(num_keypoints)) == []


KP = ["nose", "neck"]


@pytest.mark.parametrize("categories, expected", [
    ([{"id": 1, "name": "person", "keypoints": KP}], 1),  # COCO, CrowdPose
    ([{"id": 7, "name": "person", "keypoints": KP}], 7),  # a lab's dataset
    ([{"id": 0, "name": "human", "keypoints": KP}], 0),  # the category with keypoints, whatever its name
    ([{"id": 2, "name": "car"}, {"id": 5, "name": "Person"}], 5),  # no keypoint list: the one named person
    ([{"id": 3, "name": "ball", "keypoints": []}, {"id": 4, "name": "person", "keypoints": KP}], 4),
])  # fmt: skip
def test_keypoint_category(categories, expected) -> None:
    assert keypoint_category({"categories": categories}, "gt.json") == expected


def test_keypoint_category_of_a_file_without_categories_is_cocos() -> None:
    assert keypoint_category({"images": [], "annotations": []}, "train.json") == 1


@pytest.mark.parametrize("categories, match", [
    ([{"id": 1, "name": "person", "keypoints": KP}, {"id": 2, "name": "hand", "keypoints": KP}],
     r"several categories have 'keypoints' \(categories: id 1 'person', id 2 'hand'\)"),
    ([{"id": 1, "name": "car"}], r"no category has 'keypoints' or is named 'person'"),
    ([], r"no category has 'keypoints' .*categories: none"),
    ([{"id": 1, "name": "person"}, {"id": 2, "name": "person"}], r"several categories are named 'person'"),
    ([{"id": "p", "name": "person", "keypoints": KP}], r"id 'p', expected an integer"),
    ([{"name": "person", "keypoints": KP}], r"categories\[0\]: missing key\(s\) 'id'"),
])  # fmt: skip
def test_ambiguous_keypoint_categories_are_refused(categories, match) -> None:
    with pytest.raises(DataError, match=match) as e:
        keypoint_category({"categories": categories}, "ground truth /data/lab.json")
    assert str(e.value).startswith("ground truth /data/lab.json: ")


def test_detections_of_the_datasets_person_category_else_cocos(tmp_path: Path) -> None:
    sizes = {1: (100, 100)}
    ours = [{"image_id": 1, "category_id": 7, "bbox": [0, 0, 5, 5], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [9, 9, 5, 5], "score": 0.8}]  # fmt: skip
    np.testing.assert_allclose(read_coco_detections(_write(tmp_path, ours), sizes, category_id=7)[1].boxes,
                               [[0, 0, 5, 5]])
    # a COCO detector's file (person = 1) for a dataset whose person category is 7: its persons
    coco_detector = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9},
                     {"image_id": 1, "category_id": 3, "bbox": [9, 9, 5, 5], "score": 0.8}]  # fmt: skip
    np.testing.assert_allclose(read_coco_detections(_write(tmp_path, coco_detector), sizes, category_id=7)[1].boxes,
                               [[0, 0, 5, 5]])
    # neither: every image would silently get no person
    p = _write(tmp_path, [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.9}], "cars.json")
    with pytest.raises(DataError, match=r"cars\.json: none of its 1 boxes is of the person category 7"):
        read_coco_detections(p, sizes, category_id=7)
    assert read_coco_detections(_write(tmp_path, []), sizes, category_id=7)[1].boxes.shape == (0, 4)


def test_results_written_with_the_datasets_person_category() -> None:
    poses = Poses(np.float32([[0, 0, 4, 4]]), np.float32([1]), np.zeros((1, 17, 3), np.float32), np.float32([1]))
    assert poses_to_coco(3, poses, category_id=0)[0]["category_id"] == 0
