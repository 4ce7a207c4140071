"""SimpleBaseline ResNet: official/mmpose layout, outputs in eval/train mode."""

from __future__ import annotations

import pytest
import torch

from stip_rt.checkpoint import load_weights
from stip_rt.nn.config import PoseResNetConfig
from stip_rt.nn.resnet import PoseResNet


# torchvision's ResNet without fc (11,176,512 / 23,508,032) + deconvs with BN + final 1×1 (K=17);
# 33,999,697 is mmpose's published "34.00M" for res50 256x192.
@pytest.mark.parametrize(("depth", "params"), [(18, 15_376_721), (50, 33_999_697)])
def test_structure_and_size(depth: int, params: int) -> None:
    model = PoseResNet(PoseResNetConfig(depth=depth))
    assert sum(p.numel() for p in model.parameters()) == params
    keys = list(model.state_dict())
    assert keys[0] == "conv1.weight" and keys[-2:] == ["final_layer.weight", "final_layer.bias"]
    assert [k for k in keys if k.startswith("deconv_layers") and k.endswith("weight")] == [
        "deconv_layers.0.weight", "deconv_layers.1.weight", "deconv_layers.3.weight",
        "deconv_layers.4.weight", "deconv_layers.6.weight", "deconv_layers.7.weight",
    ]  # fmt: skip
    assert model.deconv_layers[0].weight.shape == ((512 if depth == 18 else 2048), 256, 4, 4)


def test_eval_heatmap_and_train_dict() -> None:
    torch.manual_seed(0)
    model = PoseResNet(PoseResNetConfig(depth=18, num_joints=14, deconv_channels=(32, 32, 32))).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        hm = model(x)
        out = model.forward_train(x)
    assert hm.shape == (2, 14, 16, 24)
    torch.testing.assert_close(out["keypoint"][0], hm)
    torch.testing.assert_close(out["semantics"], hm.amax(dim=(2, 3)))
    assert isinstance(model.train()(x), dict)


def test_mmpose_simplebaseline_keys_load() -> None:
    model = PoseResNet(PoseResNetConfig(depth=18, deconv_channels=(16, 16, 16)))
    state = {k: torch.randn(v.shape) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    head = ("deconv_layers", "final_layer")
    mm = {(f"keypoint_head.{k}" if k.startswith(head) else f"backbone.{k}"): v for k, v in state.items()}
    load_weights(model, {"meta": {}, "state_dict": mm}, "res18_coco_256x192.pth")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_invalid_depth() -> None:
    with pytest.raises(ValueError, match="depth"):
        PoseResNetConfig(depth=42)
