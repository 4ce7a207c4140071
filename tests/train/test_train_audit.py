"""Audit of ``stip-rt train``: a changed lr schedule on resume, inputs checked before the first step,
a failed checkpoint write, and validation on the official ground-truth boxes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import make_config

import stip_rt.train.state as state_mod
from stip_rt.cli import main
from stip_rt.errors import DataError, SinkError, SourceError
from stip_rt.train.state import save_atomic
from stip_rt.train.trainer import train
from stip_rt.train.validate import ValConfig, gt_detections


def _lrs(out: Path) -> list[float]:
    with (out / "log.csv").open() as f:
        return [float(r["lr"]) for r in csv.DictReader(f)]


def test_a_resumed_run_follows_its_new_lr_schedule(coco, tmp_path, tiny_coco_yaml):
    out = tmp_path / "run"
    train(make_config(tiny_coco_yaml, coco, out, epochs=2, milestones=(1,), max_steps=4))  # stops in epoch 2
    # extended: 4 epochs, lr 5e-4, one drop at epoch index 3 (the checkpoint's scheduler says 1e-3 and [1])
    train(make_config(tiny_coco_yaml, coco, out, epochs=4, milestones=(3,), lr=5e-4))
    assert _lrs(out) == pytest.approx([1e-3, 5e-4, 5e-4, 5e-5], rel=1e-12)


def test_an_unchanged_schedule_is_left_as_saved():
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [1, 2], 0.1)
    for _ in range(2):
        opt.step()
        sched.step()
    lr = opt.param_groups[0]["lr"]
    assert state_mod.apply_schedule(opt, sched, 1e-3, (1, 2), 0.1) is None and opt.param_groups[0]["lr"] == lr
    assert state_mod.apply_schedule(opt, sched, 1e-3, (5,), 0.1) == 1e-3 and sched.get_last_lr() == [1e-3]


def _cli(coco, out: Path, *extra: str) -> int:
    ann, images = coco
    return main(["train", "--model", "x", "--train-ann", str(ann), "--train-images", str(images), "--out", str(out),
                 "--device", "cpu", *extra])


@pytest.mark.parametrize("extra, named", [
    (["--val-ann", "/no/val.json", "--val-images", "IMAGES"], "val.ann /no/val.json: no such file"),
    (["--val-ann", "ANN", "--val-images", "IMAGES", "--val-detections", "/no/d.json"],
     "val.detections /no/d.json: no such file"),
    (["--pretrained", "/no/imagenet.pth"], "pretrained /no/imagenet.pth: no such file"),
    (["--weights", "/no/w.pth"], "weights /no/w.pth: no such file"),
])  # fmt: skip
def test_a_missing_input_is_one_error_before_anything_is_created(coco, tmp_path, capsys, extra, named):
    extra = [{"ANN": str(coco[0]), "IMAGES": str(coco[1])}.get(a, a) for a in extra]
    assert _cli(coco, tmp_path / "out", *extra) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _gt_copy(coco, tmp_path: Path, edit) -> Path:
    gt = json.loads(coco[0].read_text())
    edit(gt)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return path


def test_a_training_image_missing_fails_before_the_first_step(coco, tmp_path, tiny_coco_yaml):
    ann = _gt_copy(coco, tmp_path, lambda gt: gt["images"][1].update(file_name="gone.jpg"))
    steps = []
    with pytest.raises(SourceError, match=r"gone\.jpg: file not found; train_ann .*gt\.json"):
        train(make_config(tiny_coco_yaml, (ann, coco[1]), tmp_path / "out"), steps.append)
    assert steps == []


@pytest.mark.parametrize("case, match", [
    ("no people", r"val\.ann .*gt\.json: no person with a labelled keypoint"),
    ("image gone", r"gone\.jpg: file not found"),
    ("detections of another image", r"d\.json: entry \[0\]: image_id 99 is not among the images"),
])  # fmt: skip
def test_a_bad_val_set_fails_before_the_first_step(coco, tmp_path, tiny_coco_yaml, case, match):
    edit = {"no people": lambda gt: gt.update(annotations=[]),
            "image gone": lambda gt: gt["images"][2].update(file_name="gone.jpg")}.get(case, lambda gt: None)
    ann = _gt_copy(coco, tmp_path, edit)
    dets = tmp_path / "d.json"
    dets.write_text(json.dumps([{"image_id": 99, "category_id": 1, "bbox": [0, 0, 9, 9], "score": 1.0}]))
    val = ValConfig(ann=str(ann), images=str(coco[1]), every=1,
                    detections=str(dets) if case.startswith("detections") else None)
    steps = []
    with pytest.raises((DataError, SourceError), match=match):
        train(make_config(tiny_coco_yaml, coco, tmp_path / "out", val=val), steps.append)
    assert steps == []


def test_a_full_disk_keeps_the_previous_checkpoint_and_removes_the_partial_file(tmp_path, monkeypatch):
    path = save_atomic({"epoch": 1}, tmp_path / "checkpoint.pth")
    before = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):  # what torch's writer does on ENOSPC: part of the file, then this
        Path(f).write_bytes(b"PK" * 100)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(state_mod.torch, "save", full_disk)
    with pytest.raises(SinkError, match=r"checkpoint\.pth: cannot write it .*the previous one is kept"):
        save_atomic({"epoch": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]


def test_ground_truth_boxes_are_the_official_sanitised_ones():
    gt = {"images": [{"id": 1, "width": 100, "height": 80}],
          "annotations": [
              {"image_id": 1, "bbox": [10, 20, 30, 40], "keypoints": [5, 5, 2], "iscrowd": 0, "area": 9},
              {"image_id": 1, "bbox": [-5, 50, 200, 60], "keypoints": [5, 5, 1], "iscrowd": 0, "area": 9},
              {"image_id": 1, "bbox": [1, 1, 5, 5], "keypoints": [5, 5, 2], "iscrowd": 1, "area": 9},
              {"image_id": 1, "bbox": [1, 1, 5, 5], "keypoints": [0, 0, 0], "iscrowd": 0, "area": 9},
              {"image_id": 1, "bbox": [1, 1, 5, 5], "keypoints": [5, 5, 2], "iscrowd": 0, "area": 0},
              {"image_id": 1, "bbox": [1, 1, 5, 5], "keypoints": [5, 5, 2], "iscrowd": 0, "category_id": 2},
          ]}  # fmt: skip
    dets = gt_detections(gt)[1]
    # official: x2 = min(W - 1, x1 + max(0, w - 1)) after clipping x1 = max(0, x); crowd, unlabelled, area 0 and
    # non-person annotations give no box
    assert np.array_equal(dets.boxes, np.float32([[10, 20, 39, 59], [0, 50, 99, 79]]))
    assert np.array_equal(dets.scores, np.ones(2, np.float32))
