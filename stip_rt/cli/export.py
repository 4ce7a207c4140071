"""``stip-rt export``: a pose model to ONNX (standard or plugin flavour) or a TensorRT engine.

Examples::

    stip-rt export --model stip-w32-coco-256x192 --format onnx        # → ./stip-w32-coco-256x192.onnx
    stip-rt export --model hrnet-w32-coco-256x192 --weights hrnet.pth --out hrnet.onnx
    stip-rt export --model stip-w32-coco-256x192 --format engine --flavour plugin

The weights are --weights, else the model's checkpoint in the weights cache (`stip-rt weights
fetch NAME` or `stip-rt weights import FILE --name NAME` puts it there; a corrupt one is an error),
else random weights, with a warning: such a file runs, but its keypoints are meaningless.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def default_out(model: str, fmt: str, flavour: str, fp16: bool) -> Path:
    """``<model name>[.plugin][.fp16].onnx`` (or ``.engine``) in the current folder."""
    config_or_checkpoint = Path(model).suffix.lower() in (".yaml", ".yml", ".json", ".pth", ".pt")
    stem = Path(model).stem if config_or_checkpoint else Path(model).name
    tags = (".plugin" if flavour == "plugin" else "") + (".fp16" if fp16 and fmt == "onnx" else "")
    return Path(f"{stem}{tags}.{fmt}")


def export_weights(model: str, weights: str | None) -> str | None:
    """The checkpoint to export: ``weights``, else the model's cached checkpoint, else None (random, with a warning).

    Raises:
        WeightsError: the cached checkpoint is corrupt.
    """
    from ..weights import RANDOM, weights_dir, weights_path
    from ..weights.manifest import import_command, load_zoo

    if weights == RANDOM:
        log.warning("--weights random: the exported network has random weights (its keypoints are meaningless)")
        return None
    if weights is not None:
        return weights
    zoo = load_zoo()
    if model in zoo:
        if (weights_dir() / zoo[model].file).is_file():  # a corrupt file is an error (as for track), never random
            path = str(weights_path(model, fetch=False))
            log.info("weights: %s (the weights cache)", path)
            return path
        get = f"`{import_command(model)}`" if zoo[model].manual else f"`stip-rt weights fetch {model}`"
        how = f"{get} (see `stip-rt weights list`), then export again"
    else:
        how = "pass --weights CHECKPOINT"
    log.warning(
        "no --weights and no cached weights for %s: exporting RANDOM weights (keypoints meaningless); "
        "pass --weights CHECKPOINT, or %s",
        model,
        how,
    )
    return None


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models import build_model
    from ..runtime.onnx_export import ExportConfig, export_onnx, supported_opsets

    if args.model is None and args.weights is None:
        raise ConfigError("export: give --model (zoo name, YAML, or a stip-rt train checkpoint) or --weights")
    opsets = supported_opsets()
    if args.opset not in opsets:
        raise ConfigError(f"--opset {args.opset}: expected {opsets[0]} to {opsets[-1]} (the opsets it writes)")
    # a `stip-rt train` checkpoint records its model config: --model may be left out
    model_arg = args.model or args.weights
    weights = export_weights(args.model, args.weights) if args.model else args.weights
    model = build_model(model_arg, weights=weights).eval()
    out = Path(args.out) if args.out else default_out(model_arg, args.format, args.flavour, args.fp16)
    if args.format == "onnx":
        path = export_onnx(model, out, ExportConfig(flavour=args.flavour, fp16=args.fp16, opset=args.opset))
        what = "random weights" if weights is None else f"weights {weights}"
        print(f"wrote {path} ({args.flavour} flavour{', fp16' if args.fp16 else ''}, {what})")
        return 0
    from ..runtime.engine_cache import onnx_cache_dir
    from ..runtime.tensorrt_backend import TensorRTConfig, build_engine, import_tensorrt

    import_tensorrt()  # one clear error before a long export
    lo, opt, hi = (int(v) for v in args.profile.split(","))
    config = TensorRTConfig(profile=(lo, opt, hi), plugin=args.flavour == "plugin")
    onnx_path = export_onnx(
        model,
        onnx_cache_dir() / f"{out.stem}.{args.flavour}.fp16.onnx",
        ExportConfig(flavour=args.flavour, fp16=True, opset=args.opset),
    )
    plan = build_engine(onnx_path, config, plugin=config.plugin, progress=_progress())
    out.write_bytes(plan)
    print(f"wrote {out} (TensorRT engine, {args.flavour} flavour, profile {args.profile})")
    return 0


def _progress():
    """Print build phases on stderr (one line per phase)."""
    import sys

    def report(phase: str, done: int, total: int) -> None:
        if done == 0 or done == total:
            print(f"  {phase}: {'start' if done == 0 else 'done'} ({total} steps)", file=sys.stderr)

    return report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a pose model to ONNX or a TensorRT engine",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-m",
        "--model",
        help="zoo name (e.g. stip-w32-coco-256x192), model YAML/JSON path, or a stip-rt train checkpoint "
        "(its recorded model; default: the one --weights records)",
    )
    p.add_argument(
        "-w",
        "--weights",
        default=None,
        help="checkpoint to load, or 'random' (default: the model's cached weights; else random, with a warning)",
    )
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
    p.add_argument("--opset", type=int, default=20, help="ONNX opset, 18 to the newest the installed onnx knows")
    p.add_argument("--profile", default="1,8,64", help="engine batch profile min,opt,max")
    p.add_argument(
        "--out",
        help="output file (.onnx or .engine; default: <model name>[.plugin][.fp16].onnx|.engine in the current folder)",
    )
    p.set_defaults(func=run)
