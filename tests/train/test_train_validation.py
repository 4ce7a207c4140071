"""Item 3 of issue 17: validation (OKS AP), best checkpoint, CSV log, TensorBoard events, progress lines."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch
from train_helpers import make_config, tiny_spec

from stip_rt.cli import main
from stip_rt.errors import DataError
from stip_rt.io.coco import read_coco_gt
from stip_rt.models import build_model, load_spec
from stip_rt.train.trainer import train
from stip_rt.train.validate import ValConfig, gt_detections, validate


def test_validation_best_checkpoint_csv_and_tensorboard(coco, tmp_path, tiny_coco_yaml):
    pytest.importorskip("tensorboard", reason="tensorboard is in the train/dev extras")
    ann, images = coco
    events = []
    val = ValConfig(ann=str(ann), images=str(images), every=1)
    result = train(make_config(tiny_coco_yaml, coco, tmp_path / "run", epochs=2, val=val, tensorboard=True),
                   events.append)
    vals = [e for e in events if e.kind == "val"]
    assert [e.epoch for e in vals] == [0, 1] and set(vals[0].metrics) >= {"AP", "AP50", "AR"}
    assert all(0 <= e.metrics["AP"] <= 1 for e in vals)
    rows = list(csv.DictReader((tmp_path / "run/log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"lr", "loss", "pose", "sp_pose", "val_AP"} <= set(rows[0]) and float(rows[0]["lr"]) == 1e-3
    assert float(rows[1]["val_AP"]) == pytest.approx(vals[1].metrics["AP"])
    best = torch.load(result.best, weights_only=True)
    assert best["metrics"]["AP"] == max(e.metrics["AP"] for e in vals)
    assert list((tmp_path / "run/tb").glob("events.out.tfevents.*"))


def test_validate_on_gt_boxes_and_on_a_detections_file(coco, data_dir, tiny_coco_yaml):
    ann, images = coco
    gt = read_coco_gt(ann, 17)
    boxes = gt_detections(gt)
    assert sum(len(d) for d in boxes.values()) == 7  # the people with a labelled keypoint
    model = build_model(tiny_coco_yaml)
    spec = load_spec(tiny_coco_yaml)
    on_gt = validate(model, spec, ValConfig(ann=str(ann), images=str(images)), "cpu")
    dets = data_dir / "coco_val2017_keypoints/annotations/person_detections_results_sample.json"
    on_dets = validate(model, spec, ValConfig(ann=str(ann), images=str(images), detections=str(dets)), "cpu")
    assert set(on_gt) == set(on_dets) and "AP(M)" in on_gt
    assert model.training  # the model being trained is left as it was


def test_cli_progress_lines_and_log_file(coco, tmp_path, tiny_coco_yaml, capsys):
    ann, images = coco
    out = tmp_path / "run"
    assert main(["train", "--model", str(tiny_coco_yaml), "--train-ann", str(ann), "--train-images", str(images),
                 "--out", str(out), "--epochs", "1", "--batch-size", "2", "--workers", "0", "--device", "cpu",
                 "--log-every", "2", "--set", "tensorboard=false"]) == 0
    captured = capsys.readouterr()
    err = captured.err  # not a terminal: progress lines instead of a bar
    assert captured.out.strip() == str(out / "model.pth")
    assert "epoch 1 step 2/3 (2 total): loss" in err and "step 1/3" not in err
    log = (out / "train.log").read_text()
    assert "epoch 1 step 2/3" in log and "global batch 2" in log
    assert (out / "model.pth").exists()


@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
def test_a_val_ann_without_the_metrics_keys_fails_before_training_naming_the_file_and_key(
        dataset, coco, data_dir, tmp_path, tiny_coco_yaml):
    if dataset == "coco":
        model, (ann, images), table, key = tiny_coco_yaml, coco, "annotations", "area"
    else:
        model = tmp_path / "tiny-crowdpose.json"
        model.write_text(json.dumps(tiny_spec("crowdpose14")))
        ann, images = data_dir / "crowdpose/annotations/crowdpose_test_sample.json", data_dir / "crowdpose/images"
        table, key = "images", "crowdIndex"
    gt = json.loads(ann.read_text())
    del gt[table][-1][key]
    last = len(gt[table]) - 1
    bad = tmp_path / "val.json"
    bad.write_text(json.dumps(gt))
    events: list = []
    config = make_config(model, (ann, images), tmp_path / "run", val=ValConfig(ann=str(bad), images=str(images)))
    with pytest.raises(DataError, match=rf"^val\.ann {re.escape(str(bad))}: {table}\[{last}\] has no '{key}'") as e:
        train(config, events.append)
    assert events == [] and "\n" not in str(e.value)  # before the first step (not after a training epoch)
    with pytest.raises(DataError, match=rf"^{re.escape(str(bad))}: {table}\[{last}\] has no '{key}'"):
        validate(_Exploding(), load_spec(model), config.val, "cpu")  # checked before the model runs


class _Exploding(torch.nn.Module):
    def forward(self, x):
        raise AssertionError("the model ran before the ground truth was checked")
