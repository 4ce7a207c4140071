"""``stip-rt batch DIR_OR_GLOB --out-dir DIR``: track many videos; resumable, goes on after failures.

Examples::

    stip-rt batch videos/ --out-dir results/ --format jsonl,csv
    stip-rt batch 'clips/*.mp4' --out-dir results/ --jobs 4 --devices cuda:0 cuda:1 cuda:0 cuda:1
    stip-rt batch '/data/*.mp4' --out-dir /shared/results --engine ray --address auto --gpus-per-task 1

Run the same command again after an interruption: videos done with the same formats and options
are skipped, the others are done (again). Ctrl-C, SIGTERM and SIGHUP stop every worker cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ..batch import FORMATS, VideoResult, batch_formats, find_videos, format_table, run_batch
from ..errors import ConfigError
from ..run_config import RunConfig
from .progress import Progress, add_progress_option, format_seconds, print_outputs
from .run_options import RUN_DESTS, add_run_options, config_from_args


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, (*RUN_DESTS, "max_frames"))
    if args.print_config:
        from ..run_load import config_yaml

        print(config_yaml(config), end="")
        return 0
    if args.progress_every < 0:
        raise ConfigError(f"--progress-every {args.progress_every:g}: expected seconds >= 0")
    videos = find_videos(args.inputs, exclude=args.out_dir)
    formats = list(batch_formats([f.strip() for f in args.format.split(",") if f.strip()], config, args.video))
    print(f"{len(videos)} videos → {args.out_dir}", file=sys.stderr)
    seen: list[VideoResult] = []
    try:
        with Progress(len(videos), "videos", args.progress_every) as bar, _heartbeat(bar):
            results = _run(args, videos, config, formats, bar, seen)
    except KeyboardInterrupt:  # what was done before it, and what the next run will do
        order = {str(v): i for i, v in enumerate(videos)}
        print(format_table(sorted(seen, key=lambda r: order.get(r.source, len(order)))))
        left = len(videos) - len(seen)
        print(f"{f'{left} videos not started; ' if left else ''}run the same command again to finish the batch "
              "(the videos done are skipped)")
        raise
    print(format_table(results))
    print_outputs([r.out_dir for r in results if r.out_dir])
    return 1 if any(r.status in ("failed", "interrupted") for r in results) else 0


@contextlib.contextmanager
def _heartbeat(bar: Progress) -> Iterator[None]:
    """Off a terminal, a progress line every ``bar.interval_s`` also while no video finishes (long videos)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(min(bar.interval_s, 1.0)):
            bar.tick()

    thread = None
    if not bar.tty and bar.interval_s > 0:
        thread = threading.Thread(target=beat, name="progress", daemon=True)
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join()


def _run(
    args: argparse.Namespace,
    videos: list[Path],
    config: RunConfig,
    formats: list[str],
    bar: Progress,
    seen: list[VideoResult],
) -> list[VideoResult]:
    def report(r: VideoResult) -> None:
        seen.append(r)
        bar.write(f"{r.status:11s} {r.source}  [{len(seen)}/{len(videos)}, elapsed {format_seconds(bar.elapsed_s())}]")
        if r.status in ("skipped", "busy"):
            bar.skip()
        else:
            bar.update(1)

    if args.engine == "ray":
        from ..batch_ray import run_batch_ray

        if args.jobs != 1 or args.devices:
            raise ConfigError(
                "--jobs and --devices are for --engine process; Ray places tasks itself (--gpus-per-task)"
            )
        return run_batch_ray(
            videos,
            args.out_dir,
            config,
            formats,
            annotate=args.video,
            address=args.address,
            gpus_per_task=args.gpus_per_task,
            cpus_per_task=args.cpus_per_task,
            force=args.force,
            on_result=report,
        )
    else:
        if args.address is not None or args.gpus_per_task:
            raise ConfigError("--address and --gpus-per-task need --engine ray")
        return run_batch(
            videos,
            args.out_dir,
            config,
            formats,
            annotate=args.video,
            jobs=args.jobs,
            devices=args.devices or (),
            force=args.force,
            on_result=report,
        )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="track many videos (resumable; several processes/GPUs)",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", metavar="DIR_OR_GLOB", help="folder of videos, glob pattern, or one video")
    p.add_argument("-O", "--out-dir", required=True, help="output root: one sub-folder per video")
    p.add_argument(
        "-f", "--format", default="jsonl", help=f"comma-separated output formats: {', '.join(FORMATS)} (default: jsonl)"
    )
    p.add_argument("--video", action="store_true", help="also write an annotated video per input")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("-N", "--max-frames", type=int, metavar="N", help="only the first N frames of each video")
    p.add_argument(
        "--devices",
        nargs="+",
        metavar="DEV",
        help="devices handed to the workers in turn, e.g. cuda:0 cuda:1 (default: --device)",
    )
    p.add_argument(
        "--force", action="store_true", help="do every video again, also those done with the same formats and options"
    )
    g = p.add_argument_group("engine")
    g.add_argument(
        "--engine",
        choices=("process", "ray"),
        default="process",
        help="process: a pool of --jobs processes on this machine (default); ray: one Ray task per video "
        '(pip install "stip-rt[ray]")',
    )
    g.add_argument("--address", help="Ray cluster address ('auto': the running cluster; default: a local Ray)")
    g.add_argument("--gpus-per-task", type=float, default=0.0, metavar="N", help="GPUs per Ray task (0.5: two per GPU)")
    g.add_argument("--cpus-per-task", type=float, default=1.0, metavar="N", help="CPUs per Ray task (default: 1)")
    add_progress_option(p, 60.0)
    add_run_options(p)
    p.set_defaults(func=run)
