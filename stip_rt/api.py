"""The Python face of ``stip-rt track``: :func:`track_frames`, and :func:`track_config`, which builds
the same :class:`~stip_rt.run_config.RunConfig` without running anything."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .io.base import Sink
from .run_config import OutputsConfig, RunConfig
from .run_load import load_run_config
from .types import FrameResult

ORIGIN = "stip_rt.track_frames()"


def _split_sinks(sinks: Sequence[Sink | str | os.PathLike[str]]) -> tuple[list[str], list[Sink]]:
    paths = [str(s) for s in sinks if isinstance(s, str | os.PathLike)]
    objects = [s for s in sinks if not isinstance(s, str | os.PathLike)]
    return paths, objects


def track_config(
    source: str | int | os.PathLike[str] | None = None,
    *,
    sinks: Sequence[Sink | str | os.PathLike[str]] = (),
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    **options: Any,
) -> RunConfig:
    """The run configuration :func:`track_frames` would use, validated, with nothing opened.

    Args:
        source: video file, stream URL, camera index, image folder or glob (``source.uri``).
        sinks: output paths (added to ``outputs.files``; the format follows the suffix) and/or sink objects.
        config_file: a YAML tree like ``stip_rt/defaults.yaml`` (differences only).
        overrides: ``a.b=value`` items, as ``--set``.
        **options: option names of :data:`stip_rt.run_load.OPTIONS` (``pose``, ``weights``, ``detections``,
            ``det_every``, ``max_frames``...), a mapping for any branch (``track={"min_hits": 1}``,
            ``tracker={...}``, ``detect={"rtmdet": {...}}``), or ``tracker="my_tracker.yaml"``.

    Raises:
        ConfigError: an unknown option or key (with a suggestion), a wrong type or a value out of range.
    """
    paths, _ = _split_sinks(sinks)
    if paths:
        out = options.get("out")
        given = [] if out is None else [str(out)] if isinstance(out, str | os.PathLike) else [str(o) for o in out]
        options["out"] = given + paths
    if source is not None:
        options["source"] = str(source)
    return load_run_config(config_file, overrides, origin=ORIGIN, **options)


def open_outputs(outputs: OutputsConfig) -> list[Sink]:
    """Sinks for ``outputs.files`` and ``outputs.video`` (opened for writing when the run starts).

    Raises:
        SinkError: an output whose format cannot be told from its name.
    """
    from .io.sinks import open_sink

    sinks = [open_sink(path) for path in outputs.files]
    if outputs.video:
        sinks.append(open_sink(outputs.video))
    return sinks


def track_frames(
    source: str | int | os.PathLike[str] | None = None,
    *,
    sinks: Sequence[Sink | str | os.PathLike[str]] = (),
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    **options: Any,
) -> Iterator[FrameResult]:
    """Track the people in ``source``: the Python face of ``stip-rt track``.

    Example::

        for result in stip_rt.track_frames("video.mp4", pose="none", detections="gt.txt", sinks=["out.csv"]):
            print(result.index, result.tracks.ids)

    Args: as :func:`track_config` (``sinks`` may mix paths and sink objects such as
        ``stip_rt.io.sinks.open_sink("out.jsonl")``).

    Yields:
        One :class:`FrameResult` per frame, in order.

    Raises:
        ConfigError: an unknown option (with a suggestion), raised on the first ``next()``.
        StipError: the run's error, after everything computed before it was written.
    """
    from .pipeline import Pipeline

    config = track_config(source, sinks=sinks, config_file=config_file, overrides=overrides, **options)
    _, objects = _split_sinks(sinks)
    with Pipeline(config, [*open_outputs(config.outputs), *objects]) as pipeline:
        yield from pipeline


__all__ = ["open_outputs", "track_config", "track_frames"]
