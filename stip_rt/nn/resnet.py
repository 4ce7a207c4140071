"""SimpleBaseline (Xiao et al., ECCV 2018): ResNet + three 4×4 stride-2 deconvolutions + 1×1 conv.

Names follow the official ``pose_resnet.PoseResNet`` of the HRNet/STIP code bases
(``conv1``, ``bn1``, ``layer1..4``, ``deconv_layers``, ``final_layer``), which are also
mmpose's names after its ``backbone.`` / ``keypoint_head.`` prefixes
(:data:`stip_rt.checkpoint.MMPOSE_KEY_MAP`). Heatmaps at stride 4.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import PoseResNetConfig
from .hrnet import BN_MOMENTUM, BasicBlock, Bottleneck, residual_stack

#: depth -> (block, blocks per stage)
RESNET_SPECS: dict[int, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class PoseResNet(nn.Module):
    """SimpleBaseline for (N, 3, H, W) crops; ``forward`` returns heatmaps (N, K, H/4, W/4) in eval mode."""

    layer1: nn.Sequential  # registered by name in __init__ (the official key names)
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, cfg: PoseResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        block, counts = RESNET_SPECS[cfg.depth]
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, count) in enumerate(zip((64, 128, 256, 512), counts)):
            self.add_module(f"layer{i + 1}", residual_stack(block, inplanes, planes, count, 1 if i == 0 else 2))
            inplanes = planes * block.expansion
        deconvs: list[nn.Module] = []
        for channels in cfg.deconv_channels:
            deconvs += [
                nn.ConvTranspose2d(inplanes, channels, kernel_size=4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
                nn.ReLU(),
            ]
            inplanes = channels
        self.deconv_layers = nn.Sequential(*deconvs)
        self.final_layer = nn.Conv2d(inplanes, cfg.num_joints, kernel_size=1)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised crops → (N, K, H/4, W/4) heatmaps."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_layer(self.deconv_layers(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, object]:
        """Heatmaps in eval mode; the :meth:`forward_train` dict in train mode."""
        if self.training:
            return self.forward_train(x)
        return self.heatmaps(x)

    def forward_train(self, x: torch.Tensor) -> dict[str, object]:
        """Same dict as the HRNet baseline: ``keypoint`` [heatmaps], ``kernel`` (N,), ``semantics`` (N, K)."""
        hm = self.heatmaps(x)
        return {"keypoint": [hm], "kernel": hm.pow(2).mean(dim=(1, 2, 3)), "semantics": hm.flatten(2).amax(dim=2)}
