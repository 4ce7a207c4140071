"""The trainer starts from the official initialisation (STIP_SPEC §1.7), with ``pretrained`` backbones over it."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import make_config, tiny_spec

from stip_rt.models import build_model
from stip_rt.train.trainer import train

INIT_STD = 0.001  # STIP_SPEC §1.7


def _trained(config) -> dict[str, torch.Tensor]:
    """The weights after one step at lr 0 (the optimiser moves nothing): the initial weights."""
    return torch.load(train(config).model, weights_only=True)["state_dict"]


def _std_ok(t: torch.Tensor) -> bool:
    return abs(float(t.std()) - INIT_STD) < 0.2 * INIT_STD


def test_training_from_scratch_starts_from_the_official_init(coco, tmp_path, tiny_coco_yaml):
    state = _trained(make_config(tiny_coco_yaml, coco, tmp_path / "run", lr=0.0, max_steps=1))
    for head in ("kpt_layer.weight", "final_layer.weight", "conv1.weight", "stage4.0.fuse_layers.0.1.0.weight"):
        assert _std_ok(state[head]), head  # PyTorch's default gave final_layer a std of ~0.1
    assert not state["kpt_layer.bias"].any() and torch.equal(state["bn1.weight"], torch.ones_like(state["bn1.weight"]))


@pytest.mark.parametrize("arch", ["stip", "simplebaseline"])
def test_pretrained_backbone_over_the_official_init(coco, tmp_path, arch):
    spec = tiny_spec() if arch == "stip" else {**tiny_spec(), "arch": arch, "name": "tiny-sb",
                                               "net": {"depth": 18, "deconv_channels": [16, 16, 16]}}
    model = tmp_path / "tiny.json"
    model.write_text(json.dumps(spec))
    torch.manual_seed(1)
    imagenet = build_model(spec).state_dict()  # PyTorch's defaults: far from the official init
    torch.save({"state_dict": imagenet}, tmp_path / "imagenet.pth")
    state = _trained(make_config(model, coco, tmp_path / "run", lr=0.0, max_steps=1,
                                 pretrained=str(tmp_path / "imagenet.pth")))
    backbone = ["conv1.weight", "layer1.0.conv1.weight"] + (["stage4.0.fuse_layers.0.1.0.weight"] if arch == "stip"
                                                            else ["layer4.1.conv2.weight"])
    for key in backbone:
        assert torch.equal(state[key], imagenet[key]), key
    heads = ["final_layer.weight"] + (["kpt_layer.weight"] if arch == "stip" else ["deconv_layers.0.weight"])
    for key in heads:
        assert _std_ok(state[key]) and not _std_ok(imagenet[key]), key
