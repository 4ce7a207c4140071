"""``stip-rt track SOURCE``: detect, estimate and track people in a video, stream, camera or folder.

Examples::

    stip-rt track video.mp4 --out tracks.jsonl --video annotated.mp4
    stip-rt track 0 --show                                   # camera 0, live window
    stip-rt track vtest.avi --pose none --detections gt.txt  # box-only tracking of given boxes
    stip-rt track vtest.avi --model hrnet-w32-coco-256x192 --weights random --max-frames 50
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import yaml

from ..config import apply_overrides, from_dict, to_dict
from ..pipeline import Pipeline, PipelineConfig
from ..pipeline_build import describe_run
from ..pipeline_stats import format_stats
from .window import WindowSink

log = logging.getLogger(__name__)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Model, detector, backend and tracker flags shared by ``track`` and ``batch``."""
    g = p.add_argument_group("models")
    g.add_argument(
        "-m",
        "--model",
        "--pose",
        dest="pose",
        default="auto",
        metavar="NAME",
        help="pose model: zoo name or YAML; 'none' for box-only tracking (default: auto)",
    )
    g.add_argument("-w", "--weights", help="pose checkpoint, or 'random' for random weights (demos/tests)")
    g.add_argument("-d", "--detector", default="rtmdet-tiny", help="person detector (default: rtmdet-tiny)")
    g.add_argument("--detector-weights", help="detector checkpoint, or 'random'")
    g.add_argument(
        "-D",
        "--detections",
        metavar="FILE",
        help="read boxes from a file (COCO results JSON or MOT det/gt text) instead of detecting",
    )
    g.add_argument(
        "-n",
        "--det-every",
        type=int,
        default=1,
        metavar="N",
        help="run the detector every N-th frame; boxes from the previous tracks in between",
    )
    g.add_argument("--flip-test", action="store_true", help="also infer flipped crops (slower, more accurate)")
    g = p.add_argument_group("runtime")
    g.add_argument("-b", "--backend", default="auto", help="auto, torch, cuda-fast, onnxruntime, tensorrt")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    g.add_argument("--precision", default="auto", help="auto, fp32, fp16, bf16")
    g = p.add_argument_group("tracking")
    g.add_argument("-t", "--tracker", metavar="YAML", help="tracker config (differences from the defaults)")
    g.add_argument(
        "--smooth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keypoint smoothing (default: as the tracker config says)",
    )
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set queue_size=2 or --set tracker.min_hits=3",
    )
    g.add_argument("--print-config", action="store_true", help="print the effective settings and exit")


def config_from_args(args: argparse.Namespace, source: str) -> PipelineConfig:
    """The :class:`PipelineConfig` the flags describe (``--set`` applied last)."""
    data: dict[str, Any] = {
        "source": source,
        "pose": args.pose,
        "weights": args.weights,
        "detector": args.detector,
        "detector_weights": args.detector_weights,
        "detections": args.detections,
        "backend": args.backend,
        "device": args.device,
        "precision": args.precision,
        "det_every": args.det_every,
        "flip_test": args.flip_test,
        "tracker": args.tracker,
        "smooth": args.smooth,
    }
    for key in ("start", "max_frames", "live"):
        if getattr(args, key, None) is not None:
            data[key] = getattr(args, key)
    tracker_sets = [o.split(".", 1)[1] for o in args.overrides if o.startswith("tracker.")]
    data["tracker_overrides"] = tracker_sets
    data = apply_overrides(data, [o for o in args.overrides if not o.startswith("tracker.")])
    return from_dict(PipelineConfig, data, "stip-rt track")


def _sinks(args: argparse.Namespace) -> list[Any]:
    from ..io.sinks import open_sink

    sinks = [open_sink(path) for path in args.out]
    if args.video:
        sinks.append(open_sink(args.video))
    if args.show:
        sinks.append(WindowSink())
    return sinks


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, args.source)
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    sinks = _sinks(args)
    if not sinks:
        log.warning("no --out, --video or --show: the results are not saved")
    window = next((s for s in sinks if isinstance(s, WindowSink)), None)
    with Pipeline(config, sinks) as pipeline:
        assert pipeline.parts is not None
        run_info = pipeline.parts.run
        print(describe_run(run_info), file=sys.stderr)
        try:
            with _progress(run_info.source.frame_count, config) as bar:
                for result in pipeline:
                    bar.update(1)
                    if bar.n % 10 == 1:
                        bar.set_postfix(fps=f"{pipeline.stats().fps:.1f}", people=len(result.tracks), refresh=False)
                    if window is not None and window.quit_requested:
                        break
        except KeyboardInterrupt:  # say what was done: the outputs hold every frame counted here
            pipeline.stop()
            print(format_stats(pipeline.stats(), live=run_info.source.live), file=sys.stderr)
            raise
    print(format_stats(pipeline.stats(), live=run_info.source.live))
    return 0


def _progress(frame_count: int | None, config: PipelineConfig) -> Any:
    from tqdm import tqdm

    total = None
    if frame_count:
        total = max(frame_count - config.start, 0)
        if config.max_frames is not None:
            total = min(total, config.max_frames)
    return tqdm(total=total, unit="frame", dynamic_ncols=True, disable=not sys.stderr.isatty(), leave=False)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track",
        help="track people in a video, stream, camera or image folder",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", help="video file, stream URL, camera index, image folder or glob")
    g = p.add_argument_group("outputs")
    g.add_argument(
        "-o",
        "--out",
        action="append",
        default=[],
        metavar="FILE",
        help="write tracks; format from the extension (.json .jsonl .csv .coco.json .txt (MOT), "
        "a folder for OpenPose JSON); repeatable",
    )
    g.add_argument("--video", metavar="OUT.mp4", help="write the annotated video")
    g.add_argument("--show", action="store_true", help="show the annotated frames in a window (q/Esc quits)")
    g = p.add_argument_group("frames")
    g.add_argument("-s", "--start", type=int, metavar="N", help="first frame (0-based)")
    g.add_argument("-N", "--max-frames", type=int, metavar="N", help="stop after N frames")
    g.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop frames when behind (default: cameras and streams are live, files are not)",
    )
    add_run_options(p)
    p.set_defaults(func=run)
