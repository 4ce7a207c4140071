"""``stip-rt bench``: crops/s of each backend and batch size on one model, with ratio lines."""

from __future__ import annotations

import argparse

from ..errors import ConfigError


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} '{text}': expected comma-separated integers, e.g. 1,8,32,64") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{flag} '{text}': expected positive integers")
    return values


def run(args: argparse.Namespace) -> int:
    import platform

    import torch

    from ..errors import did_you_mean
    from ..models import build_model
    from ..runtime.bench import bench_backends, ratio_lines
    from ..runtime.factory import BACKENDS

    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in names:
        if b not in BACKENDS or b == "auto":
            raise ConfigError(f"--backends: unknown backend '{b}'{did_you_mean(b, BACKENDS[1:])}")
    batches = _ints(args.batch, "--batch")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # fixed random weights: the ONNX export cache is reused across runs
    model = build_model(args.model, weights=args.weights).eval()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(
        f"model {model.spec.name}, input {model.spec.input_size}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads, {gpu}"
    )
    from ..runtime.onnxruntime_backend import OrtConfig

    ort = OrtConfig(intra_op_threads=args.ort_threads, graph_optimization=args.ort_opt)
    results = bench_backends(
        model, names, batches, device=args.device, min_seconds=args.seconds, configs={"onnxruntime": ort}
    )
    described = set()
    for r in results:
        if r.crops_per_s is None:
            if r.backend not in described:
                print(f"{r.backend:<12} {r.description}")
                described.add(r.backend)
            continue
        if r.backend not in described:
            print(f"{r.backend:<12} {r.description}")
            described.add(r.backend)
        print(f"{r.backend:<12} batch {r.batch:>3}: {r.crops_per_s:9.1f} crops/s  {r.ms_per_batch:9.2f} ms/batch")
    for line in ratio_lines(results, baseline=names[0]):
        print(line)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="throughput of inference backends (crops/s)")
    p.add_argument(
        "--backends",
        default="torch,cuda-fast,onnxruntime,tensorrt",
        help="comma-separated; the first is the baseline of the ratio lines",
    )
    p.add_argument("--batch", default="1,8,32,64", help="comma-separated batch sizes")
    p.add_argument("-m", "--model", default="stip-w32-coco-256x192", help="zoo name or model YAML/JSON path")
    p.add_argument(
        "-w", "--weights", default=None, help="checkpoint (default: random weights; speed does not depend on them)"
    )
    p.add_argument("--device", default="auto", help="device for torch/cuda-fast/tensorrt (auto, cpu, cuda)")
    p.add_argument("--seconds", type=float, default=2.0, help="time budget per backend and batch")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    p.add_argument("--ort-threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: one per core)")
    p.add_argument(
        "--ort-opt",
        default="all",
        choices=("disable", "basic", "extended", "all"),
        help="ONNX Runtime graph optimisation level",
    )
    p.set_defaults(func=run)
