"""The flags every verb that runs a model shares, and the one way they become a :class:`RunConfig`.

Flags default to None ("not given"), so that only what the user typed overrides ``--config FILE``;
the defaults shown in ``--help`` are those of :class:`~stip_rt.run_config.RunConfig`. Each flag's
``dest`` is an option name of :data:`stip_rt.run_load.OPTIONS` (``track_frames`` takes the same
names, the viewer fills the same fields), and ``--set`` is applied last.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..run_config import RunConfig
from ..runtime.config import BACKENDS, PRECISIONS

_D = RunConfig()

#: dests of :func:`add_model_options`, :func:`add_run_options` and :func:`add_track_options`.
MODEL_DESTS = ("model", "weights", "flip_test", "backend", "device", "precision")
RUN_DESTS = (*MODEL_DESTS, "detector", "detector_weights", "detections", "det_every", "tracker", "smooth")
TRACK_DESTS = ("start", "max_frames", "live", "out", "video", "trails", "save", "save_dir", "name")


def add_config_options(p: argparse.ArgumentParser, *, print_config: bool = True) -> None:
    """``--config FILE``, ``--set KEY=VALUE`` (repeatable) and ``--print-config``."""
    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="FILE", help="run configuration YAML (differences from `stip-rt config`)")
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key of the run configuration, e.g. --set track.min_hits=3 "
        "--set detect.rtmdet.score_threshold=0.5 (see `stip-rt config`)",
    )
    if print_config:
        g.add_argument("--print-config", action="store_true", help="print the effective configuration and exit")


def add_model_options(p: argparse.ArgumentParser, *, model_help: str | None = None) -> None:
    """Pose model and runtime flags (every verb that runs the pose network)."""
    g = p.add_argument_group("pose model")
    g.add_argument(
        "-m",
        "--model",
        "--pose",
        dest="model",
        metavar="NAME",
        help=model_help or f"pose model: zoo name or YAML; 'none' for box-only tracking (default: {_D.pose.model})",
    )
    g.add_argument("-w", "--weights", metavar="PATH", help="pose checkpoint, or 'random' (default: the weights cache)")
    g.add_argument(
        "--flip-test",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"also infer the mirrored crops (slower, a little more accurate; default: {_D.pose.flip_test})",
    )
    g.add_argument(  # the old spelling of --no-flip-test
        "--no-flip", dest="flip_test", action="store_const", const=False, default=None, help=argparse.SUPPRESS
    )
    g = p.add_argument_group("runtime")
    g.add_argument("-b", "--backend", help=f"{', '.join(BACKENDS)} (default: {_D.runtime.backend})")
    g.add_argument("--device", help=f"auto, cpu, cuda, cuda:N (default: {_D.runtime.device})")
    g.add_argument("--precision", help=f"{', '.join(PRECISIONS)} (default: {_D.runtime.precision})")


def add_run_options(p: argparse.ArgumentParser, *, print_config: bool = True) -> None:
    """Model, detector, backend and tracker flags shared by ``track``, ``batch`` and ``config``."""
    add_model_options(p)
    g = p.add_argument_group("detection")
    g.add_argument("-d", "--detector", metavar="NAME", help=f"person detector (default: {_D.detect.model})")
    g.add_argument("--detector-weights", metavar="PATH", help="detector checkpoint, or 'random'")
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
        metavar="N",
        help="run the detector every N-th frame; boxes from the previous tracks in between "
        f"(default: {_D.detect.interval.every})",
    )
    g = p.add_argument_group("tracking")
    g.add_argument("-t", "--tracker", metavar="YAML", help="tracker settings file (the `track` keys that differ)")
    g.add_argument(
        "--smooth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"keypoint smoothing (default: {_D.track.smoothing.enabled})",
    )
    add_config_options(p, print_config=print_config)


def add_track_options(p: argparse.ArgumentParser) -> None:
    """Frames and outputs of one source (``track``, ``config``)."""
    g = p.add_argument_group("frames")
    g.add_argument("-s", "--start", type=int, metavar="N", help="first frame (0-based)")
    g.add_argument("-N", "--max-frames", type=int, metavar="N", help="stop after N frames")
    g.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop frames when behind (default: cameras and streams are live, files are not)",
    )
    g = p.add_argument_group("outputs")
    g.add_argument(
        "-o",
        "--out",
        action="append",
        metavar="FILE",
        help="write tracks; format from the extension (.json .jsonl .csv .coco.json .txt (MOT), "
        "a folder for OpenPose JSON); repeatable",
    )
    g.add_argument("--video", metavar="OUT.mp4", help="write the annotated video")
    g.add_argument(
        "--trails",
        type=int,
        metavar="N",
        help=f"trajectory trails on the annotated video: last N frames of each track (default: {_D.outputs.trails})",
    )
    g.add_argument(
        "--save",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="without --out and --video, write the tracks (JSONL) and the annotated video to a new folder "
        f"<save-dir>/<name>/ (default: {_D.outputs.save}); --no-save writes nothing",
    )
    g.add_argument(
        "--save-dir",
        metavar="DIR",
        help=f"the folder of those runs; each run gets a new sub-folder (default: {_D.outputs.save_dir})",
    )
    g.add_argument(
        "--name",
        metavar="NAME",
        help="the run's sub-folder: NAME, else NAME2, NAME3... (default: the source's name, e.g. 'vtest', 'camera0')",
    )


def config_from_args(
    args: argparse.Namespace, dests: Sequence[str], check_source: bool = False, **extra: Any
) -> RunConfig:
    """The :class:`RunConfig` the flags describe: defaults, ``--config``, the flags given, ``--set``.

    Args:
        args: parsed flags (``config`` and ``overrides`` as :func:`add_config_options` makes them).
        dests: the option names this verb has (see the ``*_DESTS`` tuples).
        check_source: also check that a local source exists (``load_run_config``).
        **extra: further options (e.g. ``source``).

    Raises:
        ConfigError: an unknown key or a bad value, naming the flag or ``--set`` item.
        SourceError: with ``check_source``, the source is missing (and any missing model file).
    """
    from ..run_load import load_run_config

    options = {d: getattr(args, d, None) for d in dests}
    options.update(extra)
    flags = {d: "--" + d.replace("_", "-") for d in dests}
    verb = getattr(args, "verb", None) or "stip-rt"
    return load_run_config(
        getattr(args, "config", None),
        getattr(args, "overrides", []) or [],
        origin=f"stip-rt {verb}",
        flags=flags,
        check_source=check_source,
        **options,
    )
