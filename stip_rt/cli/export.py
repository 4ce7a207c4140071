"""``stip-rt export``: a pose model to ONNX (standard or plugin flavour) or a TensorRT engine.

Examples::

    stip-rt export --model stip-w32-coco-256x192 --format onnx        # → ./stip-w32-coco-256x192.onnx
    stip-rt export --model hrnet-w32-coco-256x192 --weights hrnet.pth --out hrnet.onnx
    stip-rt export --model stip-w32-coco-256x192 --format engine --flavour plugin
    stip-rt export --model models/my.yaml --weights last.pth --out exports/   # → exports/my.onnx

--out names the file (its folders are created; its extension, .onnx or .engine, sets --format),
or a folder (existing, or ending in /) for the default name inside it. The file is written under a
temp name and renamed into place, so a failed export leaves an existing file as it was; --out
cannot be the --model or --weights file. Random weights come from a fixed seed: the same file
every time, the network `stip-rt track --weights random` runs.

The weights are --weights, else the model's checkpoint in the weights cache (`stip-rt weights
fetch NAME` or `stip-rt weights import FILE --name NAME` puts it there; a corrupt one is an error),
else random weights, with a warning: such a file runs, but its keypoints are meaningless.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_ENGINE_SUFFIXES = (".engine", ".plan")


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
    how = ""
    if model in zoo:
        if (weights_dir() / zoo[model].file).is_file():  # a corrupt file is an error (as for track), never random
            path = str(weights_path(model, fetch=False))
            log.info("weights: %s (the weights cache)", path)
            return path
        get = f"`{import_command(model)}`" if zoo[model].manual else f"`stip-rt weights fetch {model}`"
        how = f", or {get} (see `stip-rt weights list`), then export again"
    log.warning(
        "no --weights and no cached weights for %s: exporting RANDOM weights (keypoints meaningless); "
        "pass --weights CHECKPOINT%s",
        model,
        how,
    )
    return None


def _profile(text: str) -> tuple[int, int, int]:
    """``min,opt,max`` of ``--profile`` as three integers with 1 <= min <= opt <= max.

    Raises:
        ConfigError: anything else.
    """
    from ..errors import ConfigError

    try:
        lo, opt, hi = (int(v) for v in text.split(","))
    except ValueError:
        lo = opt = hi = 0
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(f"--profile {text!r}: expected three batch sizes min,opt,max with 1 <= min <= opt <= max")
    return lo, opt, hi


def output_path(args: argparse.Namespace, model_arg: str) -> tuple[Path, str]:
    """(the file to write, its format): ``--out`` (a folder, existing or ending in ``/``, gets the
    default name inside it), else :func:`default_out`; the format is ``--format``, else ``engine``
    for a ``.engine``/``.plan`` file, else ``onnx``.

    Raises:
        ConfigError: ``--format`` contradicts the file name (``--out x.engine --format onnx``), or the
            output would replace an input (the model file or the checkpoint).
        SinkError: the output cannot be written there (checked before the export).
    """
    from ..errors import ConfigError
    from ..io.sink_files import check_writable

    out = Path(args.out) if args.out else None
    folder = out is not None and (out.is_dir() or args.out.endswith(("/", os.sep)))
    suffix = out.suffix.lower() if out is not None and not folder else ""
    implied = "engine" if suffix in _ENGINE_SUFFIXES else "onnx" if suffix == ".onnx" else None
    fmt = args.format or implied or "onnx"
    if implied is not None and implied != fmt:
        raise ConfigError(
            f"--out {args.out} is {'an ONNX file' if implied == 'onnx' else 'a TensorRT engine'} but --format is "
            f"{fmt}: drop --format (the extension decides) or name the file .{'onnx' if fmt == 'onnx' else 'engine'}"
        )
    name = default_out(model_arg, fmt, args.flavour, args.fp16)
    path = name if out is None else out / name if folder else out
    for flag, given in (("--model", args.model), ("--weights", args.weights)):
        if given and Path(given).is_file() and Path(given).resolve() == path.resolve():
            raise ConfigError(f"--out {path} is the {flag} file itself; give another output file")
    check_writable(path)
    return path, fmt


def _write_atomically(path: Path, write: Callable[[Path], object]) -> bool:
    """``write(temp)`` to a temp file beside ``path``, then rename it into place: a failed or
    interrupted export leaves no partial file and an existing ``path`` as it was.

    Returns:
        Whether a file ``path`` was replaced.
    """
    existed = path.exists()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return existed


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models import RANDOM_SEED, build_model
    from ..runtime.onnx_export import ExportConfig, export_onnx, supported_opsets

    if args.model is None and args.weights is None:
        raise ConfigError("export: give --model (zoo name, YAML, or a stip-rt train checkpoint) or --weights")
    opsets = supported_opsets()
    if args.opset not in opsets:
        raise ConfigError(f"--opset {args.opset}: expected {opsets[0]} to {opsets[-1]} (the opsets it writes)")
    # a `stip-rt train` checkpoint records its model config: --model may be left out
    model_arg = args.model or args.weights
    out, fmt = output_path(args, model_arg)
    profile = _profile(args.profile) if fmt == "engine" else None
    weights = export_weights(args.model, args.weights) if args.model else args.weights
    # random weights from the fixed seed: the same file every time, the network `--weights random` runs
    model = build_model(model_arg, weights=weights, seed=RANDOM_SEED if weights is None else None).eval()
    what = "random weights" if weights is None else f"weights {weights}"
    if profile is None:
        config = ExportConfig(flavour=args.flavour, fp16=args.fp16, opset=args.opset)
        replaced = _write_atomically(out, lambda tmp: export_onnx(model, tmp, config))
        print(f"wrote {out} ({args.flavour} flavour{', fp16' if args.fp16 else ''}, {what})"
              + ("; it replaced the file that was there" if replaced else ""))
        return 0
    from ..runtime.engine_cache import onnx_cache_dir
    from ..runtime.tensorrt_backend import TensorRTConfig, build_engine, import_tensorrt

    import_tensorrt()  # one clear error before a long export
    trt_config = TensorRTConfig(profile=profile, plugin=args.flavour == "plugin")
    onnx_path = export_onnx(
        model,
        onnx_cache_dir() / f"{out.stem}.{args.flavour}.fp16.onnx",
        ExportConfig(flavour=args.flavour, fp16=True, opset=args.opset),
    )
    plan = build_engine(onnx_path, trt_config, plugin=trt_config.plugin, progress=_progress())
    replaced = _write_atomically(out, lambda tmp: tmp.write_bytes(plan))
    print(f"wrote {out} (TensorRT engine, {args.flavour} flavour, profile {args.profile}, {what})"
          + ("; it replaced the file that was there" if replaced else ""))
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
    p.add_argument(
        "--format",
        choices=("onnx", "engine"),
        default=None,
        help="onnx: an ONNX file (ONNX Runtime, TensorRT); engine: a TensorRT engine for this GPU "
        "(default: from --out's extension, .engine/.plan or .onnx; else onnx)",
    )
    p.add_argument(
        "--flavour",
        choices=("standard", "plugin"),
        default="standard",
        help="standard: IaP in standard ops (ONNX Runtime); plugin: one stip_rt::IaP node (TensorRT) "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--fp16",
        action="store_true",
        help="float16 graph with float32 inputs/outputs (ONNX only; engines are always built from an fp16 graph)",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=20,
        help="ONNX opset of the file, 18 to the newest the installed onnx knows (default: %(default)s)",
    )
    p.add_argument(
        "--profile",
        default="1,8,64",
        metavar="MIN,OPT,MAX",
        help="engines: the batch sizes the engine accepts, min,opt,max, 1 <= min <= opt <= max; "
        "opt is the one it is tuned for (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        metavar="FILE_OR_DIR",
        help="output file (.onnx or .engine), or a folder for the default name in it "
        "(default: <model name>[.plugin][.fp16].onnx|.engine in the current folder)",
    )
    p.set_defaults(func=run)
