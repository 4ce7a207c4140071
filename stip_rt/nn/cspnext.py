"""CSPNeXt backbone and CSPNeXt-PAFPN neck of RTMDet, in plain PyTorch.

Module and attribute names reproduce mmdetection 3.x (``mmdet/models/backbones/cspnext.py``,
``necks/cspnext_pafpn.py``, ``layers/csp_layer.py``, ``layers/se_layer.py``,
``backbones/csp_darknet.py`` SPPBottleneck) and mmcv's ``ConvModule`` (``conv`` + ``bn``) and
``DepthwiseSeparableConvModule`` (``depthwise_conv`` + ``pointwise_conv``), so the state-dict keys
equal those of the official checkpoints. BatchNorm eps is 1e-5: the RTMDet configs set
``norm_cfg=dict(type='SyncBN')`` with no eps, i.e. the PyTorch default, not the module default 1e-3.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-5
# in, out, blocks, add_identity, use_spp (mmdet CSPNeXt.arch_settings['P5'])
P5_ARCH = (
    (64, 128, 3, True, False),
    (128, 256, 6, True, False),
    (256, 512, 6, True, False),
    (512, 1024, 3, False, True),
)


class ConvModule(nn.Module):
    """Conv (no bias) → BatchNorm → SiLU, named like mmcv's ConvModule (``conv``, ``bn``)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.activate = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class DepthwiseSeparableConvModule(nn.Module):
    """Depthwise k×k ConvModule then pointwise 1×1 ConvModule (mmcv names)."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, k, groups=cin)
        self.pointwise_conv = ConvModule(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class CSPNeXtBlock(nn.Module):
    """3×3 ConvModule then depthwise-separable 5×5, with an identity shortcut when shapes allow."""

    def __init__(self, cin: int, cout: int, add_identity: bool, expansion: float = 1.0, kernel_size: int = 5) -> None:
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = ConvModule(cin, hidden, 3)
        self.conv2 = DepthwiseSeparableConvModule(hidden, cout, kernel_size)
        self.add_identity = add_identity and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class ChannelAttention(nn.Module):
    """Global average pool → 1×1 conv (with bias) → hard sigmoid, multiplied onto the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPLayer(nn.Module):
    """Cross-stage-partial layer: a main path of CSPNeXtBlocks beside a 1×1 short path."""

    def __init__(
        self,
        cin: int,
        cout: int,
        num_blocks: int,
        add_identity: bool,
        channel_attention: bool = False,
        expand_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        mid = int(cout * expand_ratio)
        self.channel_attention = channel_attention
        self.main_conv = ConvModule(cin, mid, 1)
        self.short_conv = ConvModule(cin, mid, 1)
        self.final_conv = ConvModule(2 * mid, cout, 1)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, mid, add_identity) for _ in range(num_blocks)])
        if channel_attention:
            self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        if self.channel_attention:
            y = self.attention(y)
        return self.final_conv(y)


class SPPBottleneck(nn.Module):
    """1×1 reduce, max-pools 5/9/13 concatenated with the input, 1×1 project."""

    def __init__(self, cin: int, cout: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1)
        self.poolings = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernel_sizes)
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXt(nn.Module):
    """CSPNeXt-P5 backbone: a 3-conv stem and 4 stages; returns the stride 8/16/32 features.

    Args:
        deepen_factor: block-count multiplier (tiny 0.167, s 0.33, m 0.67, l 1.0).
        widen_factor: channel multiplier (tiny 0.375, s 0.5, m 0.75, l 1.0).
    """

    stage1: nn.Sequential  # registered by name in __init__ (mmdet's key names)
    stage2: nn.Sequential
    stage3: nn.Sequential
    stage4: nn.Sequential

    def __init__(self, deepen_factor: float, widen_factor: float) -> None:
        super().__init__()
        c0 = int(P5_ARCH[0][0] * widen_factor)
        half = int(P5_ARCH[0][0] * widen_factor // 2)  # mmdet's rounding, kept for the key shapes
        self.stem = nn.Sequential(ConvModule(3, half, 3, stride=2), ConvModule(half, half, 3), ConvModule(half, c0, 3))
        for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(P5_ARCH):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            n = max(round(blocks * deepen_factor), 1)
            stage: list[nn.Module] = [ConvModule(cin, cout, 3, stride=2)]
            if use_spp:
                stage.append(SPPBottleneck(cout, cout))
            stage.append(CSPLayer(cout, cout, n, add_identity, channel_attention=True))
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
        self.out_channels = tuple(int(a[1] * widen_factor) for a in P5_ARCH[1:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stage2(self.stage1(self.stem(x)))
        c3 = x
        c4 = self.stage3(c3)
        c5 = self.stage4(c4)
        return c3, c4, c5


class CSPNeXtPAFPN(nn.Module):
    """Top-down then bottom-up path aggregation with CSP layers; 3×3 out convs to ``out_channels``.

    Args:
        in_channels: channels of the stride 8/16/32 inputs.
        out_channels: channels of every output level.
        num_csp_blocks: CSPNeXtBlocks per CSP layer (tiny/s 1, m 2, l 3).
    """

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int, num_csp_blocks: int) -> None:
        super().__init__()
        self.in_channels = tuple(in_channels)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        n = len(in_channels)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(n - 1, 0, -1):
            self.reduce_layers.append(ConvModule(in_channels[idx], in_channels[idx - 1], 1))
            self.top_down_blocks.append(
                CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1], num_csp_blocks, add_identity=False)
            )
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(n - 1):
            self.downsamples.append(ConvModule(in_channels[idx], in_channels[idx], 3, stride=2))
            self.bottom_up_blocks.append(
                CSPLayer(in_channels[idx] * 2, in_channels[idx + 1], num_csp_blocks, add_identity=False)
            )
        self.out_convs = nn.ModuleList(ConvModule(c, out_channels, 3) for c in in_channels)

    def forward(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        n = len(self.in_channels)
        inner = [inputs[-1]]
        for idx in range(n - 1, 0, -1):
            high = self.reduce_layers[n - 1 - idx](inner[0])
            inner[0] = high
            inner.insert(0, self.top_down_blocks[n - 1 - idx](torch.cat([self.upsample(high), inputs[idx - 1]], 1)))
        outs = [inner[0]]
        for idx in range(n - 1):
            down = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([down, inner[idx + 1]], 1)))
        return tuple(conv(o) for conv, o in zip(self.out_convs, outs))
