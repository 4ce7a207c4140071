"""The settings of a training run (:class:`TrainConfig`), their checks, and what a run leaves (:class:`TrainResult`).

:func:`stip_rt.train.trainer.train` runs one; ``stip-rt train`` reads its YAML into a :class:`TrainConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from ..data.keypoints_dataset import AugmentConfig
from ..errors import ConfigError, DataError, SourceError, WeightsError
from ..models import ModelSpec, load_spec
from ..schemas import get_schema
from .logs import TrainEvent
from .losses import LossWeights
from .validate import ValConfig


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Attributes:
        model: zoo name, model YAML, or a checkpoint that records its model (e.g. ``stip-w32-crowdpose-256x192``).
        train_ann / train_images: COCO-format keypoint file and its image folder.
        out_dir: where checkpoints and logs go.
        schema: keypoint set to train (name or YAML file); None = the model's own.
        epochs: total epochs (official 210).
        lr: Adam learning rate (official 1e-3).
        milestones: epochs where the lr is multiplied by ``gamma`` (official 170, 200).
        gamma: lr decay factor.
        batch_size: samples per micro-batch of each process. The global batch is
            ``batch_size × processes × accumulate`` (official: 4 GPUs × 64 CrowdPose, 8 × 48 COCO).
        accumulate: micro-batches per optimiser step (one GPU reproduces several; BatchNorm per micro-batch).
        workers: data-loading processes per training process.
        sigma: target σ in heatmap pixels; 0 = official (STIP 3, HRNet 2 × heatmap/64).
        pretrained: ImageNet checkpoint, loaded into the backbone only (HRNet; ResNet for SimpleBaseline)
            over the official initialisation (:func:`stip_rt.nn.init.official_init`).
        weights: checkpoint to fine-tune from (strict where shapes match; heads re-initialised when K differs).
        resume: continue from ``out_dir/checkpoint.pth`` when it exists (it must be of the same model).
            A run that does not resume moves an earlier run's files to ``out_dir/previous-N``.
        device: ``cpu``, ``cuda`` (``cuda:LOCAL_RANK`` under torchrun) ...
        seed: seed of the initialisation, the data order and the augmentation.
        max_steps: stop after this many optimiser steps in total (0 = no limit; smoke tests); a rerun
            that already reached it does nothing.
        amp: ``off`` (fp32), ``bf16`` (autocast, CPU or GPU) or ``fp16`` (autocast + gradient scaler, CUDA only).
        channels_last: NHWC memory format for the network and its inputs.
        fused_iap: STIP's IaP through the fused op and its backward (no N×K×C×H×W kernels tensor).
        iap_impl: IaP implementation (``auto``, ``cpu``, ``triton``, ``reference``; see :mod:`stip_rt.nn.iap`).
        compile: run the network through ``torch.compile``.
        val: validation set and schedule.
        tensorboard: write TensorBoard events (when the package is installed).
        augment: augmentation settings.
        loss: STIP loss weights.
    """

    model: str
    train_ann: str
    train_images: str
    out_dir: str = "runs/train"
    schema: str | None = None
    epochs: int = 210
    lr: float = 1e-3
    milestones: tuple[int, ...] = (170, 200)
    gamma: float = 0.1
    batch_size: int = 32
    accumulate: int = 1
    workers: int = 4
    sigma: float = 0.0
    pretrained: str | None = None
    weights: str | None = None
    resume: bool = True
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    seed: int = 0
    max_steps: int = 0
    amp: Literal["off", "bf16", "fp16"] = "off"
    channels_last: bool = False
    fused_iap: bool = True
    iap_impl: Literal["auto", "reference", "cpu", "triton"] = "auto"
    compile: bool = False
    val: ValConfig = field(default_factory=ValConfig)
    tensorboard: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossWeights = field(default_factory=LossWeights)


@dataclass(frozen=True)
class TrainResult:
    """What a run left behind (paths in ``out_dir``; None where not written).

    Attributes:
        final: ``final_state.pth`` (official format), None when the run was stopped early.
        model: ``model.pth`` (weights + model config), None when stopped early.
        checkpoint: ``checkpoint.pth``.
        best: ``best.pth`` (when validated).
        steps: optimiser steps done in total.
        stopped: the run was stopped by a stop request (SIGTERM) after writing ``checkpoint``.
    """

    final: Path | None
    model: Path | None
    checkpoint: Path
    best: Path | None
    steps: int
    stopped: bool = False


Progress = Callable[[TrainEvent], None]


def official_sigma(spec: ModelSpec) -> float:
    return 3.0 if spec.arch == "stip" else 2.0 * spec.heatmap_size[0] / 64


def check_config(config: TrainConfig, device: str) -> None:
    """Check the settings and paths of a run before anything is created (one error naming the input).

    Raises:
        ConfigError: an invalid setting, or ``out_dir`` is an existing file.
        DataError: ``train_ann`` (or ``val.ann``, ``val.detections``) is not a file.
        SourceError: ``train_images`` (or ``val.images``) is not a folder.
        WeightsError: ``pretrained`` or ``weights`` is not a file.
    """
    if config.amp not in ("off", "bf16", "fp16"):
        raise ConfigError(f"train config: 'amp' must be off, bf16 or fp16, got {config.amp!r}")
    if config.amp == "fp16" and not device.startswith("cuda"):
        raise ConfigError(f"train config: amp 'fp16' needs a CUDA device (got '{device}'); use amp: bf16 on the CPU")
    if (config.val.ann is None) != (config.val.images is None):
        raise ConfigError("train config: give both val.ann and val.images (or neither)")
    if config.val.every < 1:
        raise ConfigError(f"train config: 'val.every' must be >= 1 epoch, got {config.val.every}")
    _check_paths(config)


def _check_paths(config: TrainConfig) -> None:
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {out}: exists and is not a folder; name a folder (new or of an earlier run)")
    for key, file in (("train_ann", config.train_ann), ("val.ann", config.val.ann),
                      ("val.detections", config.val.detections)):
        if file is not None and not Path(file).is_file():
            raise DataError(f"{key} {file}: no such file")
    for key, folder in (("train_images", config.train_images), ("val.images", config.val.images)):
        if folder is not None and not Path(folder).is_dir():
            raise SourceError(f"{key} {folder}: no such folder")
    resuming = config.resume and (out / "checkpoint.pth").is_file()  # then neither is loaded
    for key, file in (("pretrained", config.pretrained), ("weights", config.weights)):
        if file is not None and not resuming and not Path(file).is_file():
            raise WeightsError(f"{key} {file}: no such file")


def resolve_spec(config: TrainConfig) -> ModelSpec:
    """The model spec of the run (``schema`` replaces the model's keypoint set)."""
    spec = load_spec(config.model)
    if config.schema is not None:
        schema = get_schema(config.schema)
        spec = dataclasses.replace(spec, schema=schema.name)
    return spec


def check_images(images: Iterable[Path], ann: str | Path) -> None:
    """Check that the image of every person to train on is a file, before the first step.

    Raises:
        SourceError: the first missing image, naming the annotation file and how many are missing.
    """
    missing = [p for p in dict.fromkeys(images) if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SourceError(f"image {missing[0]}: file not found{more}; train_ann {ann} names it")
