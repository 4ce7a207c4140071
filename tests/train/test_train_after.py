"""Item 6 of issue 17: `stip-rt eval` and `stip-rt export` on a trained checkpoint, without naming the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import make_config

from stip_rt.cli import main
from stip_rt.errors import ConfigError
from stip_rt.models import build_model, load_spec
from stip_rt.train.trainer import train


@pytest.fixture(scope="module")
def trained(coco, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("after")
    model = tmp / "tiny.json"
    from train_helpers import tiny_spec

    model.write_text(json.dumps(tiny_spec()))
    torch.set_num_threads(1)
    return train(make_config(model, coco, tmp / "run", max_steps=1)), load_spec(model)


def test_checkpoints_record_their_model(trained):
    result, spec = trained
    for path in (result.model, result.checkpoint):
        assert load_spec(path) == spec
    model = build_model(result.model)  # the spec and the weights from one file
    state = torch.load(result.final, weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(ConfigError, match="records no model config"):
        load_spec(result.final)  # the official format: a bare state_dict


@pytest.mark.parametrize("flags", [["--weights"], ["--model"]])
def test_eval_on_the_checkpoint(trained, coco, data_dir, flags, capsys):
    result, _ = trained
    ann, images = coco
    dets = data_dir / "coco_val2017_keypoints/annotations/person_detections_results_sample.json"
    assert main(["eval", *flags, str(result.model), "--gt", str(ann), "--images", str(images), "--detections",
                 str(dets), "--device", "cpu", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["AP"] <= 1 and "AR(L)" in metrics


def test_export_builds_the_checkpoint_model(trained, tmp_path, monkeypatch):
    import stip_rt.runtime.onnx_export as onnx_export

    result, spec = trained
    seen = []

    def fake_export(model, out, cfg):  # writes a file: export renames its temp file into place
        seen.append(model)
        Path(out).write_bytes(b"onnx")
        return out

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    assert main(["export", "--weights", str(result.model), "--out", str(tmp_path / "m.onnx")]) == 0
    assert main(["export", "--model", str(result.model), "--out", str(tmp_path / "m.onnx")]) == 0
    assert [m.spec for m in seen] == [spec, spec] and not seen[0].training
    state = torch.load(result.final, weights_only=True)
    assert all(torch.equal(m.state_dict()[k], v) for m in seen for k, v in state.items())


@pytest.mark.slow  # a real ONNX export: ~10 s
def test_export_the_checkpoint(trained, tmp_path):
    pytest.importorskip("onnx")
    result, _ = trained
    out = tmp_path / "m.onnx"
    assert main(["export", "--weights", str(result.model), "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    assert main(["export", "--out", str(out)]) == 2  # neither --model nor --weights: one clear error
