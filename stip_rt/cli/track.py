"""``stip-rt track SOURCE``: detect, estimate and track people in a video, stream, camera or folder.

Examples::

    stip-rt track video.mp4 --out tracks.jsonl --video annotated.mp4
    stip-rt track 0 --show                                   # camera 0, live window
    stip-rt track vtest.avi --pose none --detections gt.txt  # box-only tracking of given boxes
    stip-rt track vtest.avi --model hrnet-w32-coco-256x192 --weights random --max-frames 50
    stip-rt track video.mp4 --config run.yaml --set detect.rtmdet.score_threshold=0.5 --print-config
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ..pipeline import Pipeline
from ..pipeline_build import describe_run
from ..pipeline_stats import format_stats
from ..run_config import RunConfig
from ..run_load import config_yaml
from .run_options import RUN_DESTS, TRACK_DESTS, add_run_options, add_track_options, config_from_args
from .window import WindowSink

log = logging.getLogger(__name__)

__all__ = ["add_parser", "add_run_options", "config_from_args", "run"]


def _sinks(args: argparse.Namespace, config: RunConfig) -> list[Any]:
    from ..api import open_outputs

    sinks: list[Any] = open_outputs(config.outputs)
    if args.show:
        sinks.append(WindowSink())
    return sinks


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, (*RUN_DESTS, *TRACK_DESTS), source=args.source)
    if args.print_config:
        print(config_yaml(config), end="")
        return 0
    sinks = _sinks(args, config)
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


def _progress(frame_count: int | None, config: RunConfig) -> Any:
    from tqdm import tqdm

    total = None
    if frame_count:
        total = max(frame_count - config.source.start, 0)
        if config.source.max_frames is not None:
            total = min(total, config.source.max_frames)
    return tqdm(total=total, unit="frame", dynamic_ncols=True, disable=not sys.stderr.isatty(), leave=False)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track",
        help="track people in a video, stream, camera or image folder",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", help="video file, stream URL, camera index, image folder or glob")
    add_track_options(p)
    p.add_argument("--show", action="store_true", help="show the annotated frames in a window (q/Esc quits)")
    add_run_options(p)
    p.set_defaults(func=run)
