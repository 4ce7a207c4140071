"""Count what one inference call launches, before and after BatchNorm folding (issue 13, batch-1 latency).

Usage:
    python scripts/count_kernels.py [--model stip-w32-coco-256x192,hrnet-w32-coco-256x192]
        [--device cpu|cuda] [--batch 1] [--compile] [--times-batch 1,64]

CPU (or any device): the ATen ops of one eager forward of the served graph, unfolded vs folded
(:func:`stip_rt.runtime.profile.count_aten_ops`). CUDA: also the kernels of one ``cuda-fast``
``infer`` call (one graph replay, FP16) unfolded, folded, folded with cuDNN's conv+ReLU fusion,
and folded + ``torch.compile`` with ``--compile`` (:func:`stip_rt.runtime.profile.count_cuda_kernels`);
with ``--times-batch 1,64`` also the GPU time of one default ``cuda-fast`` replay at those batch
sizes, by kernel kind (:func:`stip_rt.runtime.profile.cuda_kernel_times`): where the time goes, and
with two models what one costs more than the other. Random weights. The last line per model is
``kernels: model=<name> device=<d> <variant>=<count> ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from stip_rt.models import build_model
from stip_rt.nn.fold import prepare_inference
from stip_rt.runtime.profile import count_aten_ops, count_cuda_kernels, cuda_kernel_times, summary_line, time_line


def _cuda_counts(
    model: torch.nn.Module, x: torch.Tensor, compile_too: bool, times_batches: list[int]
) -> tuple[dict[str, object], list[str]]:
    """Kernels of one replay per variant, and the default variant's GPU time by kernel kind at ``times_batches``."""
    from stip_rt.runtime.config import CudaFastConfig
    from stip_rt.runtime.cuda_fast import CudaFastBackend

    variants = {
        "replay_unfolded": CudaFastConfig(fold_bn=False, cudnn_fusion=False),
        "replay_folded": CudaFastConfig(cudnn_fusion=False),
        "replay_cudnn_fused": CudaFastConfig(),  # the default: folded + cuDNN conv+ReLU fusion
    }
    if compile_too:
        variants["replay_compiled"] = CudaFastConfig(compile=True, cudnn_fusion=False)
    out: dict[str, object] = {}
    times: list[str] = []
    for name, cfg in variants.items():
        backend = CudaFastBackend(model, device="cuda", config=cfg)
        out[name] = count_cuda_kernels(backend.infer, x)
        if cfg.cudnn_fusion:  # the default variant
            from stip_rt.nn.fuse import fusion_sites

            sites, refused = fusion_sites(backend.model)
            print(f"  cudnn fusion: {sites} sites, {len(refused)} refused by cuDNN {sorted(set(refused))}")
            for b in times_batches:  # the same backend: one more graph per batch size
                xb = torch.randn(b, *x.shape[1:], device="cuda")
                times.append(time_line(f"{name} batch {b}", cuda_kernel_times(backend.infer, xb)))
        del backend
        torch.cuda.empty_cache()
    return out, times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="stip-w32-coco-256x192", help="zoo names, comma-separated")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="CUDA: also count the torch.compile variant")
    ap.add_argument("--times-batch", default="", help="CUDA: GPU time by kernel kind of a replay at these batches")
    args = ap.parse_args(argv)
    try:
        times_batches = [int(b) for b in args.times_batch.split(",") if b.strip()]
    except ValueError:
        ap.error(f"--times-batch '{args.times_batch}': comma-separated batch sizes")
    logging.basicConfig(level=logging.WARNING)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but PyTorch sees no CUDA GPU", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    for name in [m.strip() for m in args.model.split(",") if m.strip()]:
        model = build_model(name).eval()
        h, w = model.spec.input_size
        x = torch.randn(args.batch, 3, h, w, device=args.device)
        counts: dict[str, object] = {}
        for fold in (False, True):
            net = prepare_inference(model, fold=fold).to(args.device)
            counts[f"aten_{'folded' if fold else 'unfolded'}"] = count_aten_ops(net, x)
        times: list[str] = []
        if args.device == "cuda":
            replays, times = _cuda_counts(model, x, args.compile, times_batches)
            counts.update(replays)
        print(f"{name} batch {args.batch} on {args.device}")
        for label, c in counts.items():
            print("  " + summary_line(label, c))
        for line in times:
            print("  " + line)
        totals = " ".join(f"{label}={sum(c.values())}" for label, c in counts.items())
        print(f"kernels: model={name} device={args.device} batch={args.batch} {totals}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
