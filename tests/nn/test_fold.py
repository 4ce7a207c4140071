"""The served inference graph: BatchNorm folded, exact up to float rounding, loud when it cannot be."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stip_rt.errors import BackendError
from stip_rt.models import build_model
from stip_rt.nn.config import PoseResNetConfig
from stip_rt.nn.fold import count_batchnorm, fold_batchnorm, prepare_inference
from stip_rt.nn.resnet import PoseResNet
from stip_rt.nn.rtmdet import RTMDetConfig, build_rtmdet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_HRNET, TINY_STIP

TINY_RESNET = PoseResNetConfig(depth=18, num_joints=17, deconv_channels=(16, 16, 16))
TINY_RTMDET = RTMDetConfig(deepen_factor=0.167, widen_factor=0.125, feat_channels=16, num_classes=3)


def _random_bn(model: nn.Module, seed: int = 1) -> nn.Module:
    """Non-trivial running statistics and affine parameters (folding an identity BN proves nothing)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)
    return model.eval()


def _models() -> dict[str, tuple[nn.Module, tuple[int, int]]]:
    torch.manual_seed(0)
    return {
        "stip": (build_model(TINY_STIP), (64, 64)),
        "hrnet": (build_model(TINY_HRNET), (64, 64)),
        "simplebaseline": (PoseResNet(TINY_RESNET), (64, 64)),
        "rtmdet": (build_rtmdet(TINY_RTMDET), (96, 64)),
    }


@pytest.mark.parametrize("name", ["stip", "hrnet", "simplebaseline", "rtmdet"])
def test_folded_equals_unfolded(name: str) -> None:
    model, (h, w) = _models()[name]
    _random_bn(model)
    before = count_batchnorm(model)
    served = prepare_inference(model)
    assert before > 0 and count_batchnorm(served) == 0
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in served.modules())
    assert count_batchnorm(model) == before  # the original is untouched
    assert type(served) is type(model) and not served.training
    x = torch.randn(3, 3, h, w, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = model(x), served(x)
    scale = want.abs().max()
    assert scale > 0.1  # a meaningful output, not a constant
    assert (got - want).abs().max() <= 2e-5 * scale
    # the statistics matter: the same network with identity BatchNorms differs
    plain = prepare_inference(model, fold=False)
    for m in plain.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    with torch.no_grad():
        assert (plain(x) - want).abs().max() > 1e-2 * scale


def test_rtmdet_shared_head_convs_get_one_folded_copy_per_level() -> None:
    model = _random_bn(build_rtmdet(TINY_RTMDET))
    head = model.bbox_head
    assert head.cls_convs[1][0].conv is head.cls_convs[0][0].conv  # shared across levels
    served = prepare_inference(model)
    sh = served.bbox_head
    assert sh.cls_convs[1][0].conv is not sh.cls_convs[0][0].conv  # one fold per level BatchNorm
    assert not torch.equal(sh.cls_convs[1][0].conv.weight, sh.cls_convs[0][0].conv.weight)


def test_fold_report_names_the_pairs() -> None:
    model = _random_bn(build_model(TINY_STIP))
    report = fold_batchnorm(prepare_inference(model, fold=False))
    pairs = dict((bn, layer) for layer, bn in report.folded)
    assert pairs["bn1"] == "conv1"
    assert pairs["context_head.3"] == "context_head.2"  # Linear → BatchNorm1d
    assert pairs["layer1.0.downsample.1"] == "layer1.0.downsample.0"
    assert report.skipped == ()


class _Reused(nn.Module):
    """conv output read by the BatchNorm and by the residual: folding would change the residual."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 3, 1)
        self.bn2 = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y + self.bn2(self.conv2(x))


class _SharedSlot(nn.Module):
    """one conv called twice through the same slot, once before a BatchNorm: not foldable."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)) + self.conv(x)


class _Dynamic(nn.Module):
    """data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return y if float(y.sum()) > 0 else -y


@pytest.mark.parametrize(
    ("module", "reason", "folded"),
    [
        (_Reused, "also read elsewhere", 1),
        (_SharedSlot, "shared", 0),
        (_Dynamic, "not traceable", 0),
    ],
)
def test_unsafe_pairs_stay_unfolded(module: type[nn.Module], reason: str, folded: int) -> None:
    model = _random_bn(module())
    served = prepare_inference(model)
    report = fold_batchnorm(prepare_inference(model, fold=False))
    assert len(report.folded) == folded
    assert any(reason in why for _, why in report.skipped)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(served(x), model(x), rtol=1e-5, atol=1e-5)


def test_unused_training_only_batchnorm_is_reported() -> None:
    class WithHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)
            self.train_head = nn.BatchNorm2d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.conv(x)) if not self.training else self.train_head(x)

    report = fold_batchnorm(WithHead().eval())
    assert report.folded == (("conv", "bn"),)
    assert report.skipped == (("train_head", "not used in inference"),)


def test_training_mode_is_refused() -> None:
    with pytest.raises(BackendError, match="training mode"):
        fold_batchnorm(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)))


def test_a_wrong_fold_is_caught_by_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    import stip_rt.nn.fold as fold

    def wrong(layer: nn.Module, bn: nn.Module) -> nn.Module:  # forgets the BatchNorm shift
        out = fold.copy.deepcopy(layer)
        out.weight.data *= 2
        return out

    monkeypatch.setattr(fold, "_folded", wrong)
    model = _random_bn(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()))
    with pytest.raises(BackendError, match="folding changed the output"):
        prepare_inference(model, probe_size=(8, 8))


@pytest.mark.parametrize("name", ["hrnet_c16_coco17", "stipnet_c16_crowdpose14"])
def test_official_parity_fixture_through_the_served_graph(fixtures_dir: Path, name: str) -> None:
    prefix = fixtures_dir / "official_parity" / name
    model = build_model(f"{prefix}.json", weights=f"{prefix}.state_dict.pt").eval()
    served = prepare_inference(model)
    assert count_batchnorm(served) == 0
    ref = dict(np.load(f"{prefix}.io.npz"))
    with torch.no_grad():
        out = served(torch.from_numpy(ref["input"])).numpy()
    want = ref["keypoint_0"]
    assert np.abs(out - want).max() <= 1e-4 * np.abs(want).max()
