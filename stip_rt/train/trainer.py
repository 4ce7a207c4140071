"""Training STIP / HRNet on COCO or CrowdPose with the official recipe (STIP_SPEC §4).

Adam (lr 1e-3, no weight decay), 210 epochs, lr ×0.1 at epochs 170 and 200, official losses
and augmentation. One deliberate fix: the scheduler is stepped *after* each epoch (the official
code steps it before, so on PyTorch ≥ 1.1 its drops land one epoch early, STIP_SPEC §7.11).
Checkpoints: ``checkpoint.pth`` (epoch, state_dict, optimizer, scheduler; for ``--resume``)
every epoch, and ``final_state.pth`` (a bare state_dict, the official release format).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..data.keypoints_dataset import AugmentConfig, KeypointsDataset, load_instances
from ..errors import ConfigError, WeightsError
from ..models import ModelSpec, build_model, load_spec
from ..schemas import get_schema
from .losses import LossWeights, hrnet_loss, stip_loss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Attributes:
        model: zoo name or YAML of the architecture (e.g. ``stip-w32-crowdpose-256x192``).
        train_ann / train_images: COCO-format keypoint file and its image folder.
        out_dir: where checkpoints and the log go.
        epochs: total epochs (official 210).
        lr: Adam learning rate (official 1e-3).
        milestones: epochs where the lr is multiplied by ``gamma`` (official 170, 200).
        gamma: lr decay factor.
        batch_size: per step (official 4×64 CrowdPose, 8×48 COCO over GPUs).
        workers: data-loading processes.
        sigma: target σ in heatmap pixels; 0 = official (STIP 3, HRNet 2 × heatmap/64).
        pretrained: backbone checkpoint loaded non-strictly into the HRNet stages only (ImageNet HRNet).
        resume: continue from ``out_dir/checkpoint.pth`` when it exists.
        device: ``cpu``, ``cuda``...
        seed: RNG seed of the augmentation.
        max_steps: stop after this many optimiser steps in total (0 = no limit; smoke tests).
        augment: augmentation settings.
        loss: STIP loss weights.
    """

    model: str
    train_ann: str
    train_images: str
    out_dir: str = "runs/train"
    epochs: int = 210
    lr: float = 1e-3
    milestones: tuple[int, ...] = (170, 200)
    gamma: float = 0.1
    batch_size: int = 32
    workers: int = 4
    sigma: float = 0.0
    pretrained: str | None = None
    resume: bool = True
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    seed: int = 0
    max_steps: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossWeights = field(default_factory=LossWeights)


BACKBONE_PREFIXES = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2", "stage3",
                     "transition3", "stage4")


def _official_sigma(spec: ModelSpec) -> float:
    return 3.0 if spec.arch == "stip" else 2.0 * spec.heatmap_size[0] / 64


def _load_pretrained(model: torch.nn.Module, path: str) -> None:
    from ..checkpoint import read_state_dict

    state = read_state_dict(path)
    own = model.state_dict()
    picked = {k: v for k, v in state.items() if k.split(".")[0] in BACKBONE_PREFIXES and k in own
              and own[k].shape == v.shape}
    if not picked:
        raise WeightsError(f"pretrained {path}: no HRNet backbone key matches the model")
    model.load_state_dict(picked, strict=False)
    log.info("pretrained %s: loaded %d backbone tensors", path, len(picked))


def train(config: TrainConfig, on_step: Callable[[int, float, dict[str, float]], None] | None = None) -> Path:
    """Train; returns the path of ``final_state.pth``.

    Args:
        config: the run.
        on_step: called after each optimiser step with (global step, loss, loss terms).

    Raises:
        ConfigError / DataError / WeightsError: bad settings, data or checkpoints.
    """
    spec = load_spec(config.model)
    schema = get_schema(spec.schema)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    instances = load_instances(config.train_ann, config.train_images, schema, spec.aspect_ratio, spec.box_padding)
    if not instances:
        raise ConfigError(f"train_ann {config.train_ann}: no annotated person to train on")
    sigma = config.sigma or _official_sigma(spec)
    dataset = KeypointsDataset(instances, schema, spec.input_size, spec.heatmap_size, sigma, train=True,
                               augment=config.augment, seed=config.seed)
    loader = DataLoader(dataset, batch_size=min(config.batch_size, len(dataset)), shuffle=True, drop_last=True,
                        num_workers=config.workers, pin_memory=config.device.startswith("cuda"),
                        persistent_workers=config.workers > 0)
    model = build_model(spec).to(config.device).train()
    if config.pretrained:
        _load_pretrained(model, config.pretrained)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.milestones), config.gamma)
    start_epoch, step = 0, 0
    ckpt = out / "checkpoint.pth"
    if config.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=config.device, weights_only=True)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step = int(state["epoch"]), int(state["step"])
        log.info("resumed from %s at epoch %d", ckpt, start_epoch)
    loss_fn = (lambda o, t: stip_loss(o, t, config.loss)) if spec.arch == "stip" else hrnet_loss
    for epoch in range(start_epoch, config.epochs):
        dataset.epoch = epoch
        for images, targets in loader:
            images = images.to(config.device, non_blocking=True)
            targets = {k: v.to(config.device, non_blocking=True) for k, v in targets.items()}
            outputs = model.forward_train(images)
            loss, terms = loss_fn(outputs, targets)
            if not math.isfinite(loss.item()):
                raise ConfigError(f"training diverged at epoch {epoch}, step {step}: loss {loss.item()}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if on_step is not None:
                on_step(step, loss.item(), terms)
            if config.max_steps and step >= config.max_steps:
                break
        scheduler.step()
        torch.save({"epoch": epoch + 1, "step": step, "state_dict": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, ckpt)
        log.info("epoch %d done (step %d, lr %.2e)", epoch + 1, step, scheduler.get_last_lr()[0])
        if config.max_steps and step >= config.max_steps:
            break
    final = out / "final_state.pth"
    torch.save(model.state_dict(), final)
    return final
