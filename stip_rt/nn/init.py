"""The official weight initialisation of a network trained from scratch or from an ImageNet backbone.

STIP_SPEC §1.7 (``init_weights`` of STIP and HRNet): every ``Conv2d``, ``ConvTranspose2d`` and
``Linear`` weight ~ N(0, 0.001²), their biases 0, every BatchNorm γ = 1 and β = 0. The ImageNet
backbone (``--pretrained``) is loaded on top, so the heads (``final_layer``, STIP's heads) keep this
initialisation.

SimpleBaseline (``pose_resnet.PoseResNet.init_weights``) initialises its ``deconv_layers`` and
``final_layer`` the same way and takes its ResNet backbone from the ImageNet checkpoint; without one,
every convolution is N(0, 0.001²) and every BatchNorm 1/0 too. Applying the rule above to the whole
network gives the same weights in both cases, except that the official code leaves the bias of
``final_layer`` at PyTorch's default when there is no ImageNet checkpoint (here it is 0, as with one).

Only training uses this: :func:`stip_rt.models.build_model` keeps PyTorch's defaults, and every
inference path loads weights over them.
"""

from __future__ import annotations

from torch import nn

#: Standard deviation of the official weight initialisation.
INIT_STD = 0.001

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def official_init(model: nn.Module, std: float = INIT_STD) -> nn.Module:
    """Initialise ``model`` in place as the official training code does (STIP_SPEC §1.7).

    Draws from torch's global generator (seed it for a reproducible start).

    Args:
        model: any stip-rt pose network (STIPNet, HRNet, PoseResNet).
        std: standard deviation of the convolution and linear weights.

    Returns:
        ``model``.
    """
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
