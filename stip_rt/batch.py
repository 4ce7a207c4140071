"""Many videos, one job each: resumable, failure-tolerant, several processes/GPUs on one machine.

Layout of the output folder: one sub-folder per video, named after the video's stem, holding
``<stem>.<ext>`` for every requested format, the annotated ``<stem>.mp4`` when asked for, and
``done.json`` — the completion marker, written *last* and atomically, with the run's figures,
formats and configuration. A video whose ``done.json`` records the same formats and options is
skipped, so an interrupted batch resumes where it stopped; one done with other formats or
options is done again (``force`` redoes every video), and its folder then holds only the new
run's outputs. A video that fails keeps its partial outputs (JSONL/CSV/MOT are valid up to the last
written frame), gets an ``error.txt`` naming the problem (the video, and the output by the name the
user asked for), and the batch goes on; a *redo* that fails or is interrupted keeps the complete
outputs of the earlier run and their ``done.json`` instead. While a video runs, its outputs are
written in ``.partial/`` inside its folder and moved to their names when it ends (a batch killed
outright leaves no truncated file at an output's name); ``<folder>.lock`` keeps a second batch run
off it (``busy``).

Interruption (Ctrl-C, SIGTERM, SIGHUP): the workers ignore the signal itself and stop their
current video cleanly when told to (:func:`request_stop` in the worker), closing every output
(the annotated video is renamed into place only when finished), without ``done.json``; the
next run does that video again.

:func:`process_video` is a plain top-level function of picklable arguments, so the same unit of
work runs in-process, in a process pool (:func:`run_batch`) or as a Ray task
(:mod:`stip_rt.batch_ray`). It lives in :mod:`stip_rt.batch_video` (re-exported here); this module
finds the videos, names their folders and runs the process pool.
"""

from __future__ import annotations

import glob
import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed, wait
from pathlib import Path
from typing import Any

from .batch_marker import DONE
from .batch_video import (
    _STOP,
    ERROR,
    FORMATS,
    PARTIAL,
    VideoResult,
    interrupted_result,
    process_video,
    request_stop,
    with_device,
    with_source,
)
from .errors import ConfigError, SourceError
from .io.formats import OUTPUT_FORMATS
from .io.source_config import INPUT_VIDEO_EXTENSIONS
from .run_config import RunConfig

__all__ = [  # one video's work lives in batch_video
    "DONE",
    "ERROR",
    "FORMATS",
    "PARTIAL",
    "VideoResult",
    "batch_formats",
    "batch_tasks",
    "find_videos",
    "format_table",
    "output_names",
    "process_video",
    "request_stop",
    "run_batch",
    "with_device",
    "with_source",
]

logger = logging.getLogger(__name__)


def find_videos(spec: str | Path, exclude: str | Path | None = None) -> list[Path]:
    """Videos of a folder (not recursive; hidden files left out, as a glob leaves them out), a glob
    pattern, or one file; sorted.

    Args:
        spec: the folder, glob pattern or file.
        exclude: a folder whose files are never inputs: the batch's output root (a recursive glob
            would otherwise take the annotated videos of an earlier run for new videos).

    Raises:
        SourceError: nothing matches.
    """
    text = str(spec)
    p = Path(text)
    if p.is_dir():
        found = [
            f for f in p.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in INPUT_VIDEO_EXTENSIONS
        ]  # fmt: skip
    elif any(c in text for c in "*?["):
        found = [Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file()]
    elif p.is_file():
        found = [p]
    else:
        raise SourceError(f"{text}: no such file, folder or glob")
    outputs = []
    if exclude is not None:
        roots = {Path(exclude).absolute(), Path(exclude).resolve()}
        outputs = [f for f in found if any(g.is_relative_to(r) for g in (f.absolute(), _real_folder(f)) for r in roots)]
        found = [f for f in found if f not in outputs]
        if outputs:
            logger.info("%s: left out %d files inside the output folder %s", text, len(outputs), exclude)
    if not found:
        inside = f"; {len(outputs)} files inside the output folder {exclude} are not inputs" if outputs else ""
        raise SourceError(f"{text}: no videos found (looked for {', '.join(INPUT_VIDEO_EXTENSIONS)}){inside}")
    return sorted(found)


def _real_folder(f: Path) -> Path:
    """``f`` in its folder's real path (the file itself may be a link to a video elsewhere)."""
    return f.parent.resolve() / f.name


def output_names(videos: Sequence[Path]) -> dict[Path, str]:
    """The output sub-folder name of each video: its stem, or ``parent_stem`` where stems collide."""
    stems: dict[str, int] = {}
    for v in videos:
        stems[v.stem] = stems.get(v.stem, 0) + 1
    names = {v: (v.stem if stems[v.stem] == 1 else f"{v.parent.name}_{v.stem}") for v in videos}
    if len(set(names.values())) != len(names):
        raise ConfigError(
            "batch: several videos map to the same output folder; rename them: " + ", ".join(str(v) for v in videos)
        )
    return names


# one device per worker process: handed out through a queue when the worker starts
_worker_device: str | None = None


def _logging_setup() -> tuple[int, str | None]:
    """This process's root logging level and the format of its first handler (for the workers)."""
    root = logging.getLogger()
    fmt = root.handlers[0].formatter._fmt if root.handlers and root.handlers[0].formatter else None
    return root.level, fmt


def _init_worker(
    devices: mp.Queue, threads: int, stop: Any, logs: tuple[int, str | None] = (logging.WARNING, None)
) -> None:
    global _worker_device
    _worker_device = devices.get()
    level, fmt = logs  # a spawned worker starts with no logging set up: log as the parent does
    logging.basicConfig(level=level, format=fmt or logging.BASIC_FORMAT)
    # Ctrl-C reaches every process of the terminal's group, SIGTERM may reach the workers too
    # (systemd, Slurm): the worker then stops its video cleanly; the parent coordinates the rest
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: _STOP.set())
    threading.Thread(target=_forward_stop, args=(stop,), daemon=True).start()
    import torch

    torch.set_num_threads(threads)


def _forward_stop(stop: Any) -> None:
    """Worker thread: the parent's stop event (a multiprocessing Event) sets this process's :data:`_STOP`."""
    stop.wait()
    _STOP.set()


def _process_in_worker(
    source: str, video_dir: str, config: RunConfig, formats: Sequence[str], annotate: bool, force: bool
) -> VideoResult:
    if _worker_device is not None:
        config = with_device(config, _worker_device)
    return process_video(source, video_dir, config, formats, annotate, force)


def run_batch(
    videos: Sequence[str | Path],
    out_dir: str | Path,
    config: RunConfig,
    formats: Sequence[str] = ("jsonl",),
    *,
    annotate: bool = False,
    jobs: int = 1,
    devices: Sequence[str] = (),
    force: bool = False,
    on_result: Callable[[VideoResult], None] | None = None,
) -> list[VideoResult]:
    """Process ``videos`` into ``out_dir/<name>/``, skipping finished ones, going on after failures.

    On ``KeyboardInterrupt`` (Ctrl-C; SIGTERM/SIGHUP through the CLI) the workers stop their
    current videos cleanly (outputs closed, no ``done.json``), the videos not started are
    cancelled, ``on_result`` hears of each interrupted one, and the interrupt goes on up.

    Args:
        videos: video paths (see :func:`find_videos`).
        out_dir: output root (created).
        config: the run configuration shared by all videos (``source.uri`` and ``outputs`` are ignored).
        formats: output formats per video (keys of :data:`FORMATS`).
        annotate: also write an annotated video per input.
        jobs: worker processes; 1 runs in this process.
        devices: devices given to the workers in turn (e.g. ``cuda:0 cuda:1``; two jobs per GPU:
            ``cuda:0 cuda:0 cuda:1 cuda:1``); default: ``config.runtime.device`` for every worker.
        force: do every video again, also those done with the same formats and options.
        on_result: called in this process as each video finishes (progress, tables).

    Returns:
        One :class:`VideoResult` per video, in input order.

    Raises:
        ConfigError: unknown format, jobs < 1, or colliding output names.
        SinkError: ``out_dir`` cannot be created.
    """
    from .errors import SinkError

    formats = batch_formats(formats, config, annotate)
    if jobs < 1:
        raise ConfigError(f"batch: jobs must be >= 1, got {jobs}")
    root = Path(out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"{root}: cannot create the output folder ({e.strerror})") from None
    tasks = batch_tasks(videos, root)
    results: dict[int, VideoResult] = {}

    def done(i: int, r: VideoResult) -> None:
        results[i] = r
        error = _note(r)
        logger.info("%s: %s", r.source, r.status if not error else f"{r.status}: {error}")
        if on_result is not None:
            on_result(r)

    if jobs == 1:
        cfg = with_device(config, devices[0]) if devices else config
        for i, (src, vdir) in enumerate(tasks):
            try:
                result = process_video(src, vdir, cfg, formats, annotate, force)
            except KeyboardInterrupt as e:  # the video closed its outputs; say so, as the worker processes do
                done(i, interrupted_result(e, src, vdir, cfg.runtime.device))
                raise
            done(i, result)
        return [results[i] for i in range(len(tasks))]
    ctx = mp.get_context("spawn")  # fork after torch/threads started is unsafe
    queue: mp.Queue = ctx.Queue()
    for w in range(jobs):
        queue.put(devices[w % len(devices)] if devices else config.runtime.device)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    stop = ctx.Event()
    initargs = (queue, threads, stop, _logging_setup())
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=initargs) as pool:
        futures = {
            pool.submit(_process_in_worker, src, vdir, config, tuple(formats), annotate, force): i
            for i, (src, vdir) in enumerate(tasks)
        }
        try:
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
        except BaseException:
            stop.set()  # the workers close their current videos; the others never start
            _wind_down(futures, done)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [results[i] for i in range(len(tasks))]


def batch_formats(formats: Sequence[str], config: RunConfig, annotate: bool) -> tuple[str, ...]:
    """``formats`` without repeats, checked before any video is touched.

    Raises:
        ConfigError: an unknown format; none at all (and no annotated video); a keypoint format
            (COCO, OpenPose) for a box-only run (``pose.model: none``).
    """
    chosen = tuple(dict.fromkeys(formats))
    bad = [f for f in chosen if f not in FORMATS]
    if bad:
        raise ConfigError(f"batch: unknown format '{bad[0]}' (choose from {', '.join(FORMATS)})")
    if not chosen and not annotate:
        raise ConfigError(f"batch: no output format given (choose from {', '.join(FORMATS)}, or an annotated video)")
    if config.pose.model == "none":
        for f in chosen:
            if OUTPUT_FORMATS[f].needs_keypoints:
                raise ConfigError(f"batch: format '{f}' ({OUTPUT_FORMATS[f].description}) needs keypoints, "
                                  "but the pose model is none (boxes only)")
    return chosen


def batch_tasks(videos: Sequence[str | Path], root: Path) -> list[tuple[str, str]]:
    """(video, its output folder) for each video, in input order."""
    paths = [Path(v) for v in videos]
    names = output_names(paths)
    return [(str(v), str(root / names[v])) for v in paths]


def _wind_down(futures: dict[Future[VideoResult], int], done: Callable[[int, VideoResult], None]) -> None:
    """After an interrupt: cancel the videos not started, wait for the running ones to close their outputs."""
    for fut in futures:
        fut.cancel()
    running = [f for f in futures if not f.cancelled() and not f.done()]
    while running:
        try:
            finished, pending = wait(running)
        except KeyboardInterrupt:  # a second Ctrl-C while the workers close their outputs: keep waiting
            continue
        for fut in finished:
            if fut.exception() is None:
                done(futures[fut], fut.result())
        running = list(pending)


def _note(r: VideoResult) -> str:
    """The error of ``r`` without the video it leads with (the table and the log name the video already)."""
    error = r.error or ""
    return error[len(r.source) + 2 :] if error.startswith(f"{r.source}: ") else error


def format_table(results: Sequence[VideoResult]) -> str:
    """A plain-text table of a batch (one row per video, then totals)."""
    rows = [("video", "status", "frames", "tracks", "fps", "device", "note")]
    for r in results:
        rows.append(
            (
                Path(r.source).name,
                r.status,
                str(r.frames),
                str(r.tracks),
                f"{r.fps:.1f}",
                r.device,
                _note(r)[:80],
            )
        )
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "busy", "failed", "interrupted")}
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    busy = f", {counts['busy']} busy (another batch run is doing them)" if counts["busy"] else ""
    stopped = f", {counts['interrupted']} interrupted (not done)" if counts["interrupted"] else ""
    lines.append(
        f"{len(results)} videos: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed"
        f"{stopped}{busy}"
    )
    return "\n".join(lines)
