"""Frozen configs of the pose networks (defaults = the official W32 models).

A network's constructor takes only its own dataclass: :class:`HRNetConfig` for the
HRNet pose baseline, :class:`StipConfig` (which holds an :class:`HRNetConfig`) for
STIPNet, :class:`PoseResNetConfig` for the SimpleBaseline ResNet.
``stip_rt.models.ModelSpec`` is the user-facing description and holds one of these as ``net``
(it sets ``num_joints`` from its keypoint schema).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HRNetConfig:
    """HRNet backbone + 1×1 ``final_layer`` (the official ``PoseHighResolutionNet``).

    Attributes:
        widths: channels of the 4 branches (W32: 32, 64, 128, 256; W48: 48, 96, 192, 384).
        num_modules: HighResolutionModules in stages 2, 3 and 4 (official 1, 4, 3).
        num_blocks: BasicBlocks per branch in every module of stages 2–4 (official 4).
        stem_blocks: Bottlenecks of ``layer1`` (stage 1, 64 planes → 256 channels; official 4).
        num_joints: K, output channels of ``final_layer``.
    """

    widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    num_modules: tuple[int, int, int] = (1, 4, 3)
    num_blocks: int = 4
    stem_blocks: int = 4
    num_joints: int = 17

    def __post_init__(self) -> None:
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"'widths' must be 4 positive integers, got {list(self.widths)}")
        if len(self.num_modules) != 3 or min(self.num_modules) < 1:
            raise ValueError(f"'num_modules' must be 3 positive integers, got {list(self.num_modules)}")
        if self.num_blocks < 1 or self.stem_blocks < 1:
            raise ValueError("'num_blocks' and 'stem_blocks' must be >= 1")
        if self.num_joints < 1:
            raise ValueError(f"'num_joints' must be >= 1, got {self.num_joints}")


@dataclass(frozen=True)
class StipConfig:
    """STIPNet = HRNet backbone + SaT and IaP heads (official ``pose_ptnet.STIPNet``).

    Attributes:
        hrnet: the backbone (its ``num_joints`` is K for every head).
        up_scale: heatmap resolution / backbone resolution (official 2; 1 crashes the
            official code, STIP_SPEC §7.2, so it is rejected here).
        aspp_rates: dilation rates of the three 3×3 ASPP branches (official 1, 1, 2).
    """

    hrnet: HRNetConfig = field(default_factory=HRNetConfig)
    up_scale: int = 2
    aspp_rates: tuple[int, int, int] = (1, 1, 2)

    def __post_init__(self) -> None:
        if self.up_scale < 2:
            raise ValueError(f"'up_scale' must be an integer >= 2 (the official STIPNet needs 2), got {self.up_scale}")
        if len(self.aspp_rates) != 3 or min(self.aspp_rates) < 1:
            raise ValueError(f"'aspp_rates' must be 3 positive integers, got {list(self.aspp_rates)}")


@dataclass(frozen=True)
class PoseResNetConfig:
    """SimpleBaseline (Xiao et al., ECCV 2018): ResNet + 3 deconvolutions + 1×1 ``final_layer``.

    Attributes:
        depth: ResNet depth, one of 18, 34, 50, 101, 152.
        num_joints: K, output channels of ``final_layer``.
        deconv_channels: output channels of the stride-2 4×4 transposed convolutions (official 256 × 3).
    """

    depth: int = 50
    num_joints: int = 17
    deconv_channels: tuple[int, ...] = (256, 256, 256)

    def __post_init__(self) -> None:
        if self.depth not in (18, 34, 50, 101, 152):
            raise ValueError(f"'depth' must be one of 18, 34, 50, 101, 152, got {self.depth}")
        if not self.deconv_channels or min(self.deconv_channels) < 1:
            raise ValueError(f"'deconv_channels' must be positive integers, got {list(self.deconv_channels)}")
        if self.num_joints < 1:
            raise ValueError(f"'num_joints' must be >= 1, got {self.num_joints}")
