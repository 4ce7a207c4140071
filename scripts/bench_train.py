"""Benchmark one STIP training step: fp32 eager (the official way) against AMP + the fused IaP op, in one run.

Modes (same model, same synthetic batch, Adam step included):

* ``fp32-eager``: float32, the IaP kernels materialised (N×K×C×H×W) and differentiated by autograd;
* ``fp32-fused``: float32, the fused IaP op and its own backward;
* ``amp-fused``: autocast (bf16 on the CPU, ``--amp`` on CUDA: bf16 default, or fp16 with a gradient
  scaler) + the fused op + channels-last.

Time: median seconds of ``--steps`` timed steps after ``--warmup`` (CUDA synchronised) → images/s.
Peak memory of one step (inputs excluded): CUDA ``max_memory_allocated`` minus the allocation before
the step; CPU: the torch profiler's allocator events replayed in time order (as scripts/bench_iap.py).

The last line is ``train: speed_ratio=<amp-fused/fp32-eager images/s> memory_ratio=<amp-fused/fp32-eager
peak> device=<...>``.

Usage: python scripts/bench_train.py [--device cpu|cuda] [--batch 32] [--model stip-w32-coco-256x192]
       [--steps 5] [--warmup 2] [--amp bf16|fp16] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from stip_rt.models import build_model
from stip_rt.runtime.profile import peak_bytes
from stip_rt.train.losses import stip_loss
from stip_rt.train.trainer import _float_outputs


def _batch(model: torch.nn.Module, n: int, device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    spec = model.spec
    (h, w), (hh, hw), k = spec.input_size, spec.heatmap_size, spec.num_joints
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, h, w, generator=gen)
    targets = {
        "heatmap": torch.rand(n, k, hh, hw, generator=gen),
        "weight": torch.ones(n, k, 1),
        "mask": (torch.rand(n, 1, hh, hw, generator=gen) > 0.9).float(),
        "semantics": torch.ones(n, k),
    }
    return x.to(device), {key: v.to(device) for key, v in targets.items()}


def run_mode(mode: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """images/s and peak bytes of one training step in ``mode``."""
    torch.manual_seed(0)
    model = build_model(args.model).to(device).train()
    model.final_layer.requires_grad_(False)
    model.fused_train = mode != "fp32-eager"
    amp = mode == "amp-fused"
    dtype = torch.float16 if args.amp == "fp16" and device.type == "cuda" else torch.bfloat16
    if amp:
        model.to(memory_format=torch.channels_last)
    x, targets = _batch(model, args.batch, device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and dtype == torch.float16)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            out = model(x)
        loss, _ = stip_loss(_float_outputs(out) if amp else out, targets)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    peak = peak_bytes(step, device)
    return {"images_per_s": args.batch / statistics.median(times), "peak_bytes": peak}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--model", default="stip-w32-coco-256x192", help="a STIP model: zoo name or YAML")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--amp", choices=("bf16", "fp16"), default="bf16", help="autocast dtype on CUDA")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        where = f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    else:
        where = f"cpu ({torch.get_num_threads()} threads), torch {torch.__version__}"
    print(f"{args.model}, batch {args.batch}, {where}")
    results = {}
    for mode in ("fp32-eager", "fp32-fused", "amp-fused"):
        r = results[mode] = run_mode(mode, args, device)
        print(f"  {mode:<11} {r['images_per_s']:8.2f} images/s   peak {r['peak_bytes'] / 2**20:9.1f} MiB", flush=True)
    base, best = results["fp32-eager"], results["amp-fused"]
    speed = best["images_per_s"] / base["images_per_s"]
    memory = best["peak_bytes"] / max(base["peak_bytes"], 1)
    print(f"train: speed_ratio={speed:.2f} memory_ratio={memory:.2f} device={where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
