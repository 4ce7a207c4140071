"""Building pose networks: :func:`build_model` from a :class:`~stip_rt.model_spec.ModelSpec` (a zoo
name, YAML/JSON path, dict, fixture or ``stip-rt train`` checkpoint; see :mod:`stip_rt.model_spec`).

Example:
    >>> model = build_model("stip-w32-coco-256x192").eval()
    >>> heatmaps = model(crops)  # (N, 17, 128, 96)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .model_spec import (
    CHECKPOINT_SUFFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    NET_CONFIGS,
    Arch,
    Decode,
    ModelSpec,
    NetConfig,
    load_spec,
    spec_from_checkpoint,
    spec_from_fixture,
    spec_from_mapping,
)
from .nn.config import PoseResNetConfig, StipConfig
from .nn.hrnet import HRNet
from .nn.resnet import PoseResNet
from .nn.stip import STIPNet
from .paths import zoo_names

log = logging.getLogger(__name__)

#: Seed of "random weights" models (``--weights random``): the same spec always gives the same
#: network, so its ONNX export is cached once instead of once per run.
RANDOM_SEED = 0

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NET_CONFIGS",
    "RANDOM_SEED",
    "Arch",
    "Decode",
    "ModelSpec",
    "NetConfig",
    "build_model",
    "flatten_outputs",
    "load_spec",
    "seeded",
    "spec_from_checkpoint",
    "spec_from_fixture",
    "spec_from_mapping",
    "zoo_names",
]


def flatten_outputs(outputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Official output dict → flat ``<output>_<index>`` tensors (the naming of the parity fixtures).

    A list entry ``keypoint: [Y, H0, KM]`` becomes ``keypoint_0``, ``keypoint_1``, ``keypoint_2``;
    a tensor entry ``kernel`` becomes ``kernel_0``.
    """
    flat: dict[str, torch.Tensor] = {}
    for key, value in outputs.items():
        items = value if isinstance(value, list | tuple) else [value]
        for i, t in enumerate(items):
            flat[f"{key}_{i}"] = t
    return flat


def build_model(
    spec: str | Path | Mapping[str, Any] | ModelSpec, weights: str | Path | None = None, *, seed: int | None = None
) -> nn.Module:
    """Build a pose network (random init, or ``weights`` loaded strictly).

    Args:
        spec: a zoo name (``models/<name>.yaml``), a YAML path, a fixture ``.json`` path,
            a dict of :class:`ModelSpec` fields, or a :class:`ModelSpec`.
        weights: optional checkpoint (any format :func:`stip_rt.checkpoint.read_state_dict` reads); when
            ``spec`` is a training checkpoint and ``weights`` is None, its own weights are loaded.
        seed: initialise from this seed (:func:`seeded`; ``RANDOM_SEED`` for "random weights"
            runs) instead of torch's global generator, which is left as it was.

    Returns:
        An ``nn.Module`` in train mode (call ``.eval()`` for inference) with ``model.spec``
        set. In eval mode ``model(x)`` maps (N, 3, H, W) normalised RGB crops to heatmaps
        (N, K, h, w); ``model.forward_train(x)`` returns the official output dict.

    Raises:
        ConfigError: invalid spec.
        WeightsError: unreadable or mismatching checkpoint.
    """
    ms = load_spec(spec)
    if weights is None and isinstance(spec, str | Path) and Path(spec).suffix.lower() in CHECKPOINT_SUFFIXES:
        weights = spec
    cfg = ms.network_config()
    model: nn.Module
    with seeded(seed):
        if isinstance(cfg, StipConfig):
            model = STIPNet(cfg)
        elif isinstance(cfg, PoseResNetConfig):
            model = PoseResNet(cfg)
        else:
            model = HRNet(cfg)
    model.spec = ms  # type: ignore[assignment]  # a plain attribute, not a submodule
    if weights is not None:
        from .checkpoint import load_weights

        load_weights(model, weights)
    log.debug("built %s (%s, %d joints, input %s)", ms.name, ms.arch, ms.num_joints, ms.input_size)
    return model


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded by ``seed`` and restore it afterwards (None: as is).

    Random weights made inside are the same on every run, so their exports are cached once.
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU generator only: models are built on the CPU
        yield
