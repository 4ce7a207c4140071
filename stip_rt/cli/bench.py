"""``stip-rt bench``: crops/s of each backend variant, batch size and model, with ratio lines."""

from __future__ import annotations

import argparse
import math
import re

from ..errors import ConfigError, did_you_mean
from ..runtime.config import DEVICES


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} '{text}': expected comma-separated integers, e.g. 1,8,32,64") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{flag} '{text}': expected positive integers")
    return values


def _models(values: list[str] | None) -> list[str]:
    names = [m.strip() for v in (values or ["stip-w32-coco-256x192"]) for m in v.split(",") if m.strip()]
    if not names:
        raise ConfigError("--model: expected at least one model name or file")
    return list(dict.fromkeys(names))


def _check_numbers(args: argparse.Namespace) -> None:
    """Refuse thread counts, time budgets and devices that cannot be meant, before any work."""
    for flag, value in (("--threads", args.threads), ("--ort-threads", args.ort_threads)):
        if value < 0:
            raise ConfigError(f"{flag} {value}: expected 0 (the default) or a positive number of threads")
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise ConfigError(f"--seconds {args.seconds:g}: expected a positive number of seconds")
    if args.device not in DEVICES and not re.fullmatch(r"cuda:\d+", args.device):
        raise ConfigError(
            f"--device {args.device!r}: use {', '.join(DEVICES)} or cuda:N{did_you_mean(args.device, DEVICES)}"
        )


def run(args: argparse.Namespace) -> int:
    import platform

    import torch

    from ..errors import BackendError
    from ..models import build_model, load_spec
    from ..runtime.bench import bench_backends, fold_ratio_lines, model_ratio_lines, parse_variant, ratio_lines
    from ..runtime.factory import BACKENDS
    from ..weights import checkpoint_arg

    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not names:
        raise ConfigError(f"--backends {args.backends!r}: expected at least one backend, e.g. torch,onnxruntime")
    for b in names:
        try:
            v = parse_variant(b)
        except BackendError as e:
            raise ConfigError(f"--backends: {e}") from None
        if v.backend not in BACKENDS or v.backend == "auto":
            raise ConfigError(f"--backends: unknown backend '{v.backend}'{did_you_mean(v.backend, BACKENDS[1:])}")
    batches = _ints(args.batch, "--batch")
    _check_numbers(args)
    _, checkpoint = checkpoint_arg(args.weights)  # None: random weights (also for 'random')
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..runtime.onnxruntime_backend import OrtConfig

    ort = OrtConfig(intra_op_threads=args.ort_threads, graph_optimization=args.ort_opt)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    by_model = {}
    width = max(12, *(len(n) for n in names))
    for name in _models(args.model):
        torch.manual_seed(0)  # fixed random weights: the ONNX export cache is reused across runs
        spec = load_spec(name)
        model = build_model(spec, weights=checkpoint).eval()
        print(
            f"model {spec.name}, input {spec.input_size}, torch {torch.__version__}, "
            f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads, {gpu}"
        )
        results = bench_backends(
            model, names, batches, device=args.device, min_seconds=args.seconds, configs={"onnxruntime": ort}
        )
        by_model[spec.name] = results
        described = set()
        for r in results:
            if r.backend not in described:
                print(f"{r.backend:<{width}} {r.description}")
                described.add(r.backend)
            if r.crops_per_s is None:
                continue
            speed = f"{r.crops_per_s:9.1f} crops/s  {r.ms_per_batch:9.2f} ms/batch"
            print(f"{r.backend:<{width}} batch {r.batch:>3}: {speed}")
        for line in ratio_lines(results, baseline=names[0]) + fold_ratio_lines(results):
            print(f"{line}  [{spec.name}]")
        measured = {r.backend for r in results if r.crops_per_s is not None}
        if names[0] not in measured and measured:
            print(
                f"no ratio lines against {names[0]}: it was skipped (above); the first of --backends is the "
                f"baseline, put one that runs here first  [{spec.name}]"
            )
    for line in model_ratio_lines(by_model):
        print(line)
    if not any(r.crops_per_s is not None for results in by_model.values() for r in results):
        raise BackendError(f"nothing was measured: every backend was skipped on device {args.device} (reasons above)")
    return 0


_EXAMPLES = """examples:
  stip-rt bench --backends torch,onnxruntime --batch 1,8 --seconds 1        # CPU
  stip-rt bench --backends torch,cuda-fast,tensorrt --model stip-w32-coco-256x192 --model hrnet-w32-coco-256x192

A backend that cannot run here is listed as skipped, with the reason; ratio lines compare each
backend with the first one (the baseline), each model with the first model."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="throughput of inference backends (crops/s)",
        description="Crops/s and ms per batch of each backend variant, batch size and model, with ratio lines.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--backends",
        default="torch,cuda-fast,onnxruntime,tensorrt",
        help="comma-separated backend variants "
        "<backend>[+unfolded][+unfused][+compile][+branches][+cudnn-benchmark][+fp16|bf16|fp32] "
        "(e.g. torch,torch+unfolded,cuda-fast,cuda-fast+compile); the first is the baseline of the ratio lines "
        "(default: %(default)s)",
    )
    p.add_argument("--batch", default="1,8,32,64", help="comma-separated batch sizes (default: %(default)s)")
    p.add_argument(
        "-m",
        "--model",
        action="append",
        default=None,
        help="zoo name or model YAML/JSON path; repeat it or give a comma list to compare models "
        "(time ratio lines: first model / each other; default stip-w32-coco-256x192)",
    )
    p.add_argument(
        "-w",
        "--weights",
        default=None,
        help="checkpoint, or 'random' (default: random weights; speed does not depend on them)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="device for torch/cuda-fast/tensorrt: auto, cpu, cuda, cuda:N (default: %(default)s)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="time budget per backend and batch, seconds > 0 (default: %(default)s)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    p.add_argument("--ort-threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: one per core)")
    p.add_argument(
        "--ort-opt",
        default="all",
        choices=("disable", "basic", "extended", "all"),
        help="ONNX Runtime graph optimisation level (default: %(default)s)",
    )
    p.set_defaults(func=run)
