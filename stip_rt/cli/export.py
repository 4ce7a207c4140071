"""``stip-rt export``: a pose model to ONNX (standard or plugin flavour) or a TensorRT engine."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models import build_model
    from ..runtime.onnx_export import ExportConfig, export_onnx

    if args.model is None and args.weights is None:
        raise ConfigError("export: give --model (zoo name, YAML, or a stip-rt train checkpoint) or --weights")
    # a `stip-rt train` checkpoint records its model config: --model may be left out
    model = build_model(args.model or args.weights, weights=args.weights).eval()
    if args.format == "onnx":
        path = export_onnx(model, args.out, ExportConfig(flavour=args.flavour, fp16=args.fp16, opset=args.opset))
        print(f"wrote {path} ({args.flavour} flavour{', fp16' if args.fp16 else ''})")
        return 0
    from ..runtime.engine_cache import onnx_cache_dir
    from ..runtime.tensorrt_backend import TensorRTConfig, build_engine, import_tensorrt

    import_tensorrt()  # one clear error before a long export
    lo, opt, hi = (int(v) for v in args.profile.split(","))
    config = TensorRTConfig(profile=(lo, opt, hi), plugin=args.flavour == "plugin")
    onnx_path = export_onnx(
        model,
        onnx_cache_dir() / f"{Path(args.out).stem}.{args.flavour}.fp16.onnx",
        ExportConfig(flavour=args.flavour, fp16=True, opset=args.opset),
    )
    plan = build_engine(onnx_path, config, plugin=config.plugin, progress=_progress())
    Path(args.out).write_bytes(plan)
    print(f"wrote {args.out} (TensorRT engine, {args.flavour} flavour, profile {args.profile})")
    return 0


def _progress():
    """Print build phases on stderr (one line per phase)."""
    import sys

    def report(phase: str, done: int, total: int) -> None:
        if done == 0 or done == total:
            print(f"  {phase}: {'start' if done == 0 else 'done'} ({total} steps)", file=sys.stderr)

    return report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a pose model to ONNX or a TensorRT engine")
    p.add_argument("-m", "--model", help="zoo name (e.g. stip-w32-coco-256x192), model YAML/JSON path, or a "
                   "stip-rt train checkpoint (its recorded model; default: the one --weights records)")
    p.add_argument("-w", "--weights", default=None, help="checkpoint to load (default: random weights)")
    p.add_argument("--format", choices=("onnx", "engine"), default="onnx")
    p.add_argument(
        "--flavour",
        choices=("standard", "plugin"),
        default="standard",
        help="standard: IaP in standard ops (ONNX Runtime); plugin: one stip_rt::IaP node (TensorRT)",
    )
    p.add_argument(
        "--fp16",
        action="store_true",
        help="float16 graph with float32 inputs/outputs (ONNX only; engines are always built from an fp16 graph)",
    )
    p.add_argument("--opset", type=int, default=20)
    p.add_argument("--profile", default="1,8,64", help="engine batch profile min,opt,max")
    p.add_argument("--out", required=True, help="output file (.onnx or .engine)")
    p.set_defaults(func=run)
