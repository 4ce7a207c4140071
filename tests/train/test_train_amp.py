"""Item 1 of issue 17: the fused IaP op in training (its own backward), AMP, channels-last, torch.compile."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import make_config, tiny_spec

from stip_rt.errors import ConfigError
from stip_rt.models import build_model
from stip_rt.nn import iap as iap_mod
from stip_rt.nn.iap import use_iap_impl
from stip_rt.train.trainer import train


def _grads(model, x, fused):
    model.zero_grad()
    out = model.forward_train(x, fused=fused)
    loss = sum(t.float().square().mean() for t in out["keypoint"]) + out["kernel"].mean()
    loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_fused_forward_train_matches_official_and_uses_the_op_backward(monkeypatch):
    calls = []
    real = iap_mod.iap_backward_cpu
    monkeypatch.setattr(iap_mod, "iap_backward_cpu", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = build_model(tiny_spec("crowdpose14")).train()
    x = torch.randn(2, 3, 32, 32)
    ref_out, ref_grads = _grads(model, x, fused=False)
    assert not calls
    with use_iap_impl("cpu"):
        out, grads = _grads(model, x, fused=True)
    assert calls  # the fused op's backward ran, not autograd through materialised kernels
    for a, b in zip(ref_out["keypoint"], out["keypoint"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ref_out["kernel"], out["kernel"], rtol=1e-4, atol=1e-6)
    assert ref_grads.keys() == grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-3, atol=1e-5, msg=name)
    calls.clear()
    with use_iap_impl("reference"):  # the switch reaches training: no custom op at all
        _grads(model, x, fused=True)
    assert not calls


def test_fused_forward_train_on_channels_last_matches_official():
    # training with channels_last: the fused op's CPU backward gets channels-last e and f
    torch.manual_seed(0)
    model = build_model(tiny_spec("crowdpose14")).train().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    ref_out, ref_grads = _grads(model, x, fused=False)
    with use_iap_impl("cpu"):
        out, grads = _grads(model, x, fused=True)
    for a, b in zip(ref_out["keypoint"], out["keypoint"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert ref_grads.keys() == grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-3, atol=1e-5, msg=name)


def test_bf16_channels_last_step_on_cpu(coco, tmp_path):
    model = tmp_path / "m.json"
    model.write_text(json.dumps(tiny_spec()))
    events = []
    result = train(make_config(model, coco, tmp_path / "run", amp="bf16", channels_last=True, iap_impl="cpu",
                               max_steps=1), events.append)
    steps = [e for e in events if e.kind == "step"]
    assert len(steps) == 1 and result.steps == 1
    assert torch.isfinite(torch.tensor(steps[0].loss)) and set(steps[0].terms) >= {"pose", "mask"}
    state = torch.load(result.final, weights_only=True)
    assert all(v.dtype != torch.bfloat16 for v in state.values())  # autocast keeps fp32 master weights


def test_fp16_needs_cuda(coco, tmp_path, tiny_coco_yaml):
    with pytest.raises(ConfigError, match=r"fp16.*CUDA"):
        train(make_config(tiny_coco_yaml, coco, tmp_path / "run", amp="fp16"))


@pytest.mark.slow  # inductor compiles forward and backward: minutes on a loaded 2-core CPU
def test_torch_compile_trains(coco, tmp_path, tiny_coco_yaml):
    result = train(make_config(tiny_coco_yaml, coco, tmp_path / "run", compile=True, max_steps=2))
    assert result.steps == 2 and result.final.exists()


@pytest.mark.gpu
def test_fp16_grad_scaler_on_cuda(coco, tmp_path, tiny_coco_yaml):
    events = []
    train(make_config(tiny_coco_yaml, coco, tmp_path / "run", device="cuda", amp="fp16", channels_last=True,
                      max_steps=2), events.append)
    state = torch.load(tmp_path / "run/checkpoint.pth", weights_only=True)
    assert state["scaler"]["scale"] > 0 and all(e.loss == e.loss for e in events if e.kind == "step")
