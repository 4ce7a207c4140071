"""Training STIP / HRNet on COCO, CrowdPose or a custom keypoint set with the official recipe (STIP_SPEC §4).

Adam (lr 1e-3, no weight decay), 210 epochs, lr ×0.1 at epochs 170 and 200, official losses
and augmentation. One deliberate fix: the scheduler is stepped *after* each epoch (the official
code steps it before, so on PyTorch ≥ 1.1 its drops land one epoch early, STIP_SPEC §7.11).

Beyond the recipe: mixed precision (``amp``: bf16 autocast, or fp16 with a gradient scaler on CUDA),
channels-last, the fused IaP op with its own backward (``fused_iap``), ``torch.compile``, DDP under
``torchrun`` (:mod:`.distributed`), gradient accumulation, validation with the project's OKS AP
(:mod:`.validate`), a CSV log and TensorBoard events (:mod:`.logs`), exact resume (:mod:`.state`),
a stop request (SIGTERM in the CLI) that writes a checkpoint first, and fine-tuning from a
checkpoint onto another keypoint set (:mod:`.finetune`).

Files in ``out_dir`` (rank 0): ``checkpoint.pth`` (resume state, every epoch and on stop),
``best.pth`` (best validation metric), ``model.pth`` (final weights + model config + keypoint set:
give it to ``stip-rt eval`` / ``export``), ``final_state.pth`` (a bare state_dict, the official
release format), ``log.csv``, ``tb/``. A run that starts over moves those of an earlier run into
``previous-N/``; a resumed run checks that ``checkpoint.pth`` is of its model.

A fresh run starts from the official initialisation (:func:`stip_rt.nn.init.official_init`), with
``pretrained`` (ImageNet backbone) and ``weights`` loaded over it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import to_dict
from ..data.keypoints_dataset import KeypointsDataset, load_instances
from ..data.sampler import StepBatchSampler
from ..errors import ConfigError
from ..models import build_model
from ..nn.iap import get_iap_impl, set_iap_impl
from ..nn.init import official_init
from ..nn.stip import STIPNet
from ..schemas import get_schema
from . import distributed as dist_util
from .config import Progress, TrainConfig, TrainResult, check_config, check_images, official_sigma, resolve_spec
from .finetune import BACKBONE_PREFIXES, RESNET_BACKBONE_PREFIXES, load_finetune_weights, load_pretrained
from .loader import close_batches, next_batch, train_loader
from .logs import RunLog, TrainEvent
from .losses import hrnet_loss, stip_loss
from .state import (
    FORMAT,
    apply_schedule,
    check_same_model,
    load_resume_state,
    load_training_checkpoint,
    model_record,
    rng_state,
    save_atomic,
    set_aside_outputs,
    set_rng_state,
)
from .validate import check_val_set, metric_names, validate

__all__ = ["Progress", "TrainConfig", "TrainResult", "resolve_spec", "train", "train_loader"]  # .config, .loader

log = logging.getLogger(__name__)

#: Settings whose change between an interrupted and a resumed run breaks exact reproduction.
_EXACT_KEYS = ("batch_size", "accumulate", "seed", "lr", "milestones", "gamma", "sigma", "amp", "augment", "loss")


def _float_outputs(obj: Any) -> Any:
    """Outputs in float32 (losses run outside autocast: BCE is unsafe in half precision)."""
    if isinstance(obj, torch.Tensor):
        return obj.float()
    if isinstance(obj, dict):
        return {k: _float_outputs(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_float_outputs(v) for v in obj]
    return obj


def train(config: TrainConfig, progress: Progress | None = None, stop: threading.Event | None = None) -> TrainResult:
    """Train (one process, or this rank of a ``torchrun`` job).

    Args:
        config: the run.
        progress: called on rank 0 with every :class:`TrainEvent`.
        stop: when set (e.g. by a SIGTERM handler), the run writes ``checkpoint.pth`` after the
            current optimiser step and returns with ``stopped=True``; ``resume`` then continues exactly.

    Raises:
        ConfigError / DataError / WeightsError: bad settings, data or checkpoints.
    """
    info, device = dist_util.init_distributed(config.device)
    old_impl = get_iap_impl()
    try:
        check_config(config, device)
        if config.iap_impl != "auto":  # process-wide: the CUDA backward runs on autograd's own threads
            set_iap_impl(config.iap_impl)
        return _Run(config, info, device, progress, stop or threading.Event()).run()
    finally:
        set_iap_impl(old_impl)
        dist_util.shutdown(info)


class _Run:
    """One training run's state (model, optimiser, data, logs) and loop."""

    def __init__(self, config: TrainConfig, info: dist_util.DistInfo, device: str, progress: Progress | None,
                 stop: threading.Event) -> None:
        self.config, self.info, self.device, self.stop = config, info, device, stop
        self.progress = progress if info.is_main else None
        self.spec = resolve_spec(config)
        if config.val.ann:  # what the metric needs, now: not after the first epochs of training
            check_val_set(config.val, self.spec)
        schema = get_schema(self.spec.schema)
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        instances = load_instances(config.train_ann, config.train_images, schema, self.spec.aspect_ratio,
                                   self.spec.box_padding)
        if not instances:
            raise ConfigError(f"train_ann {config.train_ann}: no annotated person to train on")
        check_images((i.image for i in instances), config.train_ann)  # not at the step that first reads one
        sigma = config.sigma or official_sigma(self.spec)
        self.dataset = KeypointsDataset(instances, schema, self.spec.input_size, self.spec.heatmap_size, sigma,
                                        train=True, augment=config.augment, seed=config.seed)
        self.sampler = StepBatchSampler(len(self.dataset), config.batch_size, info.world_size, info.rank,
                                        config.accumulate, config.seed)
        self.loader_gen = torch.Generator()
        self.loader = train_loader(self.dataset, self.sampler, config.workers, device.startswith("cuda"),
                                   self.loader_gen)
        torch.manual_seed(config.seed)  # the same initialisation on every rank
        self.model = build_model(self.spec).to(device).train()
        if isinstance(self.model, STIPNet):  # spec.arch "stip"
            self.model.final_layer.requires_grad_(False)  # never used (kept for official checkpoints); DDP: frozen
            self.model.fused_train = config.fused_iap
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stub lacks it
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.milestones), config.gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16")
        self.ckpt = self.out / "checkpoint.pth"
        self.epoch, self.epoch_step, self.step = 0, 0, 0
        self.sums: dict[str, float] = {}  # loss sums of the current epoch (for its CSV row)
        self.best: dict[str, Any] = {"value": -math.inf, "epoch": -1}
        resumed = config.resume and self.ckpt.exists() and self._resume()
        if not resumed:
            self._start_weights()
        if self.spec.arch == "stip":
            self.loss_fn: Callable = lambda o, t: stip_loss(o, t, config.loss)
        else:
            self.loss_fn = hrnet_loss
        self.net: Any = self.model
        if info.distributed:
            ids = [torch.device(device).index] if device.startswith("cuda") else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if config.compile:
            self.net = torch.compile(self.net)
        self.val_names = metric_names(self.spec) if config.val.ann else ()
        self.runlog = None
        if info.is_main:
            if not resumed:
                self._set_aside()
            terms = ("pose", "sp_pose", "mask", "semantics", "kernel") if self.spec.arch == "stip" else ("pose",)
            self.runlog = RunLog(self.out, terms, self.val_names, config.tensorboard,
                                 epochs_done=self.epoch if resumed else None)
        log.info("training %s (%s, %d keypoints) on %d people: global batch %d = %d per micro-batch × %d "
                 "process(es) × %d accumulation, %d steps per epoch, amp %s, fused IaP %s, %s",
                 self.spec.name, self.spec.arch, schema.num_keypoints, len(self.dataset), self.sampler.global_batch,
                 config.batch_size, info.world_size, config.accumulate, self.sampler.steps_per_epoch, config.amp,
                 config.fused_iap and self.spec.arch == "stip", device)

    # -- state -----------------------------------------------------------------------------------
    def _start_weights(self) -> None:
        """Official initialisation (the same on every rank), then ``pretrained`` and ``weights`` over it."""
        torch.manual_seed(self.config.seed)
        official_init(self.model)
        torch.manual_seed(self.config.seed + self.info.rank)  # per-rank seeding of whatever draws at random
        random.seed(self.config.seed + self.info.rank)
        np.random.seed(self.config.seed + self.info.rank)
        if self.config.pretrained:
            resnet = self.spec.arch == "simplebaseline"
            load_pretrained(self.model, self.config.pretrained,
                            RESNET_BACKBONE_PREFIXES if resnet else BACKBONE_PREFIXES)
        if self.config.weights:
            load_finetune_weights(self.model, self.config.weights, self.spec.num_joints)

    def _set_aside(self) -> None:
        """A fresh run in a folder with another run's files: move them to ``previous-N/`` (rank 0)."""
        moved = set_aside_outputs(self.out)
        if moved is not None:
            log.warning("%s holds an earlier run and this one starts over: moved its files to %s", self.out, moved)

    def _resume(self) -> bool:
        state = load_training_checkpoint(self.ckpt)
        check_same_model(state, self.spec, self.ckpt)
        load_resume_state(self.model, state["state_dict"], "model", self.ckpt)
        load_resume_state(self.optimizer, state["optimizer"], "optimizer", self.ckpt)
        load_resume_state(self.scheduler, state["scheduler"], "scheduler", self.ckpt)
        c = self.config
        lr = apply_schedule(self.optimizer, self.scheduler, c.lr, c.milestones, c.gamma)
        if lr is not None:
            log.info("resuming with lr %g, milestones %s, gamma %g: lr %g at epoch %d", c.lr, list(c.milestones),
                     c.gamma, lr, self.scheduler.last_epoch + 1)
        if state.get("scaler"):
            load_resume_state(self.scaler, state["scaler"], "gradient scaler", self.ckpt)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.epoch_step = int(state.get("epoch_step", 0))
        self.sums = dict(state.get("epoch_sums", {}))
        self.best = dict(state.get("best", self.best))
        rngs = state.get("rng") or []
        if len(rngs) == self.info.world_size:
            set_rng_state(rngs[self.info.rank])
        else:
            log.warning("%s: RNG states of %d process(es), this run has %d: not restored", self.ckpt, len(rngs),
                        self.info.world_size)
        old, new = state.get("config", {}), to_dict(self.config)
        changed = [k for k in _EXACT_KEYS if k in old and old[k] != new[k]]
        if changed:
            log.warning("resuming with changed settings %s: the run will not reproduce the uninterrupted one", changed)
        if self.config.weights:
            log.info("resuming: --weights %s is not loaded (the checkpoint's weights are)", self.config.weights)
        log.info("resumed from %s at epoch %d, step %d of it (%d in total)", self.ckpt, self.epoch, self.epoch_step,
                 self.step)
        return True

    def _save_checkpoint(self) -> None:
        rngs = dist_util.gather(rng_state(), self.info)  # a collective: every rank calls it
        if self.info.is_main:
            save_atomic({"format": FORMAT, "epoch": self.epoch, "epoch_step": self.epoch_step, "step": self.step,
                         "epoch_sums": self.sums, "state_dict": self.model.state_dict(),
                         "optimizer": self.optimizer.state_dict(),
                         "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                         "rng": rngs, "best": self.best, "config": to_dict(self.config),
                         **model_record(self.spec)}, self.ckpt)
            self._emit(TrainEvent("checkpoint", self.epoch, self.step, self.epoch_step, path=str(self.ckpt)))

    def _save_model(self, name: str, extra: dict[str, Any] | None = None) -> Path:
        return save_atomic({"state_dict": self.model.state_dict(), **model_record(self.spec), **(extra or {})},
                           self.out / name)

    def _emit(self, event: TrainEvent) -> None:
        if self.progress is not None:
            self.progress(event)

    # -- loop ------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        c = self.config
        if c.max_steps and self.step >= c.max_steps:
            return self._already_done()
        while self.epoch < c.epochs:
            self.sampler.set_epoch(self.epoch, self.epoch_step)
            self.dataset.epoch = self.epoch
            self.loader_gen.manual_seed(c.seed * 100_003 + self.epoch * 101 + self.info.rank)
            batches = iter(self.loader)
            try:
                ended = self._epoch_steps(batches)
            finally:  # workers end now, also on an error (loader.py: a worker's error left them waiting)
                close_batches(batches)
            if ended is not None:
                return ended
            self._end_epoch()
            if c.max_steps and self.step >= c.max_steps:
                break
        return self._finish()

    def _epoch_steps(self, batches: Any) -> TrainResult | None:
        """The rest of the epoch's steps; the run's result when it ends within the epoch (stop, ``max_steps``)."""
        c = self.config
        while self.epoch_step < self.sampler.steps_per_epoch:
            loss, terms = self._optimiser_step(batches)
            self.step += 1
            self.epoch_step += 1
            for k, v in {"loss": loss, **terms}.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            lr = self.optimizer.param_groups[0]["lr"]
            event = TrainEvent("step", self.epoch, self.step, self.epoch_step, self.sampler.steps_per_epoch, loss,
                               terms, lr)
            if self.runlog is not None:
                self.runlog.step(event)
            self._emit(event)
            at_max = bool(c.max_steps) and self.step >= c.max_steps
            if dist_util.any_rank(self.stop.is_set(), self.info, self.device) or (
                    at_max and self.epoch_step < self.sampler.steps_per_epoch):
                self._save_checkpoint()
                if not at_max:
                    log.warning("stop requested: wrote %s at epoch %d, step %d; resume to continue", self.ckpt,
                                self.epoch, self.epoch_step)
                    return self._result(stopped=True)
                return self._finish()
        return None

    def _optimiser_step(self, batches: Any) -> tuple[float, dict[str, float]]:
        c, dev = self.config, self.device
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(c.amp)
        autocast = torch.autocast(torch.device(dev).type, dtype=amp_dtype or torch.float32, enabled=bool(amp_dtype))
        self.optimizer.zero_grad(set_to_none=True)
        total, terms_sum = 0.0, dict[str, float]()
        for a in range(c.accumulate):
            images, targets = next_batch(batches)
            images = images.to(dev, non_blocking=True)
            if c.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = {k: v.to(dev, non_blocking=True) for k, v in targets.items()}
            sync = a == c.accumulate - 1 or not self.info.distributed
            with contextlib.nullcontext() if sync else self.net.no_sync():
                with autocast:
                    outputs = self.net(images)
                loss, terms = self.loss_fn(_float_outputs(outputs) if amp_dtype else outputs, targets)
                self.scaler.scale(loss / c.accumulate).backward()
            total += float(loss.detach()) / c.accumulate
            for k, v in terms.items():
                terms_sum[k] = terms_sum.get(k, 0.0) + v / c.accumulate
        self.scaler.step(self.optimizer)
        self.scaler.update()
        values = dist_util.all_mean([total, *terms_sum.values()], self.info, dev)
        if not math.isfinite(values[0]):
            raise ConfigError(f"training diverged at epoch {self.epoch}, step {self.step + 1}: loss {values[0]}")
        return values[0], dict(zip(terms_sum, values[1:]))

    def _end_epoch(self) -> None:
        c, n = self.config, max(1, self.epoch_step)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        means = {k: v / n for k, v in self.sums.items()}
        event = TrainEvent("epoch", self.epoch, self.step, self.epoch_step, self.sampler.steps_per_epoch,
                           means.pop("loss", float("nan")), means, lr)
        metrics: dict[str, float] = {}
        last = self.epoch + 1 == c.epochs or (c.max_steps and self.step >= c.max_steps)
        if c.val.ann and ((self.epoch + 1) % c.val.every == 0 or last):
            if self.info.is_main:
                metrics = validate(self.model, self.spec, c.val, self.device)
                value = metrics.get(c.val.metric, -math.inf)
                if value > self.best["value"]:
                    self.best = {"value": value, "epoch": self.epoch + 1, "metric": c.val.metric}
                    self._save_model("best.pth", {"epoch": self.epoch + 1, "metrics": metrics})
                    log.info("new best %s %.4f at epoch %d: wrote best.pth", c.val.metric, value, self.epoch + 1)
            self.best = dist_util.gather(self.best, self.info)[0]
        if self.runlog is not None:
            self.runlog.epoch(event, metrics)
        self._emit(event)
        if metrics:
            self._emit(TrainEvent("val", self.epoch, self.step, metrics=metrics))
        log.info("epoch %d done (step %d, loss %.5f, lr %.2e)", self.epoch + 1, self.step, event.loss, lr)
        self.epoch += 1
        self.epoch_step = 0
        self.sums = {}
        self._save_checkpoint()

    def _finish(self) -> TrainResult:
        final = model = None
        if self.info.is_main:
            final = save_atomic(self.model.state_dict(), self.out / "final_state.pth")
            model = self._save_model("model.pth", {"epoch": self.epoch, "step": self.step})
        dist_util.barrier(self.info)
        return self._result(final=final, model=model)

    def _already_done(self) -> TrainResult:
        """A rerun of a run that reached ``max_steps``: nothing to train, nothing rewritten."""
        log.warning("max_steps %d already reached (%s is at step %d): nothing to do; raise --max-steps to go on",
                    self.config.max_steps, self.ckpt, self.step)
        final, model = self.out / "final_state.pth", self.out / "model.pth"
        return self._result(final if final.exists() else None, model if model.exists() else None)

    def _result(self, final: Path | None = None, model: Path | None = None, stopped: bool = False) -> TrainResult:
        if self.runlog is not None:
            self.runlog.close()
        best = self.out / "best.pth"
        return TrainResult(final, model, self.ckpt, best if best.exists() else None, self.step, stopped)
