"""RTMDet (mmdetection 3.x) in plain PyTorch: CSPNeXt + CSPNeXt-PAFPN + RTMDetSepBNHead.

State-dict names equal mmdetection's (``backbone.stem.0.conv.weight``, ``neck.reduce_layers.0...``,
``bbox_head.cls_convs.<level>.<i>.conv.weight``, ``bbox_head.rtm_cls.<level>.weight``, ...), so the
official COCO checkpoints (``{'meta', 'state_dict'}``) load with ``strict=True``. The key list was
built from mmdetection's module code, not checked against a downloaded checkpoint file.

Inference: ``model(x)`` with ``x`` (N, 3, H, W) float32, BGR normalised with :data:`PIXEL_MEAN` /
:data:`PIXEL_STD`, H and W multiples of 32, returns (N, P, 4 + num_classes): for each of the
P = Σ (H/s)(W/s) points of strides 8/16/32 (row-major per level), the box ``x1, y1, x2, y2`` in
input pixels then the sigmoid class scores (float32 even for a half-precision network). Boxes
are the predicted left/top/right/bottom distances × stride (``exp`` first for m/l) around the
point (x·s, y·s) (mmdet ``MlvlPointGenerator`` offset 0, ``DistancePointBBoxCoder``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from ..checkpoint import read_state_dict
from ..errors import ConfigError, WeightsError, did_you_mean
from .cspnext import P5_ARCH, ConvModule, CSPNeXt, CSPNeXtPAFPN

log = logging.getLogger(__name__)

#: BGR mean / std of RTMDet's DetDataPreprocessor (``bgr_to_rgb=False``), 0–255 scale.
PIXEL_MEAN = (103.53, 116.28, 123.675)
PIXEL_STD = (57.375, 57.12, 58.395)
PAD_VALUE = 114
PERSON_CLASS = 0  # COCO category 1 "person"


@dataclass(frozen=True)
class RTMDetConfig:
    """Size of an RTMDet (defaults: RTMDet-tiny, mmdet ``rtmdet_tiny_8xb32-300e_coco.py``).

    Attributes:
        deepen_factor: backbone block-count multiplier.
        widen_factor: backbone channel multiplier (neck inputs = 256/512/1024 × this).
        feat_channels: neck output and head channels.
        num_csp_blocks: CSPNeXtBlocks per neck CSP layer.
        exp_on_reg: the head predicts log-distances (``exp`` before × stride): m, l and x.
        num_classes: detector classes (COCO 80).
        stacked_convs: 3×3 ConvModules per head branch.
        strides: output strides of the three levels.
    """

    deepen_factor: float = 0.167
    widen_factor: float = 0.375
    feat_channels: int = 96
    num_csp_blocks: int = 1
    exp_on_reg: bool = False
    num_classes: int = 80
    stacked_convs: int = 2
    strides: tuple[int, int, int] = (8, 16, 32)

    def __post_init__(self) -> None:
        if self.deepen_factor <= 0 or self.widen_factor <= 0:
            raise ValueError("'deepen_factor' and 'widen_factor' must be > 0")
        if min(self.feat_channels, self.num_csp_blocks, self.num_classes, self.stacked_convs) < 1:
            raise ValueError("'feat_channels', 'num_csp_blocks', 'num_classes' and 'stacked_convs' must be >= 1")


#: The official COCO sizes (mmdet configs/rtmdet/rtmdet_{tiny,s,m,l}_8xb32-300e_coco.py).
SIZES: dict[str, RTMDetConfig] = {
    "rtmdet-tiny": RTMDetConfig(0.167, 0.375, 96, 1, exp_on_reg=False),
    "rtmdet-s": RTMDetConfig(0.33, 0.5, 128, 1, exp_on_reg=False),
    "rtmdet-m": RTMDetConfig(0.67, 0.75, 192, 2, exp_on_reg=True),
    "rtmdet-l": RTMDetConfig(1.0, 1.0, 256, 3, exp_on_reg=True),
}


class RTMDetSepBNHead(nn.Module):
    """Per-level cls/reg branches whose convs are shared across levels, with per-level BatchNorm."""

    def __init__(self, cfg: RTMDetConfig) -> None:
        super().__init__()
        c = cfg.feat_channels
        self.strides = cfg.strides
        self.exp_on_reg = cfg.exp_on_reg
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.rtm_cls = nn.ModuleList()
        self.rtm_reg = nn.ModuleList()
        for _ in cfg.strides:
            self.cls_convs.append(nn.ModuleList(ConvModule(c, c, 3) for _ in range(cfg.stacked_convs)))
            self.reg_convs.append(nn.ModuleList(ConvModule(c, c, 3) for _ in range(cfg.stacked_convs)))
            self.rtm_cls.append(nn.Conv2d(c, cfg.num_classes, 1))
            self.rtm_reg.append(nn.Conv2d(c, 4, 1))
        for level in range(1, len(cfg.strides)):  # share_conv=True: one conv, a BN per level
            for i in range(cfg.stacked_convs):
                for convs in (self.cls_convs, self.reg_convs):
                    cast(nn.ModuleList, convs[level])[i].conv = cast(nn.ModuleList, convs[0])[i].conv

    def forward(self, feats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        out = []
        for level, (x, stride) in enumerate(zip(feats, self.strides)):
            cls_feat, reg_feat = x, x
            for layer in cast(nn.ModuleList, self.cls_convs[level]):  # a ModuleList of ModuleLists
                cls_feat = layer(cls_feat)
            for layer in cast(nn.ModuleList, self.reg_convs[level]):
                reg_feat = layer(reg_feat)
            # the decode runs in float32 whatever the network's precision: fp16 has 0.5 px steps at 640
            scores = self.rtm_cls[level](cls_feat).float().sigmoid()
            dist = self.rtm_reg[level](reg_feat).float()
            if self.exp_on_reg:
                dist = dist.exp()
            dist = dist * stride
            h, w = dist.shape[-2:]
            ys = torch.arange(h, device=x.device, dtype=dist.dtype) * stride
            xs = torch.arange(w, device=x.device, dtype=dist.dtype) * stride
            px = xs.view(1, 1, w).expand(1, h, w)
            py = ys.view(1, h, 1).expand(1, h, w)
            boxes = torch.stack((px - dist[:, 0], py - dist[:, 1], px + dist[:, 2], py + dist[:, 3]), dim=1)
            out.append(torch.cat((boxes, scores), dim=1).flatten(2))
        return torch.cat(out, dim=2).transpose(1, 2)


class RTMDet(nn.Module):
    """The whole detector (backbone → neck → head); see the module docstring for the output.

    Args:
        cfg: its size.
    """

    def __init__(self, cfg: RTMDetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = CSPNeXt(cfg.deepen_factor, cfg.widen_factor)
        c3, c4, c5 = (int(a[1] * cfg.widen_factor) for a in P5_ARCH[1:])
        self.neck = CSPNeXtPAFPN((c3, c4, c5), cfg.feat_channels, cfg.num_csp_blocks)
        self.bbox_head = RTMDetSepBNHead(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (N, 3, H, W) float32 normalised BGR. Returns (N, P, 4 + num_classes) float32."""
        return self.bbox_head(self.neck(self.backbone(x)))


def rtmdet_config(name: str) -> RTMDetConfig:
    """The config of an official size (``rtmdet-tiny|s|m|l``).

    Raises:
        ConfigError: unknown size (with the closest name).
    """
    if name not in SIZES:
        raise ConfigError(f"unknown detector '{name}'{did_you_mean(name, SIZES)}; choose one of {list(SIZES)}")
    return SIZES[name]


def load_rtmdet_weights(model: RTMDet, path: str | Path) -> None:
    """Load an mmdetection RTMDet checkpoint strictly.

    Raises:
        WeightsError: unreadable or unsafe file, or missing / unexpected / mis-shaped keys (named, with counts).
    """
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shaped = [
        f"{k} {list(v.shape)} vs {list(own[k].shape)}" for k, v in state.items() if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or shaped:
        parts = [
            f"{len(keys)} {label} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped))
            if keys
        ]
        raise WeightsError(f"checkpoint {path} is not an RTMDet of this size: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)
    log.info("loaded RTMDet weights from %s (%d tensors)", path, len(state))


def build_rtmdet(arch: str | RTMDetConfig = "rtmdet-tiny", weights: str | Path | None = None) -> RTMDet:
    """Build an RTMDet in eval mode, optionally loading a checkpoint strictly.

    Args:
        arch: ``rtmdet-tiny|s|m|l`` or a config.
        weights: mmdetection checkpoint file; None keeps the random initialisation.

    Raises:
        ConfigError: unknown size. WeightsError: checkpoint does not load.
    """
    cfg = rtmdet_config(arch) if isinstance(arch, str) else arch
    model = RTMDet(cfg)
    if weights is not None:
        load_rtmdet_weights(model, weights)
    return model.eval()
