"""YAML → frozen dataclass, with unknown keys rejected and close matches suggested.

Every component keeps its defaults in a ``@dataclass(frozen=True)``; YAML files and
``--set key=value`` overrides only state differences.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError, did_you_mean

T = TypeVar("T")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping holding a key twice (YAML lets the last one win
    silently, so a setting given twice in a file would be lost without a word)."""


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping (its message says where, in one line)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in first_line:
            raise _DuplicateKey(f"line {line}: the key '{key}' is given twice (first on line {first_line[key]})")
        first_line[key] = line
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def yaml_error_text(e: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: ``line L, column C: <problem> (<context>)``, the position
    1-based (PyYAML's own text spans several lines and names the stream ``<unicode string>``)."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is None or not problem:
        return " ".join(str(e).split())
    context = getattr(e, "context", None)
    context_mark = getattr(e, "context_mark", None)
    where = ""
    if context and context_mark is not None and context_mark.line != mark.line:
        where = f" on line {context_mark.line + 1}"
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f" ({context}{where})" if context else "")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (a key given twice in one mapping is an error).

    Raises:
        ConfigError: missing or unreadable file (a binary file too), invalid YAML (one line with the
            line and column), a duplicate key, or not a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {p}: file not found") from None
    except OSError as e:
        raise ConfigError(f"config {p}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {p}: not a YAML text file (byte {e.start} is not UTF-8)") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except _DuplicateKey as e:
        raise ConfigError(f"config {p}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config {p}: invalid YAML at {yaml_error_text(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {p}: expected a mapping at the top, got {type(data).__name__}")
    return data


def convert_value(tp: Any, value: Any, where: str) -> Any:
    """``value`` as the type hint ``tp`` says (nested dataclasses from mappings, lists to tuples).

    Raises:
        ConfigError: the value does not fit, with ``where`` at the start of the message.
    """
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return convert_value(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(convert_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Build the frozen dataclass ``cls`` from a mapping.

    Args:
        cls: a dataclass type.
        data: keys are field names; nested dataclasses take nested mappings.
        source: where the data came from (file path or description), used in messages.

    Raises:
        ConfigError: unknown key (with a suggestion), or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{key}'{did_you_mean(str(key), fields)}")
        kwargs[key] = convert_value(hints[key], value, f"{source}: '{key}'")
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{source}: {e}") from None
    except ValueError as e:  # __post_init__ validation
        raise ConfigError(f"{source}: {e}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as plain dicts/lists (for ``--print-config`` and saving)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` / ``a.b=value`` overrides; values are parsed with ``yaml.safe_load``.

    Raises:
        ConfigError: an override without ``=``.
    """
    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else None
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            child = node.get(p)
            node[p] = dict(child) if isinstance(child, dict) else {}
            node = node[p]
        node[parts[-1]] = value
    return out
