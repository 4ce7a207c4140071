"""Pose model descriptions (:class:`ModelSpec`), the model zoo configs, and :func:`build_model`.

A model is described by a YAML file in ``models/`` (``models/<name>.yaml``; the file
name is the zoo name), by a YAML path, or by a dict of the same fields; fields left
out take the defaults of :class:`ModelSpec` (the official W32 settings). The fixture
format of ``shared/fixtures/official_parity/*.json`` is accepted too
(:func:`spec_from_fixture`).

Example:
    >>> model = build_model("stip-w32-coco-256x192").eval()
    >>> heatmaps = model(crops)  # (N, 17, 128, 96)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .config import from_dict, read_yaml
from .errors import ConfigError, did_you_mean
from .nn.config import HRNetConfig, PoseResNetConfig, StipConfig
from .nn.hrnet import HRNet
from .nn.resnet import PoseResNet
from .nn.stip import STIPNet
from .paths import models_dir
from .schemas import get_schema

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_NOT_ARCH_CONFIGS = {"zoo"}  # models/zoo.yaml is the download manifest, not a model


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a pose network and to feed and decode it.

    Attributes:
        name: model name (the zoo name for zoo models, e.g. ``stip-w32-coco-256x192``).
        arch: ``'stip'`` (STIPNet: HRNet + SaT/IaP heads), ``'hrnet'`` (HRNet pose baseline) or
            ``'simplebaseline'`` (ResNet + deconvolutions).
        schema: keypoint schema name, ``'coco17'`` or ``'crowdpose14'`` (:mod:`stip_rt.schemas`).
        num_joints: K, heatmap channels; must equal the schema's joint count.
        input_size: crop size (h, w) in pixels, multiples of 32 (256×192 or 384×288).
        heatmap_size: output size (h, w): input/4·``up_scale`` for ``stip``, input/4 otherwise.
        decode: heatmap decoding: ``'hrnet'`` (argmax + quarter-pixel step) or ``'stip'``
            (argmax + DARK-style refinement, STIP_SPEC §1.6).
        widths: HRNet branch channels (W32: 32, 64, 128, 256; W48: 48, 96, 192, 384).
        num_modules: HighResolutionModules in stages 2, 3, 4 (official 1, 4, 3).
        num_blocks: BasicBlocks per branch in stages 2–4 (official 4).
        stem_blocks: Bottlenecks in stage 1 (``layer1``; official 4).
        up_scale: STIP heatmap upscale over the backbone resolution (official 2; only for ``stip``).
        depth: ResNet depth of ``simplebaseline`` (18, 34, 50, 101, 152; ignored otherwise).
        pixel_mean: RGB mean of inputs scaled to [0, 1] (ImageNet).
        pixel_std: RGB std of inputs scaled to [0, 1] (ImageNet).
        box_padding: factor applied to the person box (at aspect ratio ``aspect_ratio``) before cropping.
        aspect_ratio: crop width / height that boxes are padded to (0.75 = 192/256).
    """

    name: str = "custom"
    arch: Literal["hrnet", "stip", "simplebaseline"] = "stip"
    schema: str = "coco17"
    num_joints: int = 17
    input_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] = (128, 96)
    decode: Literal["hrnet", "stip"] = "stip"
    widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    num_modules: tuple[int, int, int] = (1, 4, 3)
    num_blocks: int = 4
    stem_blocks: int = 4
    up_scale: int = 2
    depth: int = 50
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    box_padding: float = 1.25
    aspect_ratio: float = 0.75

    def __post_init__(self) -> None:
        schema = get_schema(self.schema)
        if schema.num_keypoints != self.num_joints:
            raise ValueError(
                f"'num_joints' is {self.num_joints} but schema '{self.schema}' has {schema.num_keypoints} joints"
            )
        h, w = self.input_size
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise ValueError(f"'input_size' must be positive multiples of 32 (h, w), got {list(self.input_size)}")
        stride = 4 / self.up_scale if self.arch == "stip" else 4
        expected = (int(h / stride), int(w / stride))
        if tuple(self.heatmap_size) != expected:
            raise ValueError(
                f"'heatmap_size' {list(self.heatmap_size)} does not match input {list(self.input_size)} for "
                f"arch '{self.arch}' (expected {list(expected)})"
            )
        self.network_config()  # validates the network fields

    @property
    def stride(self) -> float:
        """Input pixels per heatmap pixel (4 for HRNet, 2 for STIP)."""
        return self.input_size[0] / self.heatmap_size[0]

    def network_config(self) -> HRNetConfig | StipConfig | PoseResNetConfig:
        """The network's own frozen config."""
        if self.arch == "simplebaseline":
            return PoseResNetConfig(depth=self.depth, num_joints=self.num_joints)
        hr = HRNetConfig(
            widths=self.widths,
            num_modules=self.num_modules,
            num_blocks=self.num_blocks,
            stem_blocks=self.stem_blocks,
            num_joints=self.num_joints,
        )
        return hr if self.arch == "hrnet" else StipConfig(hrnet=hr, up_scale=self.up_scale)


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


def zoo_names() -> list[str]:
    """Names of the architecture configs in ``models/`` (sorted)."""
    try:
        folder = models_dir()
    except FileNotFoundError:
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if p.stem not in _NOT_ARCH_CONFIGS)


def spec_from_fixture(data: Mapping[str, Any], source: str = "fixture") -> ModelSpec:
    """Convert an ``official_parity/*.json`` fixture config to a :class:`ModelSpec`.

    Args:
        data: the JSON mapping (``arch`` 'hrnet'|'stipnet', ``hrnet_channels``, ``num_modules``
            {stage2, stage3, stage4}, ``num_blocks_per_branch``, ``input_hw``, ``num_joints``, ``up_scale``).
        source: name used in error messages.

    Raises:
        ConfigError: a missing or invalid field.
    """
    from .schemas import schema_for_joints

    try:
        arch = {"hrnet": "hrnet", "stipnet": "stip", "stip": "stip"}[data["arch"]]
        h, w = (int(v) for v in data["input_hw"])
        up = int(data.get("up_scale", 2)) if arch == "stip" else 2
        mods = data["num_modules"]
        fields = {
            "name": str(data.get("name", "fixture")),
            "arch": arch,
            "schema": schema_for_joints(int(data["num_joints"])).name,
            "num_joints": int(data["num_joints"]),
            "input_size": (h, w),
            "heatmap_size": (h // 4 * up, w // 4 * up) if arch == "stip" else (h // 4, w // 4),
            "decode": arch,
            "widths": tuple(int(c) for c in data["hrnet_channels"]),
            "num_modules": (int(mods["stage2"]), int(mods["stage3"]), int(mods["stage4"])),
            "num_blocks": int(data["num_blocks_per_branch"]),
            "up_scale": up,
        }
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{source}: not a valid parity fixture config ({type(e).__name__}: {e})") from None
    return from_dict(ModelSpec, fields, source)


def load_spec(spec: str | Path | Mapping[str, Any] | ModelSpec) -> ModelSpec:
    """Resolve a zoo name, a YAML/JSON path, a dict or a :class:`ModelSpec` to a :class:`ModelSpec`.

    Raises:
        ConfigError: unknown zoo name (with a suggestion), unreadable file, unknown key or invalid value.
    """
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, Mapping):
        if "hrnet_channels" in spec:
            return spec_from_fixture(spec, "model dict")
        return from_dict(ModelSpec, spec, "model dict")
    if not isinstance(spec, str | Path):
        raise ConfigError(f"model spec: expected a zoo name, a path or a mapping, got {type(spec).__name__}")
    text = str(spec)
    path = Path(text)
    looks_like_path = path.suffix.lower() in (".yaml", ".yml", ".json") or "/" in text or "\\" in text
    if not looks_like_path:
        names = zoo_names()
        if text not in names:
            raise ConfigError(f"model '{text}': not a zoo model{did_you_mean(text, names)}; known: {', '.join(names)}")
        path = models_dir() / f"{text}.yaml"
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"model config {path}: file not found") from None
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"model config {path}: cannot read JSON ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"model config {path}: expected a JSON object")
        return spec_from_fixture(data, str(path)) if "hrnet_channels" in data else from_dict(ModelSpec, data, str(path))
    data = read_yaml(path)
    data.setdefault("name", path.stem)  # zoo configs are named by their file
    return from_dict(ModelSpec, data, str(path))


def build_model(spec: str | Path | Mapping[str, Any] | ModelSpec, weights: str | Path | None = None) -> nn.Module:
    """Build a pose network (random init, or ``weights`` loaded strictly).

    Args:
        spec: a zoo name (``models/<name>.yaml``), a YAML path, a fixture ``.json`` path,
            a dict of :class:`ModelSpec` fields, or a :class:`ModelSpec`.
        weights: optional checkpoint (any format :func:`stip_rt.checkpoint.read_state_dict` reads).

    Returns:
        An ``nn.Module`` in train mode (call ``.eval()`` for inference) with ``model.spec``
        set. In eval mode ``model(x)`` maps (N, 3, H, W) normalised RGB crops to heatmaps
        (N, K, h, w); ``model.forward_train(x)`` returns the official output dict.

    Raises:
        ConfigError: invalid spec.
        WeightsError: unreadable or mismatching checkpoint.
    """
    ms = load_spec(spec)
    cfg = ms.network_config()
    model: nn.Module
    if isinstance(cfg, StipConfig):
        model = STIPNet(cfg)
    elif isinstance(cfg, PoseResNetConfig):
        model = PoseResNet(cfg)
    else:
        model = HRNet(cfg)
    model.spec = ms
    if weights is not None:
        from .checkpoint import load_weights

        load_weights(model, weights)
    log.debug("built %s (%s, %d joints, input %s)", ms.name, ms.arch, ms.num_joints, ms.input_size)
    return model
