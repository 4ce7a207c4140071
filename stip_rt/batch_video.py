"""One video of a batch: :func:`process_video`, the unit of work, and what it returns (:class:`VideoResult`).

It writes the video's outputs, then ``done.json`` last (:mod:`stip_rt.batch_marker`); a failure
is returned and written to ``error.txt``, never raised; :func:`request_stop` ends the video in
progress in this process cleanly. :mod:`stip_rt.batch` runs many of them (a process pool), and
:mod:`stip_rt.batch_ray` as Ray tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from .batch_marker import DONE, done_differs, done_figures, input_stamp, is_done, marker_config, write_done
from .errors import StipError
from .interrupt import wait_for_threads
from .io.formats import OUTPUT_FORMATS
from .pipeline import Pipeline
from .run_config import RunConfig

logger = logging.getLogger(__name__)

#: Output format → file name suffix (``openpose`` is a folder of per-frame JSON files), from the one
#: table of output formats; the annotated video is asked for with ``annotate``.
FORMATS: dict[str, str] = {k: f.name_suffix for k, f in OUTPUT_FORMATS.items() if k != "video"}
ERROR = "error.txt"

# set to stop the video in progress cleanly (a worker's signal handler, or the batch's parent)
_STOP = threading.Event()


@dataclass(frozen=True, slots=True)
class VideoResult:
    """What happened to one video.

    Attributes:
        source: the video path.
        status: ``done``, ``skipped`` (already done in an earlier run, same formats and options),
            ``failed`` or ``interrupted`` (stopped by a signal; done again by the next run).
        frames: frames written (also for a failed video: its partial outputs hold them).
        people: person rows written.
        tracks: distinct track ids.
        seconds: wall time of this run (0 when skipped).
        fps: frames per second end to end.
        out_dir: the video's output folder.
        device: where it ran.
        error: the one-line error of a failed video.
    """

    source: str
    status: Literal["done", "skipped", "failed", "interrupted"]
    frames: int = 0
    people: int = 0
    tracks: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    out_dir: str = ""
    device: str = ""
    error: str | None = None


def request_stop() -> None:
    """Stop the video in progress in this process cleanly (its outputs closed, no ``done.json``)."""
    _STOP.set()


def process_video(
    source: str,
    video_dir: str,
    config: RunConfig,
    formats: Sequence[str],
    annotate: bool = False,
    force: bool = False,
) -> VideoResult:
    """Track one video into ``video_dir`` unless it is already done with the same formats and options.

    Never raises a StipError: a failure is returned (and written to ``error.txt``) so that the
    batch can go on. :func:`request_stop` (a worker's signal handler) ends it early with status
    ``interrupted``: every output is closed (playable video, complete JSON) but no ``done.json``
    is written. A ``KeyboardInterrupt`` does the same, then goes on up.

    Args:
        source: the video.
        video_dir: its output folder (created).
        config: the run configuration (``source.uri`` is replaced by ``source``; ``outputs`` are
            ignored: the outputs are ``formats`` in ``video_dir``).
        formats: keys of :data:`FORMATS`.
        annotate: also write ``<name>.mp4`` with skeletons and ids.
        force: do it again even when it is done with the same formats and options.
    """
    from .io.sinks import open_sink

    out = Path(video_dir)
    config = with_source(config, source)
    device = config.runtime.device
    if is_done(out):
        why = "forced (--force)" if force else done_differs(out, config, formats, annotate)
        if why is None:
            done = done_figures(out)  # {} when the marker cannot be read: the figures stay 0
            return VideoResult(
                source, "skipped", done.get("frames", 0), done.get("people", 0), done.get("tracks", 0),
                out_dir=str(out), device=device,
            )  # fmt: skip
        logger.warning("%s: doing it again: %s", source, why)
        (out / DONE).unlink(missing_ok=True)
    if _STOP.is_set():
        return VideoResult(
            source, "interrupted", out_dir=str(out), device=device, error="interrupted before it started"
        )
    t0 = time.perf_counter()
    outputs = [(f"{out.name}{FORMATS[f]}", f) for f in formats] + ([(f"{out.name}.mp4", "video")] if annotate else [])
    pipeline: Pipeline | None = None
    finished = threading.Event()

    def used_device() -> str:
        """The device the run resolved ``runtime.device`` to (``cpu`` for ``auto`` without a GPU)."""
        parts = pipeline.parts if pipeline is not None else None
        return parts.run.device if parts is not None and parts.run.device else device

    def failed(status: Literal["failed", "interrupted"], message: str) -> VideoResult:
        if out.is_dir():
            (out / ERROR).write_text(f"{message}\n", encoding="utf-8")
        s = pipeline.stats() if pipeline is not None else None
        return VideoResult(
            source, status, s.frames if s else 0, s.people if s else 0, s.tracks if s else 0,
            time.perf_counter() - t0, s.fps if s else 0.0, str(out), used_device(), message,
        )  # fmt: skip

    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ERROR).unlink(missing_ok=True)
        sinks = [open_sink(out / name, kind=kind) for name, kind in outputs]
        pipeline = Pipeline(config, sinks)
        threading.Thread(target=_stop_when_asked, args=(pipeline, finished), daemon=True).start()
        stats = pipeline.run()
    except StipError as e:
        if _STOP.is_set():
            return failed("interrupted", f"interrupted ({e})")
        return failed("failed", str(e))
    except KeyboardInterrupt:  # in-process batch: the pipeline closes its outputs; say so, then go on up
        wait_for_threads(prefix="stip-rt-")
        failed("interrupted", "interrupted: outputs are complete up to the last frame written; not done")
        raise
    finally:
        finished.set()
    if _STOP.is_set():
        return failed("interrupted", f"interrupted after {stats.frames} frames; outputs complete up to there; not done")
    seconds = time.perf_counter() - t0
    device = used_device()
    figures = {"frames": stats.frames, "people": stats.people, "tracks": stats.tracks}
    marker = {
        "source": source,
        **figures,
        "seconds": round(seconds, 3),
        "fps": round(stats.fps, 3),
        "device": device,
        "formats": list(formats),
        "video": annotate,
        "outputs": [name for name, _ in outputs],
        "input": input_stamp(source),
        "config": marker_config(config),
    }
    write_done(out, marker)  # last and atomic: a done.json always means complete outputs
    return VideoResult(
        source, "done", stats.frames, stats.people, stats.tracks,
        seconds=seconds, fps=stats.fps, out_dir=str(out), device=device,
    )  # fmt: skip


def _stop_when_asked(pipeline: Pipeline, finished: threading.Event) -> None:
    """Watcher thread of one video: stop its pipeline (from this thread) once :data:`_STOP` is set."""
    while not finished.is_set():
        if _STOP.wait(0.1):
            pipeline.stop()
            return


def with_source(config: RunConfig, source: str) -> RunConfig:
    """``config`` for one video of a batch: ``source.uri`` set, ``outputs`` cleared."""
    outputs = replace(config.outputs, files=(), video=None)
    return replace(config, source=replace(config.source, uri=source), outputs=outputs)


def with_device(config: RunConfig, device: str) -> RunConfig:
    """``config`` with ``runtime.device`` set (one device per worker)."""
    return replace(config, runtime=replace(config.runtime, device=device))
