"""RTMDet network: official key layout, sizes, decoding, and strict loading of an mmdet-style file."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from stip_rt.errors import ConfigError, WeightsError
from stip_rt.nn.rtmdet import SIZES, RTMDetConfig, build_rtmdet

# Landmarks of mmdetection's RTMDet-tiny state_dict (names from mmdet/mmcv module code; shapes
# follow from the config: widen 0.375 → stem 12/12/24, stages 48/96/192/384, neck/head 96).
TINY_LANDMARKS = {
    "backbone.stem.0.conv.weight": (12, 3, 3, 3),
    "backbone.stem.2.bn.running_var": (24,),
    "backbone.stage1.0.conv.weight": (48, 24, 3, 3),
    "backbone.stage1.1.main_conv.conv.weight": (24, 48, 1, 1),
    "backbone.stage1.1.blocks.0.conv1.conv.weight": (24, 24, 3, 3),
    "backbone.stage1.1.blocks.0.conv2.depthwise_conv.conv.weight": (24, 1, 5, 5),
    "backbone.stage1.1.blocks.0.conv2.pointwise_conv.bn.weight": (24,),
    "backbone.stage1.1.attention.fc.weight": (48, 48, 1, 1),
    "backbone.stage1.1.attention.fc.bias": (48,),
    "backbone.stage4.1.conv1.conv.weight": (192, 384, 1, 1),  # SPPBottleneck
    "backbone.stage4.1.conv2.conv.weight": (384, 768, 1, 1),
    "backbone.stage4.2.final_conv.bn.num_batches_tracked": (),
    "neck.reduce_layers.0.conv.weight": (192, 384, 1, 1),
    "neck.top_down_blocks.0.main_conv.conv.weight": (96, 384, 1, 1),
    "neck.top_down_blocks.1.final_conv.conv.weight": (96, 96, 1, 1),
    "neck.downsamples.1.conv.weight": (192, 192, 3, 3),
    "neck.bottom_up_blocks.1.final_conv.conv.weight": (384, 384, 1, 1),
    "neck.out_convs.2.conv.weight": (96, 384, 3, 3),
    "bbox_head.cls_convs.0.0.conv.weight": (96, 96, 3, 3),
    "bbox_head.cls_convs.2.1.conv.weight": (96, 96, 3, 3),
    "bbox_head.reg_convs.1.1.bn.running_mean": (96,),
    "bbox_head.rtm_cls.2.weight": (80, 96, 1, 1),
    "bbox_head.rtm_reg.0.bias": (4,),
}


def test_tiny_key_layout_matches_mmdet_landmarks():
    sd = build_rtmdet("rtmdet-tiny").state_dict()
    for key, shape in TINY_LANDMARKS.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    assert not any("attention" in k for k in sd if k.startswith("neck."))  # no channel attention in the neck
    assert not any(k.startswith(("bbox_head.scales", "bbox_head.rtm_obj")) for k in sd)
    assert len(sd) == 476


@pytest.mark.parametrize(("name", "params_m"), [("rtmdet-s", 8.89), ("rtmdet-m", 24.71), ("rtmdet-l", 52.3)])
def test_parameter_counts_match_the_published_table(name, params_m):
    # mmdetection configs/rtmdet/README.md: s 8.89M, m 24.71M, l 52.3M (tiny: published 4.8M, we count 4.90M)
    n = sum(p.numel() for p in build_rtmdet(name).parameters())
    assert round(n / 1e6, 2 if params_m < 50 else 1) == params_m


def test_bn_eps_is_the_syncbn_default_and_head_convs_are_shared():
    m = build_rtmdet("rtmdet-tiny")
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert bns and all(bn.eps == 1e-5 for bn in bns)
    head = m.bbox_head
    assert head.cls_convs[2][1].conv is head.cls_convs[0][1].conv
    assert head.reg_convs[1][0].conv is head.reg_convs[0][0].conv
    assert head.cls_convs[2][1].bn is not head.cls_convs[0][1].bn


def test_unknown_size_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean 'rtmdet-tiny'"):
        build_rtmdet("rtmdet-tiyn")


@pytest.mark.parametrize("exp_on_reg", [False, True])
def test_output_layout_and_box_decoding(exp_on_reg):
    cfg = RTMDetConfig(exp_on_reg=exp_on_reg, num_classes=3)
    m = build_rtmdet(cfg)
    with torch.no_grad():
        for reg in m.bbox_head.rtm_reg:
            reg.weight.zero_()
            reg.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]).log() if exp_on_reg else torch.tensor([1.0, 2, 3, 4]))
        out = m(torch.zeros(2, 3, 128, 96))
    # points: 16x12 at stride 8, 8x6 at 16, 4x3 at 32
    assert out.shape == (2, 16 * 12 + 8 * 6 + 4 * 3, 4 + 3)
    assert ((out[..., 4:] >= 0) & (out[..., 4:] <= 1)).all()
    # row-major points per level: index 13 of level 0 is (x=1, y=1) → point (8, 8)
    np.testing.assert_allclose(out[0, 13, :4].numpy(), [8 - 8, 8 - 16, 8 + 24, 8 + 32], atol=1e-4)
    # first point of level 2 (stride 32) is (0, 0)
    i = 16 * 12 + 8 * 6
    np.testing.assert_allclose(out[1, i, :4].numpy(), [-32, -64, 96, 128], atol=1e-3)


def _fake_mmengine() -> dict[str, types.ModuleType]:
    """Modules standing in for mmengine, whose classes end up pickled in a checkpoint's meta."""
    root = types.ModuleType("mmengine")
    logging_mod = types.ModuleType("mmengine.logging")
    hb = types.ModuleType("mmengine.logging.history_buffer")
    cfg = types.ModuleType("mmengine.config.config")

    class HistoryBuffer:
        def __init__(self) -> None:
            self._log_history = np.array([0.5, 0.25])
            self._count_history = np.array([1, 1])
            self.max_length = 1000000

    class ConfigDict(dict):
        pass

    for cls, mod in ((HistoryBuffer, hb), (ConfigDict, cfg)):
        cls.__module__, cls.__qualname__ = mod.__name__, cls.__name__
    hb.HistoryBuffer = HistoryBuffer
    cfg.ConfigDict = ConfigDict
    return {"mmengine": root, "mmengine.logging": logging_mod, hb.__name__: hb, cfg.__name__: cfg}


def _save_official_like(path: Path, state: dict, legacy: bool, config_dict: bool = False) -> None:
    mods = _fake_mmengine()
    sys.modules.update(mods)
    try:
        meta = {
            "mmengine_version": "0.x",
            "dataset_meta": {"classes": ("person", "bicycle"), "palette": [(220, 20, 60), (119, 11, 32)]},
            "seed": np.int64(1234),
            "epoch": 300,
            "cfg": "model = dict(type='RTMDet')",
            "history": mods["mmengine.logging.history_buffer"].HistoryBuffer(),
        }
        if config_dict:
            meta["cfg"] = mods["mmengine.config.config"].ConfigDict(model={"type": "RTMDet"})
        torch.save({"meta": meta, "state_dict": state}, path, _use_new_zipfile_serialization=not legacy)
    finally:
        for name in mods:
            sys.modules.pop(name, None)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-format", "zip-format"])
def test_official_layout_checkpoint_with_mmengine_meta_loads_strictly(tmp_path, legacy):
    torch.manual_seed(0)
    src = build_rtmdet("rtmdet-tiny")
    with torch.no_grad():  # non-default buffers, so the load is visible
        for mod in src.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
    path = tmp_path / "rtmdet_tiny_8xb32-300e_coco_20220902_112414-78e30dcc.pth"
    _save_official_like(path, src.state_dict(), legacy)
    assert "mmengine" not in sys.modules or not hasattr(sys.modules["mmengine"], "logging")
    loaded = build_rtmdet("rtmdet-tiny", weights=path)
    for (k, a), b in zip(src.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(src.eval()(x), loaded(x))


def test_meta_with_a_dict_subclass_loads(tmp_path):
    # an mmengine ConfigDict (a dict subclass) in meta: unpickled as an inert stand-in
    path = tmp_path / "ck.pth"
    _save_official_like(path, build_rtmdet("rtmdet-tiny").state_dict(), legacy=False, config_dict=True)
    build_rtmdet("rtmdet-tiny", weights=path)


def test_checkpoint_of_another_size_is_refused_with_key_details(tmp_path):
    path = tmp_path / "s.pth"
    torch.save({"meta": {}, "state_dict": build_rtmdet("rtmdet-s").state_dict()}, path)
    with pytest.raises(WeightsError) as e:
        build_rtmdet("rtmdet-tiny", weights=path)
    assert str(path) in str(e.value) and "mis-shaped" in str(e.value)
    sd = build_rtmdet("rtmdet-tiny").state_dict()
    sd.pop("bbox_head.rtm_reg.2.bias")
    sd["bbox_head.extra.weight"] = torch.zeros(1)
    torch.save({"meta": {}, "state_dict": sd}, path)
    with pytest.raises(WeightsError, match=r"1 missing \(bbox_head.rtm_reg.2.bias\); 1 unexpected"):
        build_rtmdet("rtmdet-tiny", weights=path)


def test_every_size_builds_with_its_config():
    assert SIZES["rtmdet-m"].exp_on_reg and SIZES["rtmdet-l"].exp_on_reg
    assert not SIZES["rtmdet-tiny"].exp_on_reg and not SIZES["rtmdet-s"].exp_on_reg
