"""``stip-rt train``: train or fine-tune STIP / HRNet on COCO, CrowdPose or a custom keypoint set.

Several GPUs: ``torchrun --nproc_per_node 4 -m stip_rt.cli train ...`` (docs/training.md).
On SIGTERM the run writes ``OUT/checkpoint.pth`` after the current step and exits with 143;
running the same command again resumes exactly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from ..config import apply_overrides, from_dict, to_dict

STOPPED_EXIT = 128 + signal.SIGTERM  # 143, what a job killed by SIGTERM reports


def _progress_printer(every: int, file_handler: logging.Handler | None):
    """Progress events → a tqdm bar on a terminal; a line every ``every`` steps in OUT/train.log (and on
    stderr when it is not a terminal)."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    lines = logging.getLogger("stip_rt.progress")
    lines.propagate = False
    lines.setLevel(logging.INFO)
    if file_handler is not None:
        lines.addHandler(file_handler)
    if not tty:
        lines.addHandler(logging.StreamHandler(sys.stderr))
    bar: list = [None]

    def show(event) -> None:
        if event.kind == "step":
            if tty:
                if bar[0] is None:
                    bar[0] = tqdm(total=event.steps_per_epoch, initial=event.epoch_step - 1, unit="step",
                                  desc=f"epoch {event.epoch + 1}", leave=False)
                bar[0].update(1)
                bar[0].set_postfix(loss=f"{event.loss:.4g}")
            if event.step % every == 0:
                detail = " ".join(f"{k}={v:.3g}" for k, v in event.terms.items())
                lines.info(f"epoch {event.epoch + 1} step {event.epoch_step}/{event.steps_per_epoch} "
                           f"({event.step} total): loss {event.loss:.5f} lr {event.lr:.2e}  {detail}")
        elif event.kind == "epoch":
            if bar[0] is not None:
                bar[0].close()
                bar[0] = None
            lines.info(f"epoch {event.epoch + 1} done: mean loss {event.loss:.5f}")
        elif event.kind == "val":
            lines.info(f"epoch {event.epoch + 1} validation: "
                       + " ".join(f"{k} {v:.4f}" for k, v in event.metrics.items()))

    return show


def _logging(out: str, rank: int) -> logging.Handler | None:
    """INFO on rank 0 (stderr and OUT/train.log); warnings only on the other ranks."""
    logger = logging.getLogger("stip_rt")
    if rank != 0:
        logger.setLevel(logging.WARNING)
        return None
    logger.setLevel(logging.INFO)
    Path(out).mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(Path(out) / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return handler


def run(args: argparse.Namespace) -> int:
    from ..train.config import check_config
    from ..train.trainer import TrainConfig, resolve_spec, train

    fields = {"model": args.model, "train_ann": args.train_ann, "train_images": args.train_images,
              "out_dir": args.out, "resume": not args.no_resume}
    for key in ("epochs", "batch_size", "accumulate", "lr", "workers", "device", "pretrained", "weights", "schema",
                "max_steps", "amp", "seed"):
        value = getattr(args, key)
        if value is not None:
            fields[key] = value
    for key in ("channels_last", "compile"):
        if getattr(args, key):
            fields[key] = True
    if args.no_fused_iap:
        fields["fused_iap"] = False
    val = {k: getattr(args, f"val_{k}") for k in ("ann", "images", "detections", "every")}
    fields["val"] = {k: v for k, v in val.items() if v is not None}
    config = from_dict(TrainConfig, apply_overrides(fields, args.set), "train config")
    if args.print_config:
        import yaml

        print(yaml.safe_dump(to_dict(config), sort_keys=False))
        return 0
    check_config(config, config.device)  # before OUT and train.log exist: a bad input creates nothing
    resolve_spec(config)
    handler = _logging(config.out_dir, int(os.environ.get("RANK", "0")))
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        result = train(config, _progress_printer(max(1, args.log_every), handler), stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if handler is not None:
            logging.getLogger("stip_rt").removeHandler(handler)
            logging.getLogger("stip_rt.progress").handlers.clear()
            handler.close()
    if result.stopped:
        print(f"stopped: wrote {result.checkpoint}; run the same command again to resume", file=sys.stderr)
        return STOPPED_EXIT
    if result.model is not None:
        print(result.model)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune a pose model (official STIP recipe)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", required=True,
                   help="architecture: zoo name (stip-w32-crowdpose-256x192), model YAML, or a stip-rt checkpoint")
    p.add_argument("--train-ann", required=True, help="COCO-format keypoint annotations (COCO, CrowdPose, custom)")
    p.add_argument("--train-images", required=True, help="image folder of the annotations")
    p.add_argument("--out", default="runs/train", help="output folder (checkpoint.pth, best.pth, model.pth, log.csv)")
    p.add_argument("--schema", help="keypoint set: coco17, crowdpose14 or a keypoint-set YAML (default: the model's)")
    p.add_argument("--weights", help="checkpoint to fine-tune from (heads re-initialised when the keypoints differ)")
    p.add_argument("--pretrained", help="ImageNet checkpoint for the backbone (HRNet; ResNet for SimpleBaseline)")
    p.add_argument("--epochs", type=int, help="epochs (default 210)")
    p.add_argument("--batch-size", type=int, help="samples per micro-batch per process (default 32)")
    p.add_argument("--accumulate", type=int, help="micro-batches per optimiser step (default 1)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--workers", type=int, help="data-loading processes (default 4)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--seed", type=int, help="seed of initialisation, data order and augmentation (default 0)")
    p.add_argument("--amp", choices=("off", "bf16", "fp16"), help="mixed precision (fp16: CUDA only; default off)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--no-fused-iap", action="store_true", help="materialise the IaP kernels as the official code")
    g = p.add_argument_group("validation")
    g.add_argument("--val-ann", help="validation keypoint annotations (COCO format)")
    g.add_argument("--val-images", help="their image folder")
    g.add_argument("--val-detections", help="person boxes (COCO results); default: the ground-truth boxes")
    g.add_argument("--val-every", type=int, help="validate every N epochs (default 10, and after the last)")
    p.add_argument("--max-steps", type=int, help="stop after N optimiser steps in total (smoke tests)")
    p.add_argument("--no-resume", action="store_true",
                   help="start over even if OUT/checkpoint.pth exists (an earlier run's files move to OUT/previous-N)")
    p.add_argument("--log-every", type=int, default=20, help="print the loss every N steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any TrainConfig field, e.g. --set augment.flip_prob=0 --set milestones=[90,120]")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    p.set_defaults(func=run)
