"""OKS AP equals the reference package (xtcocotools 1.14.3) on the shared COCO and CrowdPose files.

The reference numbers below were computed with xtcocotools 1.14.3 built from source
(``COCOeval(gt, dt, 'keypoints')`` for COCO; ``COCOeval(gt, dt, 'keypoints_crowd', sigmas,
use_area=False)`` for CrowdPose) on the same files; see docs/evaluation.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stip_rt.errors import DataError
from stip_rt.eval.keypoints import CROWDPOSE_NAMES, evaluate_keypoints

XTCOCO_COCO_SAMPLE = [0.9240924092409242, 1.0, 1.0, 0.9504950495049505, 0.9207920792079208, 0.9285714285714286,
                      1.0, 1.0, 0.95, 0.9199999999999999]  # fmt: skip
XTCOCO_CROWDPOSE_EXAMPLE = [0.7877215935879303, 0.9881188118811886, 0.7314356435643564, 0.8222222222222223, 1.0,
                            0.7777777777777778, 1.0, 0.9802, 0.4116]  # fmt: skip
XTCOCO_CROWDPOSE_VAL_SYNTH = [0.6229994236798991, 0.8419058923707395, 0.6908662306641228, 0.7463245688436528,
                              0.8910093299406276, 0.8070398642917727, 0.6039, 0.6257, 0.638]  # fmt: skip


def test_coco_equals_reference(data_dir: Path) -> None:
    d = data_dir / "coco_val2017_keypoints" / "annotations"
    m = evaluate_keypoints(d / "person_keypoints_val2017_sample.json", d / "keypoint_results_sample.json", "coco")
    assert m.values == pytest.approx(XTCOCO_COCO_SAMPLE, abs=1e-12)
    assert m.num_results == 55 and m.num_images == 3
    assert "AP(M)" in m.table() and m.as_dict()["AP"] == m.values[0]


def test_crowdpose_equals_reference(data_dir: Path) -> None:
    d = data_dir / "crowdpose" / "annotations_only"
    m = evaluate_keypoints(d / "example_crowdpose_val.json", d / "example_crowdpose_preds.json", "crowdpose")
    assert m.names == CROWDPOSE_NAMES
    assert m.values == pytest.approx(XTCOCO_CROWDPOSE_EXAMPLE, abs=1e-12)


def _synthetic_predictions(gt: dict) -> list[dict]:
    """Noisy copies of the GT people plus some false positives (seeded; same as the reference run)."""
    rng = np.random.default_rng(0)
    out = []
    for a in gt["annotations"]:
        if a.get("num_keypoints", 0) == 0 or rng.random() < 0.1:
            continue
        k = np.array(a["keypoints"], float).reshape(-1, 3)
        s = max(a["bbox"][2], a["bbox"][3])
        k[:, :2] += rng.normal(0, 0.05 * s * rng.random(), size=(len(k), 2))
        k[:, 2] = rng.random(len(k))
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": k.ravel().tolist(),
                    "score": float(rng.random())})  # fmt: skip
        if rng.random() < 0.2:
            k2 = k.copy()
            k2[:, :2] += rng.normal(0, 0.3 * s, size=(len(k), 2))
            out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": k2.ravel().tolist(),
                        "score": float(rng.random() * 0.5)})  # fmt: skip
    return out


def test_crowdpose_full_val_easy_medium_hard_equal_reference(data_dir: Path) -> None:
    path = data_dir / "crowdpose" / "annotations_only" / "crowdpose_val.json"
    gt = json.loads(path.read_text())
    preds = _synthetic_predictions(gt)
    assert len(preds) == 7594
    m = evaluate_keypoints(path, preds, "crowdpose")
    assert m.values == pytest.approx(XTCOCO_CROWDPOSE_VAL_SYNTH, abs=1e-12)


def test_empty_results_are_zero(data_dir: Path) -> None:
    d = data_dir / "coco_val2017_keypoints" / "annotations"
    m = evaluate_keypoints(d / "person_keypoints_val2017_sample.json", [], "coco")
    assert m.values == (0.0,) * 10 and m.num_results == 0


def test_wrong_dataset_and_joint_count_errors(data_dir: Path, tmp_path: Path) -> None:
    coco = data_dir / "coco_val2017_keypoints" / "annotations"
    cp = data_dir / "crowdpose" / "annotations_only"
    with pytest.raises(DataError, match=r"keypoint_results_sample.json: entry \[0\].*expected 42"):
        evaluate_keypoints(cp / "example_crowdpose_val.json", coco / "keypoint_results_sample.json", "crowdpose")
    with pytest.raises(DataError, match="joints, expected 14"):
        evaluate_keypoints(coco / "person_keypoints_val2017_sample.json", [], "crowdpose")
    gt = json.loads((cp / "example_crowdpose_val.json").read_text())
    del gt["images"][2]["crowdIndex"]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(DataError, match=r"gt.json: images\[2\] has no 'crowdIndex'"):
        evaluate_keypoints(tmp_path / "gt.json", cp / "example_crowdpose_preds.json", "crowdpose")
    with pytest.raises(DataError, match="expected 17"):
        evaluate_keypoints(cp / "example_crowdpose_val.json", cp / "example_crowdpose_preds.json", "coco")
    with pytest.raises(DataError, match="unknown dataset"):
        evaluate_keypoints(cp / "example_crowdpose_val.json", [], "mpii")


def test_coco_equals_pycocotools_run_independently_with_false_positives(data_dir: Path, tmp_path: Path) -> None:
    """AP, AP50, AP75, AP(M), AP(L) of a results file as pycocotools gives them when run by hand on it."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_path = data_dir / "coco_val2017_keypoints" / "annotations" / "person_keypoints_val2017_sample.json"
    gt = json.loads(gt_path.read_text())
    rng = np.random.default_rng(0)
    res = []
    for a in gt["annotations"]:
        k = np.array(a["keypoints"], float).reshape(-1, 3)
        for spread in (0.02, 0.2, 0.6):  # a good match, a poor one, a false positive
            kk = k.copy()
            kk[:, :2] += rng.normal(0, spread * max(a["bbox"][2:]), size=(len(k), 2))
            kk[:, 2] = rng.random(len(k))
            res.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kk.ravel().tolist(),
                        "score": float(rng.random())})  # fmt: skip
    path = tmp_path / "res.json"
    path.write_text(json.dumps(res))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        ev = COCOeval(coco, coco.loadRes(str(path)), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    m = evaluate_keypoints(gt_path, path, "coco").values
    assert m == pytest.approx(list(ev.stats), abs=1e-12)
    assert 0 < m[0] < 1 and m[3] != m[4]  # a test that can tell the columns apart
