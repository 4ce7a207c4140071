"""STIPNet: the pruned inference path equals the official path, and computes only what it needs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import stip_rt.nn.stip as stip_mod
from stip_rt.nn.config import HRNetConfig, StipConfig
from stip_rt.nn.stip import STIPNet

TINY_HR = HRNetConfig(widths=(8, 16, 24, 32), num_modules=(1, 1, 1), num_blocks=1, stem_blocks=1, num_joints=6)


def _tiny(up_scale: int = 2, seed: int = 0) -> STIPNet:
    torch.manual_seed(seed)
    model = STIPNet(StipConfig(hrnet=TINY_HR, up_scale=up_scale))
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
    return model.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("up_scale", [2, 4])
def test_inference_path_equals_official_path(up_scale: int) -> None:
    model = _tiny(up_scale)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        y = model(x)
        official = model.forward_train(x)["keypoint"][0]
    assert y.shape == official.shape == (2, 6, 16 * up_scale, 24 * up_scale)
    assert _rel(y, official) < 1e-5


def test_official_outputs_have_official_names_and_shapes() -> None:
    model = _tiny()
    with torch.no_grad():
        out = model.forward_train(torch.randn(3, 3, 64, 64))
    assert set(out) == {"keypoint", "sp_keypoint", "mask", "semantics", "kernel"}
    hm = (3, 6, 32, 32)
    assert [t.shape for t in out["keypoint"]] == [hm, hm, hm]
    assert out["sp_keypoint"].shape == hm
    assert [t.shape for t in out["mask"]] == [(3, 1, 32, 32), (3, 1, 32, 32), hm]
    assert out["semantics"][0].shape == (3, 6) and out["kernel"].shape == (3,)
    s = out["semantics"][0]
    assert bool(((s > 0) & (s < 1)).all())  # sigmoid scores
    assert bool(((out["mask"][0] > 0) & (out["mask"][0] < 1)).all())


def test_eval_forward_skips_training_only_branches(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _tiny()
    called: dict[str, tuple] = {}
    for name in ("parts_predictor", "mask_predictor", "kernel_generator", "kpt_layer", "final_layer"):
        getattr(model, name).register_forward_hook(
            lambda mod, inp, out, name=name: called.__setitem__(name, tuple(inp[0].shape))
        )
    seen = {}
    real_iap = stip_mod.iap

    def spy(
        e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool = False
    ) -> torch.Tensor:
        seen.update(e=tuple(e.shape), f=tuple(f.shape), upsample=upsample)
        return real_iap(e, f, weight, bias, upsample=upsample)

    monkeypatch.setattr(stip_mod, "iap", spy)
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    # kernels are never materialised by the module; kpt_layer runs at backbone resolution
    assert set(called) == {"kpt_layer"} and called["kpt_layer"] == (2, 8, 16, 16)
    assert seen == {"e": (2, 8, 16, 16), "f": (2, 8, 32, 32), "upsample": True}


def test_train_mode_returns_dict_and_gradients_reach_the_semantic_embeddings() -> None:
    model = _tiny().train()
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, dict)
    out["keypoint"][0].square().mean().backward()  # the IaP loss alone
    w_cls = model.context_predictor[0].weight.grad
    assert w_cls is not None and w_cls.abs().sum() > 0  # S = W_clsᵀ T carries gradient into W_cls
    assert model.kernel_generator[0].weight.grad.abs().sum() > 0
    assert model.parts_predictor.weight.grad is None  # not in this loss


def test_up_scale_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="up_scale"):
        StipConfig(hrnet=TINY_HR, up_scale=1)
