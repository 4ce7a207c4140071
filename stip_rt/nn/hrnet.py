"""HRNet (Sun et al., CVPR 2019) and the HRNet top-down pose baseline.

Module names, creation order and shapes follow the official ``PoseHighResolutionNet``
(HRNet's ``pose_hrnet.py``; STIP's ``pose_ptnet.HRNet`` is key-for-key the same), so
official and mmpose-converted checkpoints load with ``strict=True`` (STIP_SPEC §1.1, §2).
No in-place ReLUs: the intermediate branch outputs that STIP keeps stay intact.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import HRNetConfig
from .parallel import ParallelBranches, ParallelRows

BN_MOMENTUM = 0.1
STEM_CHANNELS = 64  # conv1/conv2 and the Bottleneck planes of layer1 (fixed in every official config)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN + shortcut, ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """conv1×1-BN-ReLU-conv3×3-BN-ReLU-conv1×1(×4)-BN + shortcut, ReLU."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def residual_stack(
    block: type[BasicBlock | Bottleneck], inplanes: int, planes: int, count: int, stride: int = 1
) -> nn.Sequential:
    """``count`` blocks; the first strides and gets a 1×1 conv + BN shortcut when the shape changes."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, count)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then the exchange (fuse) across resolutions.

    ``fuse_layers[i][j]`` brings branch j to branch i: 1×1 conv + BN + nearest upsample
    when j > i, identity (None) when j == i, a chain of strided 3×3 convs when j < i.
    With ``multi_scale_output=False`` only output 0 (the highest resolution) is built.
    """

    def __init__(self, widths: list[int], num_blocks: int, multi_scale_output: bool = True) -> None:
        super().__init__()
        self.num_branches = len(widths)
        self.widths = list(widths)
        self.branches = ParallelBranches([residual_stack(BasicBlock, c, c, num_blocks) for c in widths])
        self.fuse_layers = self._make_fuse_layers(multi_scale_output) if self.num_branches > 1 else None

    def _make_fuse_layers(self, multi_scale_output: bool) -> ParallelRows:
        w = self.widths
        rows = []
        for i in range(self.num_branches if multi_scale_output else 1):
            row: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(w[j], w[i], kernel_size=1, bias=False),
                            nn.BatchNorm2d(w[i], momentum=BN_MOMENTUM),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                elif j == i:
                    row.append(None)
                else:
                    chain = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = w[i] if last else w[j]
                        layers: list[nn.Module] = [_conv3x3(w[j], cout, 2), nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)]
                        if not last:
                            layers.append(nn.ReLU())
                        chain.append(nn.Sequential(*layers))
                    row.append(nn.Sequential(*chain))
            rows.append(FuseRow(row, i))
        return ParallelRows(rows)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        # the branches, then the fuse outputs, are independent of each other: on CUDA streams of
        # their own when enabled (nn/parallel.py)
        xs = self.branches(xs)
        if self.fuse_layers is None:
            return xs
        return self.fuse_layers(xs)


class FuseRow(nn.ModuleList):
    """Output ``index`` of an HRNet fuse layer: ``relu(Σ_j cell_j(x_j))``, in the official order of the sum.

    Cell j brings branch j to this resolution (1×1 conv + BN + nearest upsample when j > index, a
    chain of strided 3×3 convs when j < index); the slot of branch ``index`` itself is None (the
    branch output as it is). A module list of those cells, so the checkpoint keys stay
    ``fuse_layers.<index>.<j>.…``.
    """

    def __init__(self, cells: list[nn.Module | None], index: int) -> None:
        super().__init__(cells)  # type: ignore[arg-type]  # None slots are valid at run time
        self.index = index

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        i = self.index
        y = xs[0] if i == 0 else self[0](xs[0])
        for j in range(1, len(self)):
            y = y + (xs[j] if i == j else self[j](xs[j]))
        return torch.relu(y)


def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
    """Channel change of kept branches, plus a strided 3×3 conv from the last branch for a new one."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(prev):
            if c != prev[i]:
                layers.append(nn.Sequential(_conv3x3(prev[i], c), nn.BatchNorm2d(c, momentum=BN_MOMENTUM), nn.ReLU()))
            else:
                layers.append(None)
        else:
            chain = []
            for j in range(i + 1 - len(prev)):
                cout = c if j == i - len(prev) else prev[-1]
                chain.append(
                    nn.Sequential(_conv3x3(prev[-1], cout, 2), nn.BatchNorm2d(cout, momentum=BN_MOMENTUM), nn.ReLU())
                )
            layers.append(nn.Sequential(*chain))
    return nn.ModuleList(layers)  # type: ignore[arg-type]  # None = keep the branch; torch's stub says Module only


def _stage(widths: list[int], num_modules: int, num_blocks: int, multi_scale_output: bool = True) -> nn.Sequential:
    mods = [
        HighResolutionModule(widths, num_blocks, multi_scale_output or i < num_modules - 1) for i in range(num_modules)
    ]
    return nn.Sequential(*mods)


class HRNet(nn.Module):
    """HRNet backbone + ``final_layer``: the HRNet top-down pose baseline.

    Input (N, 3, H, W) RGB ImageNet-normalised crops, H and W multiples of 32.
    ``forward`` returns the heatmaps (N, K, H/4, W/4). STIPNet subclasses this
    (same key names as the official code, whose STIPNet inherits from HRNet).
    """

    def __init__(self, cfg: HRNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = list(cfg.widths)
        self.conv1 = _conv3x3(3, STEM_CHANNELS, 2)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS, momentum=BN_MOMENTUM)
        self.conv2 = _conv3x3(STEM_CHANNELS, STEM_CHANNELS, 2)
        self.bn2 = nn.BatchNorm2d(STEM_CHANNELS, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.layer1 = residual_stack(Bottleneck, STEM_CHANNELS, STEM_CHANNELS, cfg.stem_blocks)
        stem_out = STEM_CHANNELS * Bottleneck.expansion
        self.transition1 = _transition([stem_out], w[:2])
        self.stage2 = _stage(w[:2], cfg.num_modules[0], cfg.num_blocks)
        self.transition2 = _transition(w[:2], w[:3])
        self.stage3 = _stage(w[:3], cfg.num_modules[1], cfg.num_blocks)
        self.transition3 = _transition(w[:3], w)
        self.stage4 = _stage(w, cfg.num_modules[2], cfg.num_blocks, multi_scale_output=False)
        self.final_layer = nn.Conv2d(w[0], cfg.num_joints, kernel_size=1)

    def backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the backbone.

        Args:
            x: (N, 3, H, W) normalised crops.

        Returns:
            (B2, B3, F): highest-resolution outputs of stages 2, 3 and 4, each (N, widths[0], H/4, W/4).
        """
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = [x if t is None else t(x) for t in self.transition1]
        ys = self.stage2(ys)
        b2 = ys[0]
        ys = [ys[i] if t is None else t(ys[-1]) for i, t in enumerate(self.transition2)]
        ys = self.stage3(ys)
        b3 = ys[0]
        ys = [ys[i] if t is None else t(ys[-1]) for i, t in enumerate(self.transition3)]
        ys = self.stage4(ys)
        return b2, b3, ys[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, object]:
        """Heatmaps (N, K, H/4, W/4) in eval mode; the :meth:`forward_train` dict in train mode."""
        if self.training:
            return self.forward_train(x)
        return self.final_layer(self.backbone(x)[2])

    def forward_train(self, x: torch.Tensor) -> dict[str, object]:
        """The official output dict (usable in eval mode too, for parity).

        Returns:
            ``keypoint``: [heatmaps (N, K, H/4, W/4)]; ``kernel``: (N,) mean squared heatmap
            value; ``semantics``: (N, K) per-joint spatial maximum.
        """
        hm = self.final_layer(self.backbone(x)[2])
        return {
            "keypoint": [hm],
            "kernel": hm.pow(2).mean(dim=(1, 2, 3)),
            "semantics": hm.flatten(2).amax(dim=2),
        }
