"""Starting weights: ImageNet backbones (``pretrained``) and fine-tuning checkpoints (``weights``).

:func:`load_finetune_weights` loads an official or earlier checkpoint strictly wherever the
shapes match. Where the number of keypoints differs from the checkpoint's, the tensors whose
first (output) dimension depends on it — STIP's ``kpt_layer``, ``parts_predictor``,
``context_predictor``, ``kernel_generator``, HRNet's ``final_layer`` — keep their fresh
initialisation, and each one is logged. Any other difference (a missing or unexpected key, a
different width) is an error, as with :func:`stip_rt.checkpoint.load_weights`.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..checkpoint import map_mmpose_keys, read_state_dict
from ..errors import WeightsError

log = logging.getLogger(__name__)

BACKBONE_PREFIXES = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2", "stage3",
                     "transition3", "stage4")
#: SimpleBaseline's ResNet (torchvision's ImageNet checkpoints use these names; their ``fc`` is left out).
RESNET_BACKBONE_PREFIXES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


def load_pretrained(model: nn.Module, path: str, prefixes: tuple[str, ...] = BACKBONE_PREFIXES) -> int:
    """Load the backbone tensors of an ImageNet checkpoint (non-strictly, backbone only).

    Args:
        model: the network, already initialised (its heads keep that initialisation).
        path: the ImageNet checkpoint.
        prefixes: first components of the backbone keys: :data:`BACKBONE_PREFIXES` (HRNet, the official
            PRETRAINED_LAYERS) or :data:`RESNET_BACKBONE_PREFIXES` (SimpleBaseline).

    Returns:
        Number of tensors loaded.

    Raises:
        WeightsError: unreadable file, or no backbone key matches.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    picked = {k: v for k, v in state.items() if k.split(".")[0] in prefixes and k in own
              and own[k].shape == v.shape}
    if not picked:
        raise WeightsError(f"pretrained {path}: no backbone key ({', '.join(prefixes)}) matches the model")
    model.load_state_dict(picked, strict=False)
    log.info("pretrained %s: loaded %d backbone tensors", path, len(picked))
    return len(picked)


def _joint_dependent(got: torch.Size, want: torch.Size, k_model: int) -> bool:
    """A head tensor whose output dimension is K (or K·C) and differs only there."""
    return got[1:] == want[1:] and got[0] != want[0] and want[0] % k_model == 0


def load_finetune_weights(model: nn.Module, path: str, num_keypoints: int) -> list[str]:
    """Load a checkpoint to fine-tune from (strict where shapes match; K-dependent heads re-initialised).

    Args:
        model: the freshly initialised network.
        path: any checkpoint :func:`stip_rt.checkpoint.read_state_dict` reads (official, mmpose, ours).
        num_keypoints: K of ``model``.

    Returns:
        The keys left at their fresh initialisation (empty when K matches).

    Raises:
        WeightsError: unreadable file, missing / unexpected keys, or a mismatch that K does not explain.
    """
    state = map_mmpose_keys(read_state_dict(path), path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shaped = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    heads = [k for k in shaped if _joint_dependent(state[k].shape, own[k].shape, num_keypoints)]
    bad = [k for k in shaped if k not in heads]
    if missing or unexpected or bad:
        parts = [f"{len(keys)} {what} ({', '.join(keys[:5])})" for what, keys in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", bad)) if keys]
        raise WeightsError(f"weights {path} do not fit the model: {'; '.join(parts)}")
    model.load_state_dict({k: v for k, v in state.items() if k not in heads}, strict=False)
    if heads:
        log.warning("weights %s: %d joint-dependent head tensors re-initialised for %d keypoints: %s",
                    path, len(heads), num_keypoints, ", ".join(heads))
    log.info("weights %s: loaded %d tensors", path, len(state) - len(heads))
    return heads
