"""Full protocol and the ``eval`` / ``predict`` verbs, end to end with a random-weight tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from stip_rt.cli import main
from stip_rt.io.coco import read_coco_results

TINY = """arch: {arch}
schema: {schema}
num_joints: {k}
widths: [8, 16, 32, 64]
num_modules: [1, 1, 1]
num_blocks: 1
stem_blocks: 1
input_size: [64, 64]
heatmap_size: {hm}
decode: {arch}
"""


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, arch, schema, k, hm in (("coco", "hrnet", "coco17", 17, "[16, 16]"),
                                      ("coco-stip", "stip", "coco17", 17, "[32, 32]"),
                                      ("crowdpose", "hrnet", "crowdpose14", 14, "[16, 16]")):  # fmt: skip
        p = folder / f"tiny-{name}.yaml"
        p.write_text(TINY.format(arch=arch, schema=schema, k=k, hm=hm))
        out[name] = p
    return out


def _coco(data_dir: Path) -> tuple[Path, Path, Path]:
    d = data_dir / "coco_val2017_keypoints"
    return (d / "annotations" / "person_keypoints_val2017_sample.json", d / "images",
            d / "annotations" / "person_detections_results_sample.json")  # fmt: skip


def _full_protocol_coco(data_dir: Path, model: Path, tmp_path: Path, capsys, extra: list[str]) -> None:
    gt, images, dets = _coco(data_dir)
    out = tmp_path / "res.json"
    argv = [
        "eval",
        "--gt",
        str(gt),
        "--images",
        str(images),
        "--detections",
        str(dets),
        "--model",
        str(model),
        "--weights",
        "random",
        "--device",
        "cpu",
        "--backend",
        "torch",
        "--out",
        str(out),
        "--json",
        "--flip-test",  # the official protocol's setting (the library default is off)
        *extra,
    ]
    assert main(argv) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics)[:5] == ["AP", "AP50", "AP75", "AP(M)", "AP(L)"]
    assert all(0 <= v <= 1 for v in metrics.values())
    ids = {i["id"] for i in json.loads(gt.read_text())["images"]}
    res = read_coco_results(out, 17, ids)  # valid COCO results: keys, 51 finite values, known ids
    assert 0 < len(res) <= 81
    assert all(0 <= r["score"] <= 1 and r["category_id"] == 1 for r in res)
    # scoring the written file gives the numbers the protocol printed
    assert main(["eval", "--gt", str(gt), "--results", str(out), "--dataset", "coco", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics
    # the official results format, without 'bbox': pycocotools would take a result's area from a box (and so
    # score AP(M)/AP(L) differently from the keypoint-extent area the metric above uses)
    assert all("bbox" not in r for r in res)


def test_full_protocol_coco(data_dir: Path, tiny_models, tmp_path: Path, capsys) -> None:
    # the 27 boxes with score ≥ 0.2 keep this fast on a shared 2-core CI machine
    _full_protocol_coco(data_dir, tiny_models["coco"], tmp_path, capsys, ["--image-thre", "0.2"])


@pytest.mark.slow
def test_full_protocol_coco_stip_all_boxes(data_dir: Path, tiny_models, tmp_path: Path, capsys) -> None:
    _full_protocol_coco(data_dir, tiny_models["coco-stip"], tmp_path, capsys, [])


def test_full_protocol_crowdpose(data_dir: Path, tiny_models, capsys) -> None:
    d = data_dir / "crowdpose"
    argv = [
        "eval",
        "--gt",
        str(d / "annotations" / "crowdpose_test_sample.json"),
        "--images",
        str(d / "images"),
        "--detections",
        str(d / "annotations" / "person_detections_results_sample.json"),
        "--model",
        str(tiny_models["crowdpose"]),
        "--weights",
        "random",
        "--device",
        "cpu",
        "--backend",
        "torch",
        "--no-flip",
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert table.startswith("crowdpose keypoints:") and "AP(H)" in table


def test_predict_writes_results_and_drawings(data_dir: Path, tiny_models, tmp_path: Path, capsys, caplog) -> None:
    _, images, dets = _coco(data_dir)
    image = images / "000000000785.jpg"
    out, draw = tmp_path / "pred.json", tmp_path / "drawn"
    argv = [
        "predict",
        str(image),
        "--detections",
        str(dets),
        "--out",
        str(out),
        "--draw",
        str(draw),
        "--model",
        str(tiny_models["coco"]),
        "--weights",
        "random",
        "--device",
        "cpu",
        "--backend",
        "torch",
        "--no-nms",
        "--no-flip",
        "--image-thre",
        "0.2",
    ]
    assert main(argv) == 0
    res = read_coco_results(out, 17, {785})
    n_dets = sum(d["image_id"] == 785 and d["score"] >= 0.2 for d in json.loads(dets.read_text()))
    assert len(res) == n_dets  # no NMS: one result per box
    drawn = cv2.imread(str(draw / image.name))
    src = cv2.imread(str(image))
    assert drawn.shape == src.shape and not np.array_equal(drawn, src)
    assert "people on 1 image(s)" in capsys.readouterr().out
    # the boxes of the two other images are not used: one warning says so
    others = [d for d in json.loads(dets.read_text()) if d["image_id"] != 785 and d["score"] >= 0.2]
    unused = [r.getMessage() for r in caplog.records if "not among the input images" in r.getMessage()]
    assert unused == [f"detections {dets}: {len(others)} box(es) of 2 image id(s) not among the input images "
                      "are not used (40083, 196141)"]  # fmt: skip


@pytest.mark.parametrize(
    "argv,message",
    [
        (["eval", "--gt", "GT", "--results", "R.json"], "--dataset coco|crowdpose is required"),
        (["eval", "--gt", "GT", "--results", "R.json", "--model", "m"], "not both"),
        (["eval", "--gt", "GT", "--images", "I"], "missing --detections, --model"),
        (["eval", "--gt", "nope.json", "--results", "R.json", "--dataset", "coco"], "nope.json: file not found"),
    ],
)
def test_eval_usage_errors(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_model_dataset_mismatch(data_dir: Path, tiny_models, capsys) -> None:
    gt, images, dets = _coco(data_dir)
    argv = [
        "eval",
        "--gt",
        str(gt),
        "--images",
        str(images),
        "--detections",
        str(dets),
        "--dataset",
        "coco",
        "--model",
        str(tiny_models["crowdpose"]),
        "--weights",
        "random",
        "--device",
        "cpu",
        "--backend",
        "torch",
    ]
    assert main(argv) == 2
    assert "predicts crowdpose14 keypoints but dataset 'coco' needs coco17" in capsys.readouterr().err


def test_missing_weights_file(data_dir: Path, tiny_models, tmp_path: Path, capsys) -> None:
    _, images, dets = _coco(data_dir)
    argv = [
        "predict",
        str(images),
        "--detections",
        str(dets),
        "--out",
        str(tmp_path / "r.json"),
        "--model",
        str(tiny_models["coco"]),
        "--weights",
        str(tmp_path / "w.pth"),
    ]
    assert main(argv) == 2
    assert "w.pth: file not found" in capsys.readouterr().err


def _predict_argv(images: Path, dets: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return ["predict", str(images), "--detections", str(dets), "--out", str(out), "--model", str(model),
            "--weights", "random", "--device", "cpu", "--backend", "torch", "--no-flip", *extra]  # fmt: skip


@pytest.mark.parametrize(
    "keep,extra,people",
    [
        pytest.param({785}, [], 1, id="boxes-of-one-image"),
        pytest.param(set(), [], 0, id="empty-file"),
        pytest.param({785, 40083}, ["--image-thre", "2"], 0, id="all-under-image-thre"),
    ],
)
def test_predict_images_without_boxes_get_no_results(
    data_dir: Path, tiny_models, tmp_path: Path, capsys, keep: set[int], extra: list[str], people: int
) -> None:
    gt, images, _ = _coco(data_dir)
    anns = json.loads(gt.read_text())["annotations"]
    boxes = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0} for a in anns]
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([b for b in boxes if b["image_id"] in keep]))
    out = tmp_path / "res.json"
    assert main(_predict_argv(images, dets, out, tiny_models["coco"], *extra)) == 0
    res = read_coco_results(out, 17)
    assert {r["image_id"] for r in res} == ({785} if people else set())
    assert "on 3 image(s)" in capsys.readouterr().out


def test_full_protocol_with_boxes_for_one_image(data_dir: Path, tiny_models, tmp_path: Path, capsys) -> None:
    gt, images, all_dets = _coco(data_dir)
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([d for d in json.loads(all_dets.read_text()) if d["image_id"] == 785][:3]))
    out = tmp_path / "res.json"
    argv = ["eval", "--gt", str(gt), "--images", str(images), "--detections", str(dets), "--model",
            str(tiny_models["coco"]), "--weights", "random", "--device", "cpu", "--backend", "torch",
            "--out", str(out), "--json"]  # fmt: skip
    assert main(argv) == 0
    assert "AP" in json.loads(capsys.readouterr().out)
    assert {r["image_id"] for r in read_coco_results(out, 17)} == {785}


@pytest.mark.parametrize("key", ["num_keypoints", "iscrowd"])
def test_eval_gt_without_a_required_key(data_dir: Path, tmp_path: Path, capsys, key: str) -> None:
    gt, _, _ = _coco(data_dir)
    data = json.loads(gt.read_text())
    del data["annotations"][1][key]
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps(data))
    results = data_dir / "coco_val2017_keypoints" / "annotations" / "keypoint_results_sample.json"
    assert main(["eval", "--gt", str(bad), "--results", str(results), "--dataset", "coco"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: annotations[1]: missing key(s) '{key}'" in err and "Traceback" not in err


def test_full_protocol_checks_the_metric_keys_before_the_images(
    data_dir: Path, tiny_models, tmp_path: Path, capsys
) -> None:
    gt, _, dets = _coco(data_dir)
    data = json.loads(gt.read_text())
    del data["annotations"][0]["area"]
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps(data))
    argv = ["eval", "--gt", str(bad), "--images", str(tmp_path / "no-images"), "--detections", str(dets),
            "--model", str(tiny_models["coco"]), "--weights", "random", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    assert f"{bad}: annotations[0] has no 'area'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "draw,out",
    [
        pytest.param("images", "res.json", id="draw-into-the-images-folder"),
        pytest.param("images/sub/..", "res.json", id="the-same-folder-by-another-path"),
        pytest.param(None, "images/000000000785.jpg", id="out-is-an-input-image"),
    ],
)
def test_predict_refuses_to_write_over_an_input_image(
    data_dir: Path, tiny_models, tmp_path: Path, capsys, draw: str | None, out: str
) -> None:
    _, images, dets = _coco(data_dir)
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    image = folder / "000000000785.jpg"
    image.write_bytes((images / image.name).read_bytes())
    before = image.read_bytes()
    extra = ["--draw", str(tmp_path / draw)] if draw is not None else []
    assert main(_predict_argv(folder, dets, tmp_path / out, tiny_models["coco"], *extra)) == 2
    err = capsys.readouterr().err
    assert ("over the input image" if draw else "is one of the input images") in err and str(image) in err
    assert image.read_bytes() == before and not (tmp_path / "res.json").exists()


def test_predict_missing_input_is_not_found(data_dir: Path, tiny_models, tmp_path: Path, capsys) -> None:
    _, _, dets = _coco(data_dir)
    missing = tmp_path / "nope.jpg"
    assert main(_predict_argv(missing, dets, tmp_path / "r.json", tiny_models["coco"])) == 2
    assert f"{missing}: not found" in capsys.readouterr().err


def test_predict_leaves_out_an_unreadable_image_and_keeps_the_others(
    data_dir: Path, tiny_models, tmp_path: Path, capsys
) -> None:
    # a folder of images where one is damaged: the others are still predicted and written, and the
    # command fails naming the damaged one (before, it stopped there and wrote nothing)
    _, images, dets = _coco(data_dir)
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("000000000785.jpg", "000000040083.jpg"):
        (folder / name).write_bytes((images / name).read_bytes())
    bad = folder / "000000000001.jpg"  # sorts first
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    out = tmp_path / "res.json"
    assert main(_predict_argv(folder, dets, out, tiny_models["coco"], "--no-nms")) == 2
    io = capsys.readouterr()
    assert f"1 of 3 image(s) could not be read and were left out ({bad})" in io.err
    assert f"the results of the other 2 are in {out}" in io.err and "Traceback" not in io.err
    assert "on 2 image(s)" in io.out
    assert {r["image_id"] for r in read_coco_results(out, 17)} == {785, 40083}
