"""The Python face of ``stip-rt track``: :func:`track_frames` (a :class:`TrackRun`), and :func:`track_config`,
which builds the same :class:`~stip_rt.run_config.RunConfig` without running anything; :func:`save_outputs`,
the default outputs of ``stip-rt track`` (a new folder under ``runs/track/``)."""

from __future__ import annotations

import dataclasses
import logging
import os
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .io.base import Sink, sink_items
from .io.source_config import redact_credentials, source_stem
from .run_config import OutputsConfig, RunConfig
from .run_load import load_run_config
from .types import FrameResult, RunInfo

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .pipeline_stats import PipelineStats

ORIGIN = "stip_rt.track_frames()"

#: What ``sinks=`` takes: output paths (format from the suffix) and/or sink objects, or one of them.
SinksArg = Sink | str | os.PathLike[str] | Sequence[Sink | str | os.PathLike[str]]


def _split_sinks(sinks: SinksArg) -> tuple[list[str], list[Sink]]:
    """(output paths, sink objects) of ``sinks``: a sink or a path, or an iterable of them (:func:`sink_items`)."""
    items = sink_items(sinks, ORIGIN)
    return [s for s in items if isinstance(s, str)], [s for s in items if not isinstance(s, str)]


def new_run_folder(root: str | os.PathLike[str], name: str) -> Path:
    """Create and return a new folder ``root/name``, else ``root/name2``, ``root/name3``... (never an existing one).

    Raises:
        ConfigError: ``root`` cannot be created or written.
    """
    base = Path(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
        for i in range(1, 100000):
            folder = base / (name if i == 1 else f"{name}{i}")
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return folder
    except OSError as e:
        raise ConfigError(f"outputs.save_dir {root}: cannot create a run folder there ({e.strerror or e})") from e
    raise ConfigError(f"outputs.save_dir {root}: no free folder name for '{name}'")


def save_outputs(config: RunConfig) -> tuple[RunConfig, Path | None]:
    """The default outputs of ``stip-rt track``: when ``outputs.save`` is on and neither ``outputs.files``
    nor ``outputs.video`` is given, a new folder ``<save_dir>/<name>`` (created) with ``<name>.jsonl``
    and the annotated ``<name>.mp4``.

    Returns:
        (the config with those outputs, the new folder) or (``config`` unchanged, None).

    Raises:
        ConfigError: the folder cannot be created.
    """
    out = config.outputs
    if not out.save or out.files or out.video or config.source.uri is None:
        return config, None
    stem = out.name or source_stem(config.source.uri)
    folder = new_run_folder(out.save_dir, stem)
    outputs = dataclasses.replace(out, files=(str(folder / f"{stem}.jsonl"),), video=str(folder / f"{stem}.mp4"))
    return dataclasses.replace(config, outputs=outputs), folder


def track_config(
    source: str | int | os.PathLike[str] | None = None,
    *,
    sinks: SinksArg = (),
    config_file: str | Path | None = None,
    overrides: str | Sequence[str] = (),
    **options: Any,
) -> RunConfig:
    """The run configuration :func:`track_frames` would use, validated, with nothing opened.

    Args:
        source: video file, stream URL, camera index, image folder or glob (``source.uri``).
        sinks: output paths (added to ``outputs.files``; the format follows the suffix) and/or sink objects.
        config_file: a YAML tree like ``stip_rt/defaults.yaml`` (differences only).
        overrides: ``a.b=value`` items, as ``--set`` (one item may be given alone, as a string).
        **options: option names of :data:`stip_rt.run_load.OPTIONS` (``pose``, ``weights``, ``detections``,
            ``det_every``, ``max_frames``...), a mapping for any branch (``track={"min_hits": 1}``,
            ``tracker={...}``, ``detect={"rtmdet": {...}}``), or ``tracker="my_tracker.yaml"``.

    Raises:
        ConfigError: an unknown option or key (with a suggestion), a wrong type or a value out of range,
            or a ``source`` that is not a path, URL or camera index (e.g. a numpy array).
    """
    return _config("stip_rt.track_config()", source, sinks, config_file, overrides, options)


def _config(
    origin: str,
    source: object,
    sinks: SinksArg,
    config_file: str | Path | None,
    overrides: str | Sequence[str],
    options: dict[str, Any],
    check_source: bool = False,
) -> RunConfig:
    """:func:`track_config`, its messages naming ``origin``; ``check_source``: a missing local source is
    a :class:`~stip_rt.errors.SourceError` (a ``stat``, nothing opened)."""
    paths, _ = _split_sinks(sinks)
    if paths:
        out = options.get("out")
        given = [] if out is None else [str(out)] if isinstance(out, str | os.PathLike) else [str(o) for o in out]
        options["out"] = given + paths
    if source is not None:
        options["source"] = _source_text(source, origin)
    items = [overrides] if isinstance(overrides, str) else list(overrides)  # a str alone is one item, not letters
    return load_run_config(config_file, items, origin=origin, check_source=check_source, **options)


def _source_text(source: object, origin: str) -> str:
    """``source.uri`` for ``source``: a str, a path or a camera index.

    Raises:
        ConfigError: anything else (frames in memory, a list of files...), naming its type.
    """
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(source)
    if isinstance(source, int) and not isinstance(source, bool):
        return str(source)
    kind = type(source)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    raise ConfigError(
        f"{origin} source: expected a video file, stream URL, camera index, image folder or glob (a str, a path "
        f"or an int), got a {name}; for frames already in memory, write them to a folder of images, or give "
        "stip_rt.pipeline.Pipeline your own source (parts=PipelineParts(...))"
    )


def open_outputs(outputs: OutputsConfig) -> list[Sink]:
    """Sinks for ``outputs.files`` and ``outputs.video`` (opened for writing when the run starts).

    Raises:
        SinkError: an output whose format cannot be told from its name.
    """
    from .io.draw import Trails
    from .io.sinks import open_sink
    from .io.video_sink import VideoSink

    sinks = [open_sink(path) for path in outputs.files]
    if outputs.video:
        video = open_sink(outputs.video)
        if outputs.trails and isinstance(video, VideoSink):
            video.trails = Trails(outputs.trails)
        sinks.append(video)
    elif outputs.trails:
        log.warning("trails (%d frames) are drawn on the annotated video, and this run writes none (--video)",
                    outputs.trails)  # fmt: skip
    return sinks


class TrackRun(Iterator[FrameResult]):
    """The run :func:`track_frames` returns: an iterator of :class:`FrameResult` that starts the
    run on the first ``next()``, and a context manager that stops it on exit.

    Leaving a ``with`` block, :meth:`close` or dropping the object stops the run: the stages stop,
    the frames already tracked are written and the sinks closed. A run whose object is kept after
    the loop stops when the thread that read it ends (at the latest when the script ends).

    Attributes:
        pipeline: the :class:`~stip_rt.pipeline.Pipeline` behind it (``pipeline.stats()``,
            ``pipeline.parts.run`` once prepared).

    Example::

        run = stip_rt.track_frames("video.mp4", pose="none", detections="gt.txt")
        print(run.info.source.width, run.info.schema)  # prepares the run (source opened, models built)
        for result in run:
            ...
        print(run.stats())
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._results: Iterator[FrameResult] | None = None  # the pipeline's own iterator, from the first next()
        self._closed = False
        self._stop = weakref.finalize(self, pipeline.stop)  # dropped unfinished: stop the run

    def __next__(self) -> FrameResult:
        """The next frame's result (starting the run on the first call).

        Raises:
            StopIteration: the source has ended, or the run was closed.
            StipError: the run's error, after everything computed before it was written.
        """
        if self._closed:
            if self.pipeline.running:  # close() on another thread is still stopping it: let the sinks finish
                self.pipeline.wait(self.pipeline.config.queues.join_timeout_s)  # (may raise the run's error)
            raise StopIteration
        results = self._results  # a local: close() from another thread may drop the attribute
        if results is None:
            results = self._results = iter(self.pipeline)
        try:
            return next(results)
        except ConfigError:
            if self._closed:  # close() from another thread while this first next() was preparing the run
                raise StopIteration from None
            raise

    @property
    def info(self) -> RunInfo:
        """What the run reads and uses: the source (size, fps, frame count), the keypoint schema (None when
        box-only), the models, backend and device. Prepares the run if it is not yet (as ``with`` does).

        Raises:
            StipError: a source, model, detector or sink cannot be opened; ConfigError: the run was closed
                before it was prepared (after a run, ``info`` stays readable).
        """
        parts = self.pipeline.parts  # once built, also after the run ended (prepare() refuses a stopped run)
        return parts.run if parts is not None else self.pipeline.prepare().run

    def stats(self) -> PipelineStats:
        """Figures of the run so far (frames, people, tracks, fps per stage, latency); any time, any thread."""
        return self.pipeline.stats()

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._results is None:
            state = "not started"
        else:
            state = "running" if self.pipeline.running else "ended"
        uri = redact_credentials(str(self.pipeline.config.source.uri))
        return f"<TrackRun {uri!r}: {state}, {self.pipeline.stats().frames} frames>"

    def close(self) -> None:
        """Stop the run (the frames already tracked are written, the sinks closed); idempotent, any thread."""
        self._closed = True
        self._stop()
        self._results = None  # its own clean-up (stop() again) runs when it is collected

    def __enter__(self) -> TrackRun:
        """Prepare the run (models built, sinks opened: their errors surface here) without starting it.

        Raises:
            StipError: a source, model, detector or sink cannot be opened (nothing is left open).
        """
        self.pipeline.prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track_frames(
    source: str | int | os.PathLike[str] | None = None,
    *,
    sinks: SinksArg = (),
    config_file: str | Path | None = None,
    overrides: str | Sequence[str] = (),
    **options: Any,
) -> TrackRun:
    """Track the people in ``source``: the Python face of ``stip-rt track``.

    Example::

        for result in stip_rt.track_frames("video.mp4", pose="none", detections="gt.txt", sinks=["out.csv"]):
            print(result.index, result.tracks.ids, result.tracks.boxes)

        with stip_rt.track_frames("video.mp4", pose="none", detections="gt.txt") as frames:
            first = next(frames)  # leaving the block stops the run

    Args:
        source: a video file, stream URL, camera index, image folder or glob (a str, a path or an int);
            frames already in memory are not a source (see :class:`~stip_rt.pipeline.Pipeline`).
        sinks: output paths (the format follows the suffix: ``.jsonl``, ``.csv``, ``.json``,
            ``.coco.json``, ``.txt`` (MOT), ``.mp4``...) and/or sink objects such as
            ``stip_rt.io.sinks.open_sink("out.jsonl")``; a list, or one alone.
        config_file: a YAML tree like ``stip_rt/defaults.yaml`` (differences only).
        overrides: ``a.b=value`` items, as ``--set`` (one item may be given alone, as a string).
        **options: the CLI's option names (all: :data:`stip_rt.run_load.OPTIONS`), e.g.
            ``pose`` (a zoo model name, a model file, ``auto`` or ``none`` for box-only tracking),
            ``weights`` (a checkpoint or ``random``), ``detections`` (a detections file instead of the
            detector), ``detector``, ``det_every``, ``start``, ``max_frames``, ``backend``, ``device``,
            ``precision``, ``flip_test``, ``video`` (an annotated video), ``with_images`` (the frame in
            ``result.image``); or a mapping for any branch of the configuration
            (``track={"min_hits": 1}``, ``tracker=...`` as an alias, ``detect={"rtmdet": {...}}``), or
            ``tracker="my_tracker.yaml"``. ``stip-rt config`` prints every key and its default.

    Returns:
        A :class:`TrackRun`: iterating it yields one :class:`~stip_rt.types.FrameResult` per frame, in
        order (the run starts on the first ``next()``; each result's arrays are its own: keeping them
        is safe); breaking out of ``for result in track_frames(...)``, ``close()`` or the end of a
        ``with`` block stops the run (see :class:`TrackRun`); ``info`` and ``stats()`` describe it.

    Raises:
        ConfigError: an unknown option (with a suggestion), a wrong type or value, a ``source`` of
            another type, raised by the call itself (nothing is opened before the first ``next()``,
            ``info`` or the ``with``).
        SourceError: a local source file, folder or glob that does not exist (a ``stat``, by the call).
        SinkError: an output whose format cannot be told from its name.
        StipError: (from ``next()``) the run's error, after everything computed before it was written.
    """
    from .pipeline import Pipeline

    config = _config(ORIGIN, source, sinks, config_file, overrides, options, check_source=True)
    _, objects = _split_sinks(sinks)
    return TrackRun(Pipeline(config, [*open_outputs(config.outputs), *objects]))


__all__ = ["TrackRun", "new_run_folder", "open_outputs", "save_outputs", "source_stem", "track_config", "track_frames"]
