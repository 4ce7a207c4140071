"""HRNet backbone and pose baseline: structure, outputs in eval/train mode, config checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stip_rt.nn.config import HRNetConfig
from stip_rt.nn.hrnet import HRNet

TINY = HRNetConfig(widths=(8, 16, 24, 32), num_modules=(1, 2, 1), num_blocks=1, stem_blocks=1, num_joints=5)


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_eval_forward_is_the_heatmap_and_train_dict_matches() -> None:
    torch.manual_seed(0)
    model = HRNet(TINY)
    _randomise_bn(model)
    model.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        hm = model(x)
        out = model.forward_train(x)
    assert isinstance(hm, torch.Tensor) and hm.shape == (2, 5, 16, 24)
    assert set(out) == {"keypoint", "kernel", "semantics"}
    torch.testing.assert_close(out["keypoint"][0], hm)
    torch.testing.assert_close(out["kernel"], (hm**2).mean(dim=(1, 2, 3)))
    torch.testing.assert_close(out["semantics"], hm.amax(dim=(2, 3)))


def test_train_mode_returns_the_dict_and_backpropagates() -> None:
    model = HRNet(TINY).train()
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, dict)
    out["keypoint"][0].square().mean().backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0


def test_structure_follows_the_config() -> None:
    model = HRNet(TINY)
    assert len(model.layer1) == 1 and len(model.stage2) == 1 and len(model.stage3) == 2 and len(model.stage4) == 1
    assert [len(b) for b in model.stage3[0].branches] == [1, 1, 1]
    # The last module of stage 4 fuses into the highest resolution only.
    assert len(model.stage4[-1].fuse_layers) == 1
    assert len(model.stage3[-1].fuse_layers) == 3
    assert model.final_layer.out_channels == 5 and model.final_layer.in_channels == 8
    assert model.transition3[3][0][0].weight.shape == (32, 24, 3, 3)


def test_backbone_keeps_stage_outputs_intact() -> None:
    model = HRNet(TINY).eval()
    with torch.no_grad():
        b2, b3, f = model.backbone(torch.randn(1, 3, 64, 64))
    assert b2.shape == b3.shape == f.shape == (1, 8, 16, 16)
    assert not torch.equal(b2, b3) and not torch.equal(b3, f)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"widths": (32, 64, 128)},
        {"num_modules": (1, 0, 3)},
        {"num_blocks": 0},
        {"num_joints": 0},
    ],
)
def test_invalid_config_is_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        HRNetConfig(**kwargs)
