"""Item 5 of issue 17: fine-tuning from a checkpoint onto a custom keypoint set (7 of COCO's 17 joints)
that training, evaluation, the tracker's OKS term, drawing and the writers then use."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import make_config, tiny_spec

import stip_rt.schemas as schemas_mod
from stip_rt.cli import main
from stip_rt.errors import WeightsError
from stip_rt.models import build_model
from stip_rt.train.finetune import load_finetune_weights
from stip_rt.train.trainer import train
from stip_rt.train.validate import ValConfig

BODY7_YAML = Path(__file__).with_name("body7.yaml")
COCO_OF_BODY7 = [0, 5, 6, 11, 12, 15, 16]  # nose, shoulders, hips, ankles


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(schemas_mod, "SCHEMAS", dict(schemas_mod.SCHEMAS))


@pytest.fixture
def body7_set(coco, tmp_path, registry) -> tuple[Path, Path]:
    """The shared COCO images with their annotations cut down to the 7 joints of body7.yaml."""
    ann, images = coco
    data = json.loads(ann.read_text())
    for a in data["annotations"]:
        kps = np.asarray(a["keypoints"], float).reshape(17, 3)[COCO_OF_BODY7]
        a["keypoints"] = kps.ravel().tolist()
        a["num_keypoints"] = int((kps[:, 2] > 0).sum())
    data["categories"][0]["keypoints"] = schemas_mod.get_schema(str(BODY7_YAML)).keypoints
    data["categories"][0]["skeleton"] = []
    out = tmp_path / "body7.json"
    out.write_text(json.dumps(data))
    return out, images


def _coco_checkpoint(tmp_path: Path) -> tuple[Path, dict]:
    torch.manual_seed(1)
    model = build_model(tiny_spec())
    path = tmp_path / "coco17.pth"
    torch.save({"state_dict": model.state_dict()}, path)  # the official checkpoint.pth layout
    return path, model.state_dict()


def test_finetune_weights_reinitialise_only_the_joint_heads(tmp_path, registry, caplog):
    ckpt, coco_state = _coco_checkpoint(tmp_path)
    torch.manual_seed(2)
    model = build_model(tiny_spec(str(BODY7_YAML)))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="stip_rt"):
        heads = load_finetune_weights(model, str(ckpt), 7)
    assert {k.rsplit(".", 1)[0] for k in heads} == {
        "final_layer", "kpt_layer", "parts_predictor", "context_predictor.0", "kernel_generator.0"}
    assert "re-initialised for 7 keypoints" in caplog.text and "kpt_layer.weight" in caplog.text
    state = model.state_dict()
    for k in state:
        assert torch.equal(state[k], fresh[k] if k in heads else coco_state[k]), k
    assert load_finetune_weights(build_model(tiny_spec()), str(ckpt), 17) == []  # same K: all loaded
    wide = {**tiny_spec(), "net": {"hrnet": {"widths": [8, 16, 24, 48], "num_modules": [1, 1, 1], "num_blocks": 1,
                                             "stem_blocks": 1}}}
    with pytest.raises(WeightsError, match="mis-shaped"):
        load_finetune_weights(build_model(wide), str(ckpt), 17)


def test_finetune_on_a_custom_keypoint_set(coco, body7_set, tmp_path, registry, tiny_coco_yaml, capsys):
    ckpt, _ = _coco_checkpoint(tmp_path)
    ann, images = body7_set
    events = []
    config = make_config(tiny_coco_yaml, (ann, images), tmp_path / "run", schema=str(BODY7_YAML),
                         weights=str(ckpt), val=ValConfig(ann=str(ann), images=str(images), every=1))
    result = train(config, events.append)
    val = next(e for e in events if e.kind == "val")
    assert set(val.metrics) >= {"AP", "AR"}  # COCO-style AP with body7's sigmas
    record = torch.load(result.model, weights_only=True)
    assert record["model"]["schema"] == "body7" and record["schema"]["keypoints"][0] == "nose"
    # on another machine (a fresh registry) the checkpoint alone rebuilds the model and its keypoint set
    schemas_mod.SCHEMAS.pop("body7")
    model = build_model(result.model)
    assert model.spec.num_joints == 7 and schemas_mod.get_schema("body7").flip_pairs == ((1, 2), (3, 4), (5, 6))
    dets = coco[0].parent / "person_detections_results_sample.json"
    assert main(["eval", "--weights", str(result.model), "--gt", str(ann), "--images", str(images), "--detections",
                 str(dets), "--device", "cpu", "--json"]) == 0  # `stip-rt eval` scores body7 with its own sigmas
    assert "AP" in json.loads(capsys.readouterr().out)


def test_custom_schema_reaches_tracker_drawing_and_writers(registry):
    from stip_rt.io.draw import draw_people
    from stip_rt.io.tracks_format import csv_columns, header_record, validator
    from stip_rt.track.tracker import Tracker
    from stip_rt.types import RunInfo, SourceInfo

    schema = schemas_mod.get_schema(str(BODY7_YAML))
    assert schemas_mod.schema_for_joints(7) is schema  # the tracker's lookup when no schema is passed
    tracker = Tracker(schema=schema)
    assert np.allclose(tracker._sigmas, schema.sigmas)
    assert csv_columns(schema.keypoints)[9:12] == ["nose_x", "nose_y", "nose_score"]
    run = RunInfo(SourceInfo(uri="x.mp4", width=64, height=64, fps=30.0, frame_count=1), schema)
    header = header_record(run)
    validator("header").validate(header)
    assert header["skeleton"]["keypoints"][1] == "left_shoulder" and len(header["skeleton"]["links"]) == 8
    image = np.zeros((64, 64, 3), np.uint8)
    kps = np.array([[[32, 8, 1], [24, 16, 1], [40, 16, 1], [26, 36, 1], [38, 36, 1], [26, 58, 1], [38, 58, 1]]],
                   np.float32)
    out = draw_people(image.copy(), np.array([[16, 4, 48, 60]], np.float32), kps, schema=schema, show_boxes=False)
    assert out[16, 24].any() and out[58, 26].any()  # joints drawn in the schema's colours
    assert tuple(int(c) for c in out[16, 24]) == schema.keypoint_colors[1]
