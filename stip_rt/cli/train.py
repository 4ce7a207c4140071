"""``stip-rt train``: train STIP or HRNet on COCO / CrowdPose with the official recipe."""

from __future__ import annotations

import argparse
import logging
import sys

from ..config import apply_overrides, from_dict, to_dict


def run(args: argparse.Namespace) -> int:
    from ..train.trainer import TrainConfig, train

    fields = {"model": args.model, "train_ann": args.train_ann, "train_images": args.train_images,
              "out_dir": args.out, "resume": not args.no_resume}
    for key in ("epochs", "batch_size", "lr", "workers", "device", "pretrained", "max_steps"):
        value = getattr(args, key)
        if value is not None:
            fields[key] = value
    config = from_dict(TrainConfig, apply_overrides(fields, args.set), "train config")
    if args.print_config:
        import yaml

        print(yaml.safe_dump(to_dict(config), sort_keys=False))
        return 0
    logging.getLogger("stip_rt").setLevel(logging.INFO)
    every = max(1, args.log_every)

    def on_step(step: int, loss: float, terms: dict[str, float]) -> None:
        if step % every == 0:
            detail = " ".join(f"{k}={v:.3g}" for k, v in terms.items())
            print(f"step {step}: loss {loss:.5f}  {detail}", file=sys.stderr, flush=True)

    final = train(config, on_step)
    print(final)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a pose model (official STIP recipe)",
                       description="Train STIP or the HRNet baseline on a COCO-format keypoint set.")
    p.add_argument("-m", "--model", required=True, help="architecture: zoo name (stip-w32-crowdpose-256x192) or YAML")
    p.add_argument("--train-ann", required=True, help="COCO-format keypoint annotations (COCO or CrowdPose)")
    p.add_argument("--train-images", required=True, help="image folder of the annotations")
    p.add_argument("--out", default="runs/train", help="output folder (checkpoint.pth, final_state.pth)")
    p.add_argument("--epochs", type=int, help="epochs (default 210)")
    p.add_argument("--batch-size", type=int, help="batch size (default 32)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--workers", type=int, help="data-loading processes (default 4)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--pretrained", help="ImageNet HRNet checkpoint for the backbone")
    p.add_argument("--max-steps", type=int, help="stop after N optimiser steps (smoke tests)")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT/checkpoint.pth exists")
    p.add_argument("--log-every", type=int, default=20, help="print the loss every N steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any TrainConfig field, e.g. --set augment.flip_prob=0 --set milestones=[90,120]")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    p.set_defaults(func=run)
