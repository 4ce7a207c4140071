"""One video of a batch: :func:`process_video`, the unit of work, and what it returns (:class:`VideoResult`).

It writes the video's outputs, then ``done.json`` last (:mod:`stip_rt.batch_marker`); a failure
is returned and written to ``error.txt``, never raised; :func:`request_stop` ends the video in
progress in this process cleanly. :mod:`stip_rt.batch` runs many of them (a process pool), and
:mod:`stip_rt.batch_ray` as Ray tasks.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from .batch_marker import (
    DONE,
    done_differs,
    done_figures,
    done_outputs,
    input_stamp,
    is_done,
    marker_config,
    write_done,
)
from .errors import StipError
from .interrupt import wait_for_threads
from .io.formats import OUTPUT_FORMATS
from .io.sink_files import OutputBusyError, OutputLock
from .pipeline import Pipeline
from .run_config import RunConfig

logger = logging.getLogger(__name__)

#: Output format → file name suffix (``openpose`` is a folder of per-frame JSON files), from the one
#: table of output formats; the annotated video is asked for with ``annotate``.
FORMATS: dict[str, str] = {k: f.name_suffix for k, f in OUTPUT_FORMATS.items() if k != "video"}
ERROR = "error.txt"
#: Hidden folder inside a video's output folder where its outputs are written while the video
#: runs; they are moved to their names when it ends, so a run killed outright (SIGKILL, power
#: loss) leaves nothing at an output's name (the next run clears it).
PARTIAL = ".partial"

# set to stop the video in progress cleanly (a worker's signal handler, or the batch's parent)
_STOP = threading.Event()


@dataclass(frozen=True, slots=True)
class VideoResult:
    """What happened to one video.

    Attributes:
        source: the video path.
        status: ``done``, ``skipped`` (already done in an earlier run, same formats and options),
            ``busy`` (another batch run is doing this video right now: left to it, nothing touched),
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
    status: Literal["done", "skipped", "busy", "failed", "interrupted"]
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
    batch can go on; its message leads with the video and names each output by its final path. The
    outputs are written in ``video_dir/.partial/`` (:data:`PARTIAL`) and moved to their names when
    the video ends, whether done, failed or interrupted, except when a finished earlier run is done
    again (other formats or options, ``force``): a redo that fails or is interrupted drops its
    partial outputs and keeps the earlier ones with their ``done.json``; one that finishes removes
    the earlier outputs it did not write again. The video is locked
    (``<video_dir>.lock``) while it runs: a video another batch run is doing is returned ``busy``,
    its folder untouched. :func:`request_stop` (a worker's signal handler) ends it early with status
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
    out = Path(video_dir)
    config = with_source(config, source)
    try:  # one run per video: two batches started on the same folder share the videos out
        lock = OutputLock(out).acquire()
    except OutputBusyError as e:
        who = f"process {e.owner}" if e.owner else "another process"
        return VideoResult(source, "busy", out_dir=str(out), device=config.runtime.device,
                           error=f"another batch run ({who}) is doing this video; left to it")  # fmt: skip
    except StipError as e:
        return VideoResult(source, "failed", out_dir=str(out), device=config.runtime.device, error=str(e))
    try:
        return _process_locked(source, out, config, formats, annotate, force)
    finally:
        lock.release()


def _process_locked(
    source: str, out: Path, config: RunConfig, formats: Sequence[str], annotate: bool, force: bool
) -> VideoResult:
    """:func:`process_video` once this process holds the video's lock (``<out>.lock``)."""
    from .io.sinks import open_sink

    device = config.runtime.device
    earlier: list[str] | None = None  # the outputs of an earlier finished run, kept until this one is done
    if is_done(out):
        why = "forced (--force)" if force else done_differs(out, config, formats, annotate)
        if why is None:
            done = done_figures(out)  # {} when the marker cannot be read: the figures stay 0
            return VideoResult(
                source, "skipped", done.get("frames", 0), done.get("people", 0), done.get("tracks", 0),
                out_dir=str(out), device=device,
            )  # fmt: skip
        logger.warning("%s: doing it again: %s", source, why)
        earlier = done_outputs(out)
        if earlier is None:  # what it holds is unknown: its outputs are not kept apart
            (out / DONE).unlink(missing_ok=True)
    if _STOP.is_set():
        return VideoResult(
            source, "interrupted", out_dir=str(out), device=device, error="interrupted before it started"
        )
    t0 = time.perf_counter()
    outputs = [(f"{out.name}{FORMATS[f]}", f) for f in formats] + ([(f"{out.name}.mp4", "video")] if annotate else [])
    names = [name for name, _ in outputs]
    stage = out / PARTIAL
    pipeline: Pipeline | None = None
    finished = threading.Event()

    def used_device() -> str:
        """The device the run resolved ``runtime.device`` to (``cpu`` for ``auto`` without a GPU)."""
        parts = pipeline.parts if pipeline is not None else None
        return parts.run.device if parts is not None and parts.run.device else device

    def failed(status: Literal["failed", "interrupted"], message: str, partial: str = "") -> VideoResult:
        """Publish what was written (``partial`` says what it holds), or keep an earlier run's outputs."""
        message = _naming_the_video(source, _final_names(message, stage, out))
        try:
            if earlier is not None:  # a redo that did not finish: the complete earlier outputs stay
                shutil.rmtree(stage, ignore_errors=True)
                message += f"; the outputs of the earlier run and its {DONE} are kept"
            else:
                message += f"; {partial}" if partial else ""
                problem = _publish(out, names)
                message = f"{message}; {problem}" if problem else message
                if out.is_dir():
                    (out / ERROR).write_text(f"{message}\n", encoding="utf-8")
        except OSError as e:  # a full disk: the message stays in the batch's table and log
            logger.error("%s: cannot write %s (%s)", out, ERROR, e.strerror or e)
        s = pipeline.stats() if pipeline is not None else None
        return VideoResult(
            source, status, s.frames if s else 0, s.people if s else 0, s.tracks if s else 0,
            time.perf_counter() - t0, s.fps if s else 0.0, str(out), used_device(), message,
        )  # fmt: skip

    try:
        shutil.rmtree(stage, ignore_errors=True)  # what a run killed outright left
        stage.mkdir(parents=True, exist_ok=True)
        (out / ERROR).unlink(missing_ok=True)
        sinks = [open_sink(stage / name, kind=kind) for name, kind in outputs]
        pipeline = Pipeline(config, sinks)
        threading.Thread(target=_stop_when_asked, args=(pipeline, finished), daemon=True).start()
        stats = pipeline.run()
    except StipError as e:
        if _STOP.is_set():
            return failed("interrupted", f"interrupted ({e})")
        return failed("failed", str(e))
    except OSError as e:  # the output folder cannot be made (a full disk, no permission)
        return failed("failed", f"{out}: cannot create the output folder ({e.strerror or e})")
    except KeyboardInterrupt as e:  # in-process batch: the pipeline closes its outputs; say so, then go on up
        wait_for_threads(prefix="stip-rt-")
        e.video_result = failed(  # type: ignore[attr-defined]  # for run_batch's report (interrupted_result)
            "interrupted", "interrupted; not done", "outputs are complete up to the last frame written"
        )
        raise
    finally:
        finished.set()
    if _STOP.is_set():
        frames = f"interrupted after {stats.frames} frames; not done"
        return failed("interrupted", frames, "outputs complete up to there")
    (out / DONE).unlink(missing_ok=True)  # from here on the folder holds this run's outputs, not the earlier ones
    stale = [n for n in earlier or () if n not in names]  # e.g. a format this run does not write
    earlier = None  # a failure from here on publishes what is left, as for a first run
    problem = _publish(out, names) or _remove(out, stale)
    if problem:
        return failed("failed", problem)
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
        "outputs": names,
        "input": input_stamp(source),
        "config": marker_config(config),
    }
    write_done(out, marker)  # last and atomic: a done.json always means complete outputs
    return VideoResult(
        source, "done", stats.frames, stats.people, stats.tracks,
        seconds=seconds, fps=stats.fps, out_dir=str(out), device=device,
    )  # fmt: skip


def interrupted_result(e: KeyboardInterrupt, source: str, video_dir: str, device: str) -> VideoResult:
    """What :func:`process_video` said of the video a ``KeyboardInterrupt`` ended (or a plain
    ``interrupted`` result when the interrupt came from elsewhere)."""
    result = getattr(e, "video_result", None)
    if isinstance(result, VideoResult):
        return result
    return VideoResult(source, "interrupted", out_dir=video_dir, device=device, error="interrupted; not done")


def _final_names(message: str, stage: Path, out: Path) -> str:
    """``message`` with the staging folder ``out/.partial`` replaced by ``out``: the paths the user
    asked for (the staging folder is gone once the video ends)."""
    for staged, final in ((str(stage), str(out)), (os.path.abspath(stage), os.path.abspath(out))):
        message = message.replace(staged, final)
    return message


def _naming_the_video(source: str, message: str) -> str:
    """``message`` led by the video it is about, unless it names it already."""
    return message if source in message else f"{source}: {message}"


def _remove(out: Path, names: Sequence[str]) -> str | None:
    """Remove the outputs ``names`` of an earlier run from ``out`` (files, or OpenPose folders).

    Returns:
        None, or one line naming the output that could not be removed.
    """
    for name in names:
        path = out / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as e:
            return f"{path}: cannot remove this output of the earlier run ({e.strerror or e})"
    return None


def _publish(out: Path, names: Sequence[str]) -> str | None:
    """Move the outputs ``names`` from ``out/.partial/`` to ``out/`` (over older ones) and remove the folder.

    Returns:
        None, or one line naming the output that could not be moved (e.g. a full disk).
    """
    stage = out / PARTIAL
    for name in names:
        src, dst = stage / name, out / name
        if not src.exists():
            continue
        try:
            if dst.is_dir() and not dst.is_symlink():  # an OpenPose folder of an earlier run
                shutil.rmtree(dst)
            os.replace(src, dst)
        except OSError as e:
            return f"{dst}: cannot move the finished output into place ({e.strerror or e})"
    shutil.rmtree(stage, ignore_errors=True)
    return None


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
