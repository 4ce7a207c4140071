"""cuDNN conv+ReLU fusion (stip_rt.nn.fuse): the rewrite is exact, and the fused calls get the right arguments."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stip_rt.models import build_model
from stip_rt.nn.fold import prepare_inference
from stip_rt.nn.fuse import ConvAddReLU, ConvReLU, _FusedConv, fuse_conv_relu, fusion_sites
from stip_rt.nn.hrnet import BasicBlock, Bottleneck

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_HRNET, TINY_STIP


def _served(spec: dict) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = build_model(spec).eval()
    return model, prepare_inference(model)


def _unfused_conv_relus(gm: torch.fx.GraphModule) -> int:
    """ReLU calls whose input is a convolution's output, left in the graph."""
    modules = dict(gm.named_modules())
    n = 0
    for node in gm.graph.nodes:
        is_relu = (node.op == "call_module" and isinstance(modules[node.target], nn.ReLU)) or node.target in (
            F.relu,
            torch.relu,
        )
        src = node.args[0] if is_relu and node.args else None
        if isinstance(src, torch.fx.Node) and src.op == "call_module" and isinstance(modules[src.target], nn.Conv2d):
            n += 1
    return n


@pytest.mark.parametrize("spec", [TINY_STIP, TINY_HRNET], ids=["stip", "hrnet"])
def test_fused_graph_equals_the_folded_network(spec: dict) -> None:
    model, folded = _served(spec)
    fused, n_relu, n_add = fuse_conv_relu(folded)
    blocks = sum(isinstance(m, (BasicBlock, Bottleneck)) for m in model.modules())
    assert blocks > 0 and n_add >= blocks  # every residual block ends in relu(conv + shortcut)
    assert n_relu > 0
    assert isinstance(fused, torch.fx.GraphModule) and _unfused_conv_relus(fused) == 0
    assert sum(isinstance(m, ConvReLU) for m in fused.modules()) == n_relu
    assert sum(isinstance(m, ConvAddReLU) for m in fused.modules()) == n_add
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = folded(x), fused(x)
    assert want.abs().max() > 0 and torch.equal(got, want)  # the same ops in the same order off CUDA


def test_nothing_to_fuse_returns_the_model() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid()).eval()
    assert fuse_conv_relu(net) == (net, 0, 0)


def test_a_conv_output_read_twice_is_not_fused() -> None:
    class TwoReaders(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return F.relu(y) + y

    assert fuse_conv_relu(TwoReaders().eval())[1:] == (0, 0)


def _fake_cudnn(monkeypatch: pytest.MonkeyPatch, calls: list[str], refuse: bool = False) -> None:
    """Stand-ins for the cuDNN ops with ATen's argument order, and the fused path forced on."""

    def conv_relu(x, weight, bias, stride, padding, dilation, groups):
        calls.append("relu")
        if refuse:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED")
        assert isinstance(stride, list) and isinstance(padding, list) and isinstance(dilation, list)
        return F.relu(F.conv2d(x, weight, bias, stride, padding, dilation, groups))

    def conv_add_relu(x, weight, z, alpha, bias, stride, padding, dilation, groups):
        calls.append("add")
        if refuse:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED")
        return F.relu(F.conv2d(x, weight, bias, stride, padding, dilation, groups) + alpha * z)

    monkeypatch.setattr(torch, "cudnn_convolution_relu", conv_relu)
    monkeypatch.setattr(torch, "cudnn_convolution_add_relu", conv_add_relu)
    monkeypatch.setattr(_FusedConv, "_use_cudnn", lambda self, x: self.cudnn_ok)


def test_fused_calls_get_the_convolution_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    _, folded = _served(TINY_STIP)
    fused, n_relu, n_add = fuse_conv_relu(folded)
    calls: list[str] = []
    _fake_cudnn(monkeypatch, calls)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = folded(x), fused(x)
    assert calls.count("relu") == n_relu and calls.count("add") == n_add  # every site took the fused call
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_strided_dilated_grouped_conv_and_the_residual_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = nn.Conv2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=2).eval()
    x = torch.randn(2, 8, 11, 9)
    calls: list[str] = []
    _fake_cudnn(monkeypatch, calls)
    with torch.no_grad():
        ref = conv(x)
        assert ConvReLU(conv)(x).shape == ref.shape
        z = torch.randn(ref.shape)
        torch.testing.assert_close(ConvAddReLU(conv, conv_first=False)(x, z), F.relu(z + ref))
        assert calls == ["relu", "add"]
        zb = torch.randn(1, 8, 1, 1)  # a broadcast residual: cuDNN's fused add needs the full shape
        torch.testing.assert_close(ConvAddReLU(conv)(x, zb), F.relu(ref + zb))
    assert calls == ["relu", "add"]


def test_a_refused_fused_call_falls_back_for_good(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    conv = nn.Conv2d(4, 6, 3, padding=1).eval()
    mod = ConvReLU(conv)
    calls: list[str] = []
    _fake_cudnn(monkeypatch, calls, refuse=True)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad(), caplog.at_level(logging.INFO, logger="stip_rt.nn.fuse"):
        out1, out2 = mod(x), mod(x)
        want = F.relu(conv(x))
    assert torch.equal(out1, want) and torch.equal(out2, want)
    assert calls == ["relu"] and not mod.cudnn_ok  # tried once, then the plain ops
    assert "cuDNN refused the fused ConvReLU (4→6" in caplog.text
    net = nn.Sequential(mod, ConvReLU(nn.Conv2d(6, 6, 1, stride=2)), nn.ReLU())
    assert fusion_sites(net) == (2, ["(3, 3)/s(1, 1)/d(1, 1)"])  # what count_kernels reports
