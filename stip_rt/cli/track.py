"""``stip-rt track SOURCE``: detect, estimate and track people in a video, stream, camera or folder.

Without --out or --video, the tracks (JSONL) and the annotated video go to a new folder
runs/track/<source name>/ (runs/track/<name>2/ ... on later runs); --no-save saves nothing.

Examples::

    stip-rt track video.mp4                                  # → runs/track/video/video.jsonl, video.mp4
    stip-rt track video.mp4 --out tracks.jsonl --video annotated.mp4
    stip-rt track 0 --show                                   # camera 0, live window
    stip-rt track vtest.avi --pose none --detections gt.txt  # box-only tracking of given boxes
    stip-rt track vtest.avi --model hrnet-w32-coco-256x192 --weights random --max-frames 50
    stip-rt track video.mp4 --config run.yaml --set detect.rtmdet.score_threshold=0.5 --print-config
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, StipError
from ..pipeline import Pipeline
from ..pipeline_build import describe_run
from ..pipeline_stats import format_stats
from ..run_config import RunConfig
from ..run_load import config_yaml
from .progress import Progress, add_progress_option, print_outputs
from .run_options import RUN_DESTS, TRACK_DESTS, add_run_options, add_track_options, config_from_args
from .window import WindowSink

log = logging.getLogger(__name__)
_MTIME_SLACK_S = 2.0  # file systems that keep modification times in coarse steps (FAT: 2 s)

__all__ = ["add_parser", "add_run_options", "config_from_args", "run"]


def output_paths(config: RunConfig, since: float | None = None) -> list[str]:
    """Every file (or OpenPose folder) ``config.outputs`` names, in order; with ``since`` (a
    ``time.time()``), only those written since then (a video of no frame is never written, and an
    older file of that name is not this run's)."""
    paths = [*config.outputs.files, *([config.outputs.video] if config.outputs.video else [])]
    if since is None:
        return paths
    return [p for p in paths if os.path.exists(p) and os.stat(p).st_mtime >= since - _MTIME_SLACK_S]


def run(args: argparse.Namespace) -> int:
    from ..api import save_outputs

    # a missing source is named with any missing model file, before any model file is looked for
    config = config_from_args(args, (*RUN_DESTS, *TRACK_DESTS), check_source=not args.print_config,
                              source=args.source)
    if args.print_config:
        print(config_yaml(config), end="")
        return 0
    if args.progress_every < 0:
        raise ConfigError(f"--progress-every {args.progress_every:g}: expected seconds >= 0")
    window = WindowSink() if args.show else None  # no window support: one error before anything is made
    created = _first_missing(Path(config.outputs.save_dir))
    config, folder = save_outputs(config)
    started = time.time()
    try:
        _track(args, config, window, folder, started)
    except BaseException as e:
        if folder is not None:
            _remove_if_empty(folder, created)
        if isinstance(e, StipError):  # what was computed before the error is in these
            print_outputs(output_paths(config, started), sys.stderr)
        raise
    print_outputs(output_paths(config, started))
    return 0


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None when ``path`` exists)."""
    missing, p = None, path.absolute()
    while not p.exists() and p.parent != p:
        missing, p = p, p.parent
    return missing


def _remove_if_empty(folder: Path, created: Path | None) -> None:
    """Remove the run folder when nothing was written into it, and the empty folders above it that
    this run created (up to ``created``): a run that failed at once leaves no empty ``runs/track/``."""
    p = folder.absolute()
    while p.is_dir() and not any(p.iterdir()):
        p.rmdir()
        if created is None or p == created or not p.is_relative_to(created):
            break
        p = p.parent


def _track(
    args: argparse.Namespace, config: RunConfig, window: WindowSink | None, folder: Path | None, started: float
) -> None:
    from ..api import open_outputs

    sinks: list[Any] = [*open_outputs(config.outputs), *([window] if window is not None else [])]
    if not sinks:
        log.warning("--no-save and no --out, --video or --show: the results are not saved")
    with Pipeline(config, sinks) as pipeline:
        assert pipeline.parts is not None
        run_info = pipeline.parts.run
        print(describe_run(run_info), file=sys.stderr)
        if folder is not None:
            print(f"saving to {folder}/ (--out/--video choose the files, --no-save saves nothing)", file=sys.stderr)
        try:
            with _progress(run_info.source.frame_count, config, args.progress_every) as bar:
                for result in pipeline:
                    people = len(result.tracks)
                    bar.update(1, extra=f"people {people}", fps=f"{pipeline.stats().fps:.1f}", people=people)
                    if window is not None and window.quit_requested:
                        break
        except KeyboardInterrupt:  # say what was done: the outputs hold every frame counted here
            pipeline.stop()
            print(format_stats(pipeline.stats(), live=run_info.source.live), file=sys.stderr)
            print_outputs(output_paths(config, started), sys.stderr)
            raise
    print(format_stats(pipeline.stats(), live=run_info.source.live))


def _progress(frame_count: int | None, config: RunConfig, interval_s: float) -> Progress:
    total = None
    if frame_count:
        total = max(frame_count - config.source.start, 0)
        if config.source.max_frames is not None:
            total = min(total, config.source.max_frames)
    return Progress(total, "frames", interval_s)


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
    add_progress_option(p)
    add_run_options(p)
    p.set_defaults(func=run)
