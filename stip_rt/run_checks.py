"""Ranges, names and cross-field rules of a :class:`~stip_rt.run_config.RunConfig` (torch-free).

Types are checked while the tree is built (:mod:`stip_rt.run_load`) and each component's
``__post_init__`` checks its own invariants; this module adds what those do not know: sane
ranges, the library's own lists of names (backends, devices, precisions, detectors, zoo models),
that given files exist (a ``stat``, nothing is opened), and rules between branches.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .detect.config import DETECTORS
from .errors import ConfigError, StipError, did_you_mean
from .io.formats import OUTPUT_FORMATS
from .io.sinks import sink_kind
from .paths import zoo_names
from .run_config import RunConfig
from .runtime.config import BACKENDS, DEVICES, PRECISIONS

#: ``runtime.cuda_fast`` choices.
CUDA_FAST_PRECISIONS = ("fp16", "bf16", "fp32")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: ``pose.model`` values besides zoo names and model files.
POSE_SPECIAL = ("auto", "none")
#: ``pose.score_from`` choices.
SCORE_FROM = ("auto", "keypoints", "box")

Check = Callable[[Any], str | None]  # the problem with a value, or None


def _range(lo: float | None = None, hi: float | None = None, *, above: float | None = None) -> Check:
    def check(v: Any) -> str | None:
        if v is None:
            return None
        if above is not None and not v > above:
            return f"expected a value > {above:g}"
        if lo is not None and v < lo:
            return f"expected a value >= {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
        if hi is not None and v > hi:
            return f"expected a value <= {hi:g}" + (f" and >= {lo:g}" if lo is not None else "")
        return None

    return check


def _one_of(names: tuple[str, ...]) -> Check:
    def check(v: Any) -> str | None:
        return None if v in names else f"not one of {', '.join(names)}{did_you_mean(str(v), names)}"

    return check


def _device(v: str) -> str | None:
    if v in DEVICES or re.fullmatch(r"cuda:\d+", v):
        return None
    return f"use {', '.join(DEVICES)} or cuda:N{did_you_mean(v, DEVICES)}"


def _file(v: str | None) -> str | None:
    return None if v is None or Path(v).is_file() else "file not found"


def _weights(v: str | None) -> str | None:
    from .weights import checkpoint_arg

    try:
        checkpoint_arg(v)
    except StipError:
        return "file not found (give a checkpoint path, or 'random')"
    return None


def _pose_model(v: str) -> str | None:
    if v in POSE_SPECIAL:
        return None
    if Path(v).suffix.lower() in (".yaml", ".yml", ".json") or "/" in v or "\\" in v:
        return _file(v)
    names = zoo_names()
    if v in names:
        return None
    return f"not a zoo model, model file, auto or none{_zoo_suggestion(v, names)}"


def _zoo_suggestion(v: str, names: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest zoo name, or the first whose start is closest to ``v``
    (``stip-w32`` and ``hrnet-w33`` are a zoo name's start); else the list of zoo names."""
    hint = did_you_mean(v, names)
    if not hint:
        starts: dict[str, str] = {}
        for name in names:
            starts.setdefault(name[: len(v)], name)
        close = difflib.get_close_matches(v, list(starts), n=1)
        hint = f" (did you mean '{starts[close[0]]}'?)" if close else f"; zoo models: {', '.join(names)}"
    return hint


def _buckets(v: tuple[int, ...]) -> str | None:
    if not v or min(v) < 1 or max(v) > 1024 or list(v) != sorted(set(v)):
        return "expected ascending batch sizes in 1..1024, e.g. [1, 2, 4, 8]"
    return None


def _files(v: tuple[str, ...]) -> str | None:
    return "an empty file name" if any(not f.strip() for f in v) else None


def _folder_name(v: str | None) -> str | None:
    if v is None:
        return None
    if not v.strip() or v.strip() in (".", "..") or "/" in v or "\\" in v:
        return "expected a folder name (no '/'), e.g. 'session1'"
    return None


def _folder(v: str) -> str | None:
    if not v.strip():
        return "an empty folder name"
    return "exists and is not a folder" if Path(v).exists() and not Path(v).is_dir() else None


_PROB = _range(0.0, 1.0)
_SECONDS = _range(hi=86400.0, above=0.0)

#: Dotted key → its check (keys a component already checks completely are left out).
CHECKS: dict[str, Check] = {
    "source.start": _range(0),
    "source.max_frames": _range(1),
    "source.buffer_size": _range(1, 4096),
    "source.image_fps": _range(hi=1000.0, above=0.0),
    "source.open_timeout_s": _SECONDS,
    "source.read_timeout_s": _SECONDS,
    "source.reconnect_retries": _range(0, 10000),
    "source.reconnect_backoff_s": _range(0.0, 3600.0),
    "source.reconnect_backoff_max_s": _range(0.0, 3600.0),
    "source.camera_width": _range(1, 16384),
    "source.camera_height": _range(1, 16384),
    "source.camera_fps": _range(hi=1000.0, above=0.0),
    "detect.model": _one_of(DETECTORS),
    "detect.weights": _weights,
    "detect.detections": _file,
    "detect.interval.every": _range(1, 10000),
    "detect.interval.min_keypoint_score": _PROB,
    "detect.interval.min_visible": _range(1, 1000),
    "detect.rtmdet.input_size": _range(32, 4096),
    "detect.rtmdet.nms_pre": _range(1, 100000),
    "detect.rtmdet.max_per_image": _range(1, 10000),
    "detect.rtmdet.class_index": _range(0, 1000),
    "pose.model": _pose_model,
    "pose.weights": _weights,
    "pose.batch_frames": _range(1, 256),
    "pose.max_crops": _range(1, 4096),
    "pose.in_vis_thre": _PROB,
    "pose.score_from": _one_of(SCORE_FROM),
    "runtime.backend": _one_of(BACKENDS),
    "runtime.device": _device,
    "runtime.precision": _one_of(PRECISIONS),
    "runtime.cuda_fast.precision": _one_of(CUDA_FAST_PRECISIONS),
    "runtime.cuda_fast.buckets": _buckets,
    "runtime.cuda_fast.compile_mode": _one_of(COMPILE_MODES),
    "runtime.cuda_fast.warmup": _range(0, 1000),
    "track.min_hits": _range(1, 10000),
    "track.max_age_s": _range(0.0, 86400.0),
    "track.keypoint_min_score": _PROB,
    "outputs.files": _files,
    "outputs.trails": _range(0, 100000),
    "outputs.save_dir": _folder,
    "outputs.name": _folder_name,
    "queues.size": _range(0, 1024),
    "queues.join_timeout_s": _SECONDS,
}


def get(config: Any, key: str) -> Any:
    """The value at a dotted ``key`` of ``config``."""
    for part in key.split("."):
        config = getattr(config, part)
    return config


#: The keys whose check looks at files (a ``stat``): checked after every other rule, and reported
#: together with each other and with a missing source (:func:`check_run_config` ``check_source``).
FILE_KEYS = ("detect.weights", "detect.detections", "pose.model", "pose.weights")


def check_run_config(config: RunConfig, origins: Mapping[str, str] | None = None, check_source: bool = False) -> None:
    """Check ranges, names and cross-field rules, then the files the config names.

    Args:
        config: the tree.
        origins: dotted key → where its value came from (``--set a=b``, ``config FILE``...);
            keys not listed are defaults.
        check_source: also check that ``source.uri``, when a local path, exists (a ``stat``, or a
            listing for a folder or glob: :func:`~stip_rt.io.source_paths.check_source`; nothing is
            opened). A run's inputs are then all checked before any model file is looked for.

    Raises:
        ConfigError: the first problem, naming the key, the value and its origin. Files are
            checked last, all of them: a missing source and missing model files are named in one
            message (``in.mp4: file not found; also: --weights w.pth: 'pose.weights' = ...``).
        SourceError: the source is missing (with the missing model files, if any, appended).
    """
    where = dict(origins or {})

    def problem_of(key: str, problem: str, *others: str) -> ConfigError:
        source = where.get(key) or next((where[k] for k in others if k in where), "defaults")
        value = get(config, key)
        shown = value if isinstance(value, str) else repr(value)
        return ConfigError(f"{source}: '{key}' = {shown}: {problem}")

    def fail(key: str, problem: str, *others: str) -> None:
        raise problem_of(key, problem, *others)

    for key, check in CHECKS.items():
        problem = check(get(config, key)) if key not in FILE_KEYS else None
        if problem:
            fail(key, problem)
    rt = config.runtime
    if rt.backend in ("tensorrt", "cuda-fast") and rt.device == "cpu":
        fail("runtime.backend", f"needs an NVIDIA GPU, but runtime.device is '{rt.device}'", "runtime.device")
    s = config.source
    if s.reconnect_backoff_max_s < s.reconnect_backoff_s:
        fail("source.reconnect_backoff_max_s", f"below source.reconnect_backoff_s ({s.reconnect_backoff_s:g})")
    if (s.camera_width is None) != (s.camera_height is None):
        fail("source.camera_width", "give source.camera_width and source.camera_height together",
             "source.camera_height")
    outputs = _outputs_problem(config)
    if outputs:
        fail(outputs[0], outputs[1], "outputs.files", "outputs.video")
    missing: list[StipError] = []
    if check_source and config.source.uri is not None:
        from .io.source_paths import check_source as check_path

        try:
            check_path(config.source.uri)
        except StipError as e:
            missing.append(e)
    for key in FILE_KEYS:
        problem = CHECKS[key](get(config, key))
        if problem:
            missing.append(problem_of(key, problem))
    if missing:
        first = missing[0]
        first.args = ("; also: ".join(str(e) for e in missing),)
        raise first


def _outputs_problem(config: RunConfig) -> tuple[str, str] | None:
    """(key, problem) when two outputs are one file, an output's format is unknown, or a box-only run
    is asked for a keypoint format.

    Checked before any output is opened, so such a run touches no file."""
    out = config.outputs
    named = [("outputs.files", f) for f in out.files] + ([("outputs.video", out.video)] if out.video else [])
    seen: set[str] = set()
    for key, name in named:
        same = os.path.normcase(os.path.abspath(os.path.expanduser(name)))
        if same in seen:
            return key, f"'{name}' is named twice; each output needs a file of its own"
        seen.add(same)
    for name in out.files:
        try:
            fmt = OUTPUT_FORMATS[sink_kind(name)]
        except StipError as e:
            return "outputs.files", str(e)
        if fmt.needs_keypoints and config.pose.model == "none":
            return "outputs.files", f"{name}: {fmt.description} need keypoints, but pose.model is none (boxes only)"
    return None


__all__ = ["CHECKS", "FILE_KEYS", "SCORE_FROM", "check_run_config", "get"]
