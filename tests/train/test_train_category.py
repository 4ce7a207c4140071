"""A custom keypoint dataset whose person category is not COCO's 1 (here 7, as a lab's COCO-format file may
have): training, validation and ``stip-rt eval`` use the file's keypoint category and write results with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from train_helpers import make_config

from stip_rt.cli import main
from stip_rt.errors import DataError
from stip_rt.eval.keypoints import evaluate_keypoints
from stip_rt.models import build_model, load_spec
from stip_rt.train.trainer import train
from stip_rt.train.validate import ValConfig, validate
from stip_rt.types import Poses


def _relabel(coco: tuple[Path, Path], folder: Path, category_id: int) -> tuple[Path, Path]:
    """The 3 shared COCO images and their annotations copied into ``folder``, person category id rewritten."""
    ann, images = coco
    data = json.loads(ann.read_text())
    for c in data["categories"]:
        c["id"] = category_id
    for a in data["annotations"]:
        a["category_id"] = category_id
    shutil.copytree(images, folder / "images")
    (folder / "ann.json").write_text(json.dumps(data))
    return folder / "ann.json", folder / "images"


@pytest.fixture
def coco7(coco, tmp_path) -> tuple[Path, Path]:
    return _relabel(coco, tmp_path / "lab", 7)


def _eval(capsys, gt: Path, images: Path, detections: Path, model: Path, out: Path, *extra: str) -> dict:
    assert main(["eval", "--gt", str(gt), "--images", str(images), "--detections", str(detections),
                 "--model", str(model), "--device", "cpu", "--backend", "torch", "--out", str(out), "--json",
                 *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_train_validate_and_eval_a_dataset_whose_person_category_is_7(coco, coco7, data_dir, tmp_path,
                                                                      tiny_coco_yaml, capsys):
    # before: "train_ann ...: no annotated person to train on"
    events = []
    val = ValConfig(ann=str(coco7[0]), images=str(coco7[1]))
    result = train(make_config(tiny_coco_yaml, coco7, tmp_path / "run", val=val), events.append)
    assert result.steps == 3  # the 7 labelled people, batch 2
    assert [set(e.metrics) >= {"AP", "AR"} for e in events if e.kind == "val"] == [True]
    # the trained model, scored on the same images labelled 1 and labelled 7: the same numbers, and results
    # that differ only by their category (before: written as 1, scored as none of category 7's people)
    dets = data_dir / "coco_val2017_keypoints/annotations/person_detections_results_sample.json"  # category 1
    m1 = _eval(capsys, *coco, dets, result.model, tmp_path / "res1.json")
    m7 = _eval(capsys, *coco7, dets, result.model, tmp_path / "res7.json")
    assert m7 == m1
    res1, res7 = (json.loads((tmp_path / f"res{i}.json").read_text()) for i in (1, 7))
    assert len(res7) == len(res1) > 0 and {r["category_id"] for r in res7} == {7}
    assert [{**r, "category_id": 1} for r in res7] == res1


def _noisy_gt_poses(ann: Path) -> dict[int, Poses]:
    """Image id → the labelled people's ground-truth keypoints moved by a few pixels (AP well above 0, below 1)."""
    rng = np.random.default_rng(0)
    out: dict[int, list] = {}
    for a in json.loads(ann.read_text())["annotations"]:
        if a["num_keypoints"] > 0:
            k = np.asarray(a["keypoints"], np.float32).reshape(17, 3)
            k[:, :2] += rng.normal(0, 6, (17, 2)).astype(np.float32)
            k[:, 2] = k[:, 2] > 0
            x, y, w, h = a["bbox"]
            out.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], k))
    return {i: Poses(np.float32([b for b, _ in p]), np.ones(len(p), np.float32), np.stack([k for _, k in p]),
                     np.ones(len(p), np.float32)) for i, p in out.items()}


@pytest.fixture
def gt_predictions(coco, monkeypatch) -> list[int]:
    """The protocol's and validation's predictions replaced by noisy ground truth; records the boxes given."""
    import stip_rt.eval.protocol as protocol_mod
    import stip_rt.train.validate as validate_mod

    poses = _noisy_gt_poses(coco[0])
    boxes: list[int] = []

    def predict(estimator, images, detections, config=None):
        boxes.append(sum(len(d) for d in detections.values()))
        for image_id, path in images:
            yield image_id, path, None, poses.get(image_id, Poses.empty(17))

    monkeypatch.setattr(protocol_mod, "predict_images", predict)
    monkeypatch.setattr(validate_mod, "predict_images", predict)
    return boxes


def test_the_same_ap_with_person_category_7_as_with_1(coco, coco7, data_dir, tmp_path, tiny_coco_yaml, capsys,
                                                      gt_predictions):
    dets = data_dir / "coco_val2017_keypoints/annotations/person_detections_results_sample.json"
    args = ("--weights", "random")
    m1 = _eval(capsys, *coco, dets, tiny_coco_yaml, tmp_path / "res1.json", *args)
    m7 = _eval(capsys, *coco7, dets, tiny_coco_yaml, tmp_path / "res7.json", *args)  # before: AP 0
    assert 0.3 < m1["AP"] < 1 and m7 == m1
    # a detections file of the dataset's own person category reads as the COCO detector's one
    dets7 = tmp_path / "dets7.json"
    dets7.write_text(json.dumps([{**d, "category_id": 7} for d in json.loads(dets.read_text())]))
    assert _eval(capsys, *coco7, dets7, tiny_coco_yaml, tmp_path / "res7b.json", *args) == m1
    assert gt_predictions == [81, 81, 81]  # every box of the file, each time
    # validation during training, on the ground-truth boxes (before: no box of category 1, AP 0)
    model, spec = build_model(tiny_coco_yaml), load_spec(tiny_coco_yaml)
    v1 = validate(model, spec, ValConfig(ann=str(coco[0]), images=str(coco[1])), "cpu")
    v7 = validate(model, spec, ValConfig(ann=str(coco7[0]), images=str(coco7[1])), "cpu")
    assert v1["AP"] > 0.3 and v7 == v1 and gt_predictions[3:] == [7, 7]


def test_results_of_another_category_are_refused_not_scored_zero(coco7, data_dir, tmp_path):
    shared = data_dir / "coco_val2017_keypoints/annotations/keypoint_results_sample.json"  # category 1
    gt1 = data_dir / "coco_val2017_keypoints/annotations/person_keypoints_val2017_sample.json"
    relabelled = tmp_path / "res7.json"
    relabelled.write_text(json.dumps([{**r, "category_id": 7} for r in json.loads(shared.read_text())]))
    expected = evaluate_keypoints(gt1, shared).values
    assert expected[0] > 0.3 and evaluate_keypoints(coco7[0], relabelled).values == expected
    with pytest.raises(DataError, match=r"res.*entry \[0\] has category_id 1, but the people of ground truth "
                                        r".*ann\.json are category 7"):
        evaluate_keypoints(coco7[0], shared)


def test_an_ambiguous_category_list_is_refused_naming_the_file(coco, tmp_path, tiny_coco_yaml, capsys):
    ann, images = _relabel(coco, tmp_path / "lab", 1)
    data = json.loads(ann.read_text())
    data["categories"].append({**data["categories"][0], "id": 2, "name": "hand"})
    ann.write_text(json.dumps(data))
    assert main(["train", "--model", str(tiny_coco_yaml), "--train-ann", str(ann), "--train-images", str(images),
                 "--out", str(tmp_path / "run"), "--device", "cpu", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"stip-rt train: error: annotations {ann}: cannot tell which category holds the people")
    assert "several categories have 'keypoints'" in err
