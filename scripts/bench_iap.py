"""Benchmark the fused IaP op against the official materialising form, in one run.

Eager (official, STIP_SPEC §1.4 steps 15-18): ``Kd = conv1x1(up(Q))`` reshaped to
N×K×C×H×W, ``Y = mean_c(Kd · G)``. Fused: ``iap(Q, G, W, b, upsample=True)`` through the
implementation ``auto`` picks on the device (or ``--impl``). Both get Q at (H/2, W/2) and G
at (H, W), as in STIPNet's inference forward.

Time: median of ``torch.utils.benchmark.Timer.blocked_autorange`` (CUDA synchronised).
Peak extra memory of one call, inputs excluded and outputs included:
* CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the call;
* CPU: the torch profiler's allocator events (``profile_memory=True``) replayed in time
  order; the peak of the running sum of allocated minus freed bytes. This counts every
  tensor torch allocates (what RSS deltas would blur with allocator caching), not Python
  objects.

The last line is ``iap: memory_ratio=<eager/fused> speed_ratio=<eager/fused> device=<...>``
for the forward pass at the largest batch.

Usage: python scripts/bench_iap.py [--device cpu|cuda] [--batch 1,8,32,64] [--joints 17] [--channels 32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from stip_rt.nn.iap import IAP_IMPLS, iap, use_iap_impl
from stip_rt.runtime.profile import peak_bytes


def eager_iap(q: torch.Tensor, g: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The official form: upsample, generate N×K×C×H×W kernels, multiply, mean over C."""
    n, c, h, w = g.shape
    kernels = F.conv2d(
        F.interpolate(q, scale_factor=2, mode="bilinear", align_corners=False), weight.reshape(-1, c, 1, 1), bias
    )
    return torch.mean(kernels.reshape(n, -1, c, h, w) * g.unsqueeze(1), dim=2)


def _seconds(fn: Callable[[], object], min_run_time: float) -> float:
    """Median seconds per call."""
    fn()  # warm-up (autotuning, allocator)
    return Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def _case(n: int, args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """Times and peaks of eager and fused, forward and forward+backward, for batch ``n``."""
    c, k, h, w = args.channels, args.joints, args.height, args.width
    gen = torch.Generator().manual_seed(n)
    q = torch.randn(n, c, h // 2, w // 2, generator=gen).to(device, dtype)
    g = torch.randn(n, c, h, w, generator=gen).to(device, dtype)
    weight = (torch.randn(k * c, c, generator=gen) / c**0.5).to(device, dtype)
    bias = torch.randn(k * c, generator=gen).to(device, dtype)
    dy = torch.randn(n, k, h, w, generator=gen).to(device, dtype)

    def fused(*a: torch.Tensor) -> torch.Tensor:
        return iap(*a, upsample=True)

    def fwd(op: Callable[..., torch.Tensor]) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return op(q, g, weight, bias)

        return run

    def fwd_bwd(op: Callable[..., torch.Tensor]) -> Callable[[], object]:
        def run() -> object:
            leaves = [t.detach().requires_grad_() for t in (q, g, weight, bias)]
            return torch.autograd.grad(op(*leaves), leaves, dy)

        return run

    res = {}
    with use_iap_impl(args.impl):
        for name, op in (("eager", eager_iap), ("fused", fused)):
            res[f"{name}_fwd_s"] = _seconds(fwd(op), args.min_run_time)
            res[f"{name}_fwdbwd_s"] = _seconds(fwd_bwd(op), args.min_run_time)
            res[f"{name}_fwd_b"] = statistics.median(peak_bytes(fwd(op), device) for _ in range(3))
            res[f"{name}_fwdbwd_b"] = statistics.median(peak_bytes(fwd_bwd(op), device) for _ in range(3))
        with torch.no_grad():
            err = (fused(q, g, weight, bias).float() - eager_iap(q, g, weight, bias).float()).abs().max().item()
    res["max_abs_diff"] = err
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table and the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", default=None, help="comma-separated batch sizes (default: cpu 1,8; cuda 1,8,32,64)")
    parser.add_argument("--joints", type=int, default=17)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--height", type=int, default=128, help="heatmap height (G); Q is half")
    parser.add_argument("--width", type=int, default=96, help="heatmap width (G); Q is half")
    parser.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default=None,
        help="default: float32 on cpu, float16 on cuda",
    )
    parser.add_argument("--impl", choices=IAP_IMPLS, default="auto", help="fused implementation")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds of timing per measurement")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_iap: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("float16" if args.device == "cuda" else "float32"))
    batches = [int(b) for b in (args.batch or ("1,8,32,64" if args.device == "cuda" else "1,8")).split(",")]
    if args.device == "cuda":
        name = torch.cuda.get_device_name(device).replace(" ", "_")
    else:
        name = f"cpu({torch.get_num_threads()}threads)"
    print(
        f"IaP benchmark: device={name} dtype={args.dtype or dtype} impl={args.impl} K={args.joints} "
        f"C={args.channels} G={args.height}x{args.width} Q={args.height // 2}x{args.width // 2} "
        f"torch={torch.__version__}"
    )
    print(
        f"{'batch':>5} | {'fwd ms eager/fused (x)':>26} | {'fwd+bwd ms eager/fused (x)':>28} | "
        f"{'fwd MB eager/fused (x)':>26} | {'fwd+bwd MB eager/fused (x)':>28} | max|diff|"
    )
    for n in batches:
        r = _case(n, args, device, dtype)
        cells = []
        for key, scale in (("fwd_s", 1e3), ("fwdbwd_s", 1e3), ("fwd_b", 1 / 2**20), ("fwdbwd_b", 1 / 2**20)):
            e, f = r[f"eager_{key}"] * scale, r[f"fused_{key}"] * scale
            cells.append(f"{e:9.2f} / {f:8.2f} ({e / max(f, 1e-12):5.1f})")
        print(f"{n:>5} | " + " | ".join(cells) + f" | {r['max_abs_diff']:.1e}")
    mem = r["eager_fwd_b"] / max(r["fused_fwd_b"], 1)
    speed = r["eager_fwd_s"] / r["fused_fwd_s"]
    print(f"iap: memory_ratio={mem:.1f} speed_ratio={speed:.2f} device={name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
