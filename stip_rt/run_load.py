"""Build a :class:`~stip_rt.run_config.RunConfig`: defaults in code, then an optional ``--config FILE``,
then options (CLI flags, ``track_frames`` keywords, viewer fields), then ``--set a.b=v``; checked whole.

Options are short names for keys of the tree (:data:`OPTIONS`, the one mapping every entry point
uses); a branch may also be given as a mapping (``track={"min_hits": 1}``). Old spellings keep
working: ``tracker.*`` is ``track.*`` and ``detector.*`` is ``detect.rtmdet.*`` (``--set
detector.score_threshold=0.5``); ``tracker=FILE`` reads a tracker YAML into ``track``.

Every message names the full dotted key, the value and where it came from (the file, the
``--set`` item, the flag). Nothing here opens a source or builds a model, and nothing imports torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import types
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from .config import convert_value, read_yaml, to_dict
from .errors import ConfigError
from .run_config import RunConfig

logger = logging.getLogger(__name__)

#: Option name (CLI flag without dashes, ``track_frames`` keyword, viewer field) → key of the tree.
OPTIONS: dict[str, str] = {
    "source": "source.uri",
    "start": "source.start",
    "max_frames": "source.max_frames",
    "live": "source.live",
    "detector": "detect.model",
    "detector_weights": "detect.weights",
    "detections": "detect.detections",
    "det_every": "detect.interval.every",
    "model": "pose.model",
    "pose": "pose.model",
    "weights": "pose.weights",
    "flip_test": "pose.flip_test",
    "batch_frames": "pose.batch_frames",
    "score_from": "pose.score_from",
    "backend": "runtime.backend",
    "device": "runtime.device",
    "precision": "runtime.precision",
    "smooth": "track.smoothing.enabled",
    "out": "outputs.files",
    "video": "outputs.video",
    "trails": "outputs.trails",
    "with_images": "outputs.with_images",
    "save": "outputs.save",
    "save_dir": "outputs.save_dir",
    "name": "outputs.name",
    "queue_size": "queues.size",
    "join_timeout_s": "queues.join_timeout_s",
}
#: Old names of branches → where they live now (``tracker.min_hits`` = ``track.min_hits``).
BRANCH_ALIASES: dict[str, str] = {"tracker": "track", "detector": "detect.rtmdet"}
#: Largest integer any setting takes (frame counts, sizes): bigger values are typos.
MAX_INT = 2**31 - 1
DEFAULTS_YAML = "defaults.yaml"


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _walk(cls: type, prefix: str, leaves: dict[str, Any], branches: set[str]) -> None:
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        key = prefix + f.name
        if _is_dataclass_type(tp):
            branches.add(key)
            _walk(tp, key + ".", leaves, branches)
        else:
            leaves[key] = tp


#: Every leaf key of the tree → its type hint; every branch key.
LEAVES: dict[str, Any] = {}
BRANCHES: set[str] = set()
_walk(RunConfig, "", LEAVES, BRANCHES)


@dataclasses.dataclass(frozen=True)
class _Value:
    value: Any
    origin: str  # where it came from, for messages
    raw: str | None = None  # the text of a --set item (a string setting keeps it as written)


def unknown_key_message(origin: str, key: str, canonical: str | None = None) -> str:
    """``<origin>: unknown key 'x' (did you mean 'y'?)`` with the closest key of the tree or option."""
    wanted = canonical or key
    pool = sorted(LEAVES) + sorted(BRANCHES) + sorted(OPTIONS) + sorted(BRANCH_ALIASES)
    branch = wanted.rpartition(".")[0]
    if branch in BRANCHES:  # a known branch: the keys under it (never the branch itself, or an alias of it)
        pool = [k for k in pool if k.startswith(branch + ".")]
    close = difflib.get_close_matches(wanted, pool, n=1, cutoff=0.6)
    if not close:  # the right name under a wrong or missing branch: match the last part
        last = wanted.rsplit(".", 1)[-1]
        tails = {k.rsplit(".", 1)[-1]: k for k in sorted(LEAVES, reverse=True)}
        hit = difflib.get_close_matches(last, list(tails), n=1, cutoff=0.75)
        close = [tails[hit[0]]] if hit else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{origin}: unknown key '{key}'{hint}; `stip-rt config` lists every key"


def _canonical(key: str) -> str:
    head, _, rest = key.partition(".")
    if rest and head in BRANCH_ALIASES:
        return f"{BRANCH_ALIASES[head]}.{rest}"
    return key


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    return value


def _place(key: str, value: Any, origin: str, out: dict[str, _Value], raw: str | None = None) -> None:
    """Put ``value`` at ``key`` (a dotted key, an option, or a branch given as a mapping) into ``out``."""
    value = _plain(value)
    if "." not in key and key in BRANCH_ALIASES:
        if isinstance(value, Mapping):
            key = BRANCH_ALIASES[key]
        elif key == "tracker" and value is not None:  # a tracker YAML file
            path = str(value)
            _merge_mapping(read_yaml(path), "track.", f"tracker config {path}", out)
            return
    if "." not in key and key in OPTIONS and not (key in BRANCHES and isinstance(value, Mapping)):
        target = OPTIONS[key]
        if target == "outputs.files" and isinstance(value, str | PathLike):
            value = [value]
        if target == "outputs.files" and isinstance(value, list | tuple):
            value = [str(v) for v in value]
        out[target] = _Value(value, origin, raw)
        return
    canonical = _canonical(key)
    if canonical in BRANCHES:
        if not isinstance(value, Mapping):
            example = next(k for k in LEAVES if k.startswith(canonical + "."))
            raise ConfigError(f"{origin}: '{key}' is a section: give a mapping, or set its keys (e.g. {example}=...)")
        _merge_mapping(value, canonical + ".", origin, out)
        return
    if canonical in LEAVES:
        out[canonical] = _Value(value, origin, raw)
        return
    raise ConfigError(unknown_key_message(origin, key, canonical))


def _merge_mapping(data: Mapping[str, Any], prefix: str, origin: str, out: dict[str, _Value]) -> None:
    for k, v in data.items():
        if not isinstance(k, str):
            raise ConfigError(f"{origin}: key {k!r} under '{prefix.rstrip('.') or 'the top'}' is not a name")
        if prefix:
            branch = prefix.rstrip(".")
            key = f"{branch}.{k}"
            if key not in LEAVES and key not in BRANCHES:
                raise ConfigError(unknown_key_message(origin, key))
            _place(key, v, origin, out)
        else:
            _place(k, v, origin, out)


def parse_override(item: str) -> tuple[str, Any, str]:
    """``a.b=value`` → (key, value parsed as YAML, the value's text).

    Raises:
        ConfigError: no ``=``, an empty key, or a value that is not YAML.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. --set track.min_hits=3")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text  # e.g. a URL with ':' or a path with '[': the text itself
    return key, value, text


def _accepts(tp: Any, kind: type) -> bool:
    if tp is kind:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_accepts(a, kind) for a in typing.get_args(tp))
    return False


def _convert_leaf(key: str, v: _Value) -> Any:
    tp = LEAVES[key]
    value = v.value
    if v.raw is not None and value is not None and not isinstance(value, str) and _accepts(tp, str):
        value = v.raw.strip()  # --set source.uri=0 is the string "0" (camera 0), not the number
    converted = convert_value(tp, value, f"{v.origin}: '{key}'")
    items = converted if isinstance(converted, tuple) else (converted,)
    for x in items:
        if isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_INT:
            raise ConfigError(f"{v.origin}: '{key}' = {value}: out of range (at most {MAX_INT})")
        if isinstance(x, float) and not math.isfinite(x):
            raise ConfigError(f"{v.origin}: '{key}' = {value}: expected a finite number")
    return converted


def _build(default: Any, prefix: str, values: dict[str, Any], origins: dict[str, str]) -> Any:
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(default):
        key = prefix + f.name
        if key in BRANCHES:
            if any(k.startswith(key + ".") for k in values):
                changes[f.name] = _build(getattr(default, f.name), key + ".", values, origins)
        elif key in values:
            changes[f.name] = values[key]
    if not changes:
        return default
    try:
        return dataclasses.replace(default, **changes)
    except (ValueError, TypeError, ConfigError) as e:
        where = sorted({origins[k] for k in values if k.startswith(prefix)}) or ["defaults"]
        raise ConfigError(f"{', '.join(where)}: '{prefix.rstrip('.')}': {e}") from None


def load_run_config(
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    origin: str = "options",
    flags: Mapping[str, str] | None = None,
    check_source: bool = False,
    **options: Any,
) -> RunConfig:
    """The effective run configuration, validated completely (nothing is opened or built).

    Layers, later ones win: the defaults in code; ``config_file`` (a YAML tree like
    ``defaults.yaml``, differences only); ``options`` (names of :data:`OPTIONS`, branch names with a
    mapping such as ``track={"min_hits": 1}``, or dotted keys); ``overrides`` (``a.b=value``).

    Args:
        config_file: YAML file, or None.
        overrides: ``--set`` items; values are YAML (``3``, ``true``, ``[1, 2]``, ``null``).
        origin: how messages name the options (e.g. ``stip_rt.track_frames()``).
        flags: option name → the flag that gave it (e.g. ``det_every`` → ``--det-every``): messages then
            start ``--det-every 0: ...`` (else ``<origin> det_every=0: ...``).
        check_source: also check that ``source.uri`` exists when it is a local path (a ``stat``;
            ``stip-rt track``): a missing source and missing model files are then named together.
        **options: settings; a value of None leaves the key alone (so unset CLI flags change nothing).

    Raises:
        ConfigError: unknown key (with a suggestion), wrong type, value out of range, or settings
            that contradict each other; one message naming the key, the value and its origin.
        SourceError: with ``check_source``, a missing source (and the missing model files, if any).
    """
    from .run_checks import check_run_config

    placed: dict[str, _Value] = {}
    if config_file is not None:
        _merge_mapping(read_yaml(config_file), "", f"config {config_file}", placed)
    names = dict(flags or {})
    tracker_file = options.pop("tracker", None)  # first: the options and --set win over the file
    for name, value in (("tracker", tracker_file), *options.items()):
        if value is None:
            continue
        where = f"{names[name]} {value}" if name in names else f"{origin} {name}={value!r}"
        _place(name, value, where, placed)
    for item in overrides:
        key, value, text = parse_override(item)
        _place(key, value, f"--set {item}", placed, raw=text)
    values = {k: _convert_leaf(k, v) for k, v in placed.items()}
    origins = {k: v.origin for k, v in placed.items()}
    config = _build(RunConfig(), "", values, origins)
    check_run_config(config, origins, check_source)
    return config


def config_yaml(config: RunConfig) -> str:
    """The whole tree as YAML (what ``stip-rt config`` and ``--print-config`` print)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def defaults_text() -> str:
    """The packaged, commented ``defaults.yaml`` (every key, its type and meaning)."""
    return resources.files(__package__).joinpath(DEFAULTS_YAML).read_text(encoding="utf-8")


__all__ = ["BRANCH_ALIASES", "LEAVES", "OPTIONS", "config_yaml", "defaults_text", "load_run_config"]
