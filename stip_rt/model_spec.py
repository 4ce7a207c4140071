"""What a pose model is: :class:`ModelSpec` and its loading from zoo names, YAML/JSON files, dicts,
parity fixtures and ``stip-rt train`` checkpoints (torch-free; building the network is
:func:`stip_rt.models.build_model`).

A model is described by a YAML file in ``models/`` (``models/<name>.yaml``; the file
name is the zoo name), by a YAML path, or by a dict of the same fields: ``arch`` picks the
network, ``net`` holds that network's config, the other keys are :class:`ModelSpec` fields;
fields left out take the defaults (the official STIP W32 settings), and ``num_joints`` /
``heatmap_size`` are derived (:func:`spec_from_mapping`). For example
``models/hrnet-w48-coco-384x288.yaml``::

    arch: hrnet
    input_size: [384, 288]
    net: {widths: [48, 96, 192, 384]}

The fixture format of ``shared/fixtures/official_parity/*.json`` is accepted too
(:func:`spec_from_fixture`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import from_dict, read_yaml, to_dict
from .errors import ConfigError, did_you_mean
from .nn.config import HRNetConfig, PoseResNetConfig, StipConfig
from .paths import models_dir, zoo_names
from .schemas import get_schema

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


Arch = Literal["stip", "hrnet", "simplebaseline"]
Decode = Literal["hrnet", "stip"]
NetConfig = HRNetConfig | StipConfig | PoseResNetConfig

#: ``arch`` name → the network config class it takes under ``net:``.
NET_CONFIGS: dict[str, type[NetConfig]] = {"stip": StipConfig, "hrnet": HRNetConfig, "simplebaseline": PoseResNetConfig}
_ARCH_OF = {cls: arch for arch, cls in NET_CONFIGS.items()}
_DERIVED = ("num_joints", "heatmap_size")  # may be stated in a file, must then match what they derive from
_FLAT_NET_KEYS = ("widths", "num_modules", "num_blocks", "stem_blocks", "up_scale", "depth")  # the flat format


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a pose network and to feed and decode it.

    The architecture is the type of ``net``; the joint count comes from the schema and the heatmap size
    from the input size and the network's stride.

    Attributes:
        name: model name (the zoo name for zoo models, e.g. ``stip-w32-coco-256x192``).
        schema: keypoint schema name, ``'coco17'`` or ``'crowdpose14'`` (:mod:`stip_rt.schemas`);
            sets K (``num_joints``, and the ``num_joints`` of ``net``).
        input_size: crop size (h, w) in pixels, multiples of 32 (256×192 or 384×288).
        net: the network's own config: :class:`~stip_rt.nn.config.StipConfig` (STIPNet: HRNet + SaT/IaP
            heads; default, official W32), :class:`~stip_rt.nn.config.HRNetConfig` (HRNet pose baseline) or
            :class:`~stip_rt.nn.config.PoseResNetConfig` (SimpleBaseline). Its ``num_joints`` is set from
            ``schema``.
        decode: heatmap decoding: ``'hrnet'`` (argmax + quarter-pixel step) or ``'stip'`` (argmax +
            DARK-style refinement, STIP_SPEC §1.6); default: ``'stip'`` for STIPNet, ``'hrnet'`` otherwise.
        pixel_mean: RGB mean of inputs scaled to [0, 1] (ImageNet).
        pixel_std: RGB std of inputs scaled to [0, 1] (ImageNet).
        box_padding: factor applied to the person box (at aspect ratio ``aspect_ratio``) before cropping.
        aspect_ratio: crop width / height that boxes are padded to (0.75 = 192/256).
    """

    name: str = "custom"
    schema: str = "coco17"
    input_size: tuple[int, int] = (256, 192)
    net: NetConfig = field(default_factory=StipConfig)
    decode: Decode = None  # type: ignore[assignment]  # None: resolved from the arch in __post_init__
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    box_padding: float = 1.25
    aspect_ratio: float = 0.75

    def __post_init__(self) -> None:
        if type(self.net) not in _ARCH_OF:
            raise ValueError(f"'net' must be one of {[c.__name__ for c in _ARCH_OF]}, got {type(self.net).__name__}")
        k = get_schema(self.schema).num_keypoints
        if self.num_joints != k:
            object.__setattr__(self, "net", _with_joints(self.net, k))
        if self.decode is None:
            object.__setattr__(self, "decode", "stip" if self.arch == "stip" else "hrnet")
        h, w = self.input_size
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise ValueError(f"'input_size' must be positive multiples of 32 (h, w), got {list(self.input_size)}")

    @property
    def arch(self) -> Arch:
        """``'stip'``, ``'hrnet'`` or ``'simplebaseline'``: the kind of ``net``."""
        return _ARCH_OF[type(self.net)]  # type: ignore[return-value]

    @property
    def num_joints(self) -> int:
        """K, heatmap channels: the schema's joint count."""
        net = self.net.hrnet if isinstance(self.net, StipConfig) else self.net
        return net.num_joints

    @property
    def stride(self) -> float:
        """Input pixels per heatmap pixel (4 for HRNet and SimpleBaseline, 4 / ``up_scale`` = 2 for STIP)."""
        return 4 / self.net.up_scale if isinstance(self.net, StipConfig) else 4.0

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """Output size (h, w): ``input_size / stride``."""
        up = self.net.up_scale if isinstance(self.net, StipConfig) else 1
        return self.input_size[0] // 4 * up, self.input_size[1] // 4 * up

    def network_config(self) -> NetConfig:
        """The network's own frozen config (``net``)."""
        return self.net

    def to_dict(self) -> dict[str, Any]:
        """The spec in the file format (``arch`` + fields, ``net`` nested); :func:`load_spec` reads it back."""
        return {"arch": self.arch, **to_dict(self)}


def _with_joints(net: NetConfig, k: int) -> NetConfig:
    if isinstance(net, StipConfig):
        return dataclasses.replace(net, hrnet=dataclasses.replace(net.hrnet, num_joints=k))
    return dataclasses.replace(net, num_joints=k)


def _net_hint(arch: str, key: str) -> str:
    """`` (did you mean 'net.hrnet.widths'?)`` for a top-level key that is close to a network field of ``arch``."""
    dotted = {f.name: f"net.{f.name}" for f in dataclasses.fields(NET_CONFIGS[arch]) if f.name != "num_joints"}
    if arch == "stip":
        dotted.pop("hrnet")
        backbone = [f.name for f in dataclasses.fields(HRNetConfig) if f.name != "num_joints"]
        dotted.update({name: f"net.hrnet.{name}" for name in backbone})
    close = difflib.get_close_matches(key, list(dotted), n=1)
    return f" (did you mean '{dotted[close[0]]}'?)" if close else ""


def _flat_to_net(arch: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    """The flat network fields of the older format (top-level ``widths`` … ``depth``) as a ``net`` mapping.

    As in that format, fields of another architecture are ignored (e.g. ``depth`` for ``stip``).
    """
    if arch == "simplebaseline":
        return {"depth": flat["depth"]} if "depth" in flat else {}
    hr = {k: v for k, v in flat.items() if k in ("widths", "num_modules", "num_blocks", "stem_blocks")}
    if arch == "hrnet":
        return hr
    return {"hrnet": hr, **({"up_scale": flat["up_scale"]} if "up_scale" in flat else {})}


def _net_from_mapping(arch: str, data: Any, k: int, source: str) -> NetConfig:
    """Build the ``net`` config of ``arch`` from its mapping; K comes from the schema."""
    where = f"{source}: 'net'"
    if data is None:  # `net:` with nothing under it
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {NET_CONFIGS[arch].__name__} fields, got {data!r}")
    data = dict(data)
    inner = data.get("hrnet") if arch == "stip" else data
    if arch == "stip":
        misplaced = sorted(set(data) & {f.name for f in dataclasses.fields(HRNetConfig)})
        if misplaced:
            raise ConfigError(f"{where}: {misplaced} are backbone fields: put them under 'net: hrnet:' for arch 'stip'")
        inner = data.setdefault("hrnet", {})
    if isinstance(inner, Mapping):
        stated = inner.get("num_joints", k)
        if stated != k:
            raise ConfigError(f"{where}: 'num_joints' is {stated} but the schema has {k} joints (leave it out)")
        if arch == "stip":
            data["hrnet"] = {**inner, "num_joints": k}
        else:
            data["num_joints"] = k
    return from_dict(NET_CONFIGS[arch], data, where)


def spec_from_mapping(data: Mapping[str, Any], source: str = "model dict") -> ModelSpec:
    """Build a :class:`ModelSpec` from its file format.

    The format: ``arch`` (``stip`` default, ``hrnet``, ``simplebaseline``) picks the class of ``net``; the other
    keys are :class:`ModelSpec` fields, ``net`` a mapping of that class's fields. ``num_joints`` and
    ``heatmap_size`` may be stated but are derived (from ``schema``, and from ``input_size`` and the stride)
    and must match. The older flat format (``widths``, ``num_modules``, ``num_blocks``, ``stem_blocks``,
    ``up_scale``, ``depth`` at the top) is read too.

    Args:
        data: the mapping (from YAML or code).
        source: the file or description named in error messages.

    Raises:
        ConfigError: unknown key (with a suggestion), wrong type or value, a derived field that does not match.
    """
    data = dict(data)
    arch = data.pop("arch", "stip")
    if not isinstance(arch, str) or arch not in NET_CONFIGS:
        raise ConfigError(f"{source}: 'arch': {arch!r} is not one of {list(NET_CONFIGS)}")
    fields = [f.name for f in dataclasses.fields(ModelSpec)]
    for key in data:
        if key not in fields and key not in _DERIVED and key not in _FLAT_NET_KEYS:
            hint = did_you_mean(str(key), [*fields, *_DERIVED, "arch"]) or _net_hint(arch, str(key))
            raise ConfigError(f"{source}: unknown key '{key}'{hint}")
    derived = {key: data.pop(key) for key in _DERIVED if key in data}
    flat = {key: data.pop(key) for key in _FLAT_NET_KEYS if key in data}
    if flat and "net" in data:
        raise ConfigError(f"{source}: {sorted(flat)} are network fields: put them under 'net'")
    try:
        k = get_schema(str(data.get("schema", ModelSpec.schema))).num_keypoints
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    net = _net_from_mapping(arch, _flat_to_net(arch, flat) if flat else data.pop("net", {}), k, source)
    spec = from_dict(ModelSpec, {**data, "net": net}, source)
    for key, stated in derived.items():
        value = getattr(spec, key)
        if isinstance(value, tuple) and isinstance(stated, list | tuple):
            stated = tuple(stated)
        if stated != value:
            if key == "num_joints":
                raise ConfigError(f"{source}: 'num_joints' is {stated} but schema '{spec.schema}' has {value} joints")
            raise ConfigError(
                f"{source}: 'heatmap_size' {list(stated) if isinstance(stated, tuple) else stated!r} does not match "
                f"input {list(spec.input_size)} for arch '{arch}' (expected {list(value)})"
            )
    return spec


def spec_from_fixture(data: Mapping[str, Any], source: str = "fixture") -> ModelSpec:
    """Convert an ``official_parity/*.json`` fixture config to a :class:`ModelSpec`.

    Args:
        data: the JSON mapping (``arch`` 'hrnet'|'stipnet', ``hrnet_channels``, ``num_modules``
            {stage2, stage3, stage4}, ``num_blocks_per_branch``, ``input_hw``, ``num_joints``, ``up_scale``).
        source: name used in error messages.

    Raises:
        ConfigError: a missing or invalid field.
    """
    from .schemas import schema_for_joints

    try:
        arch = {"hrnet": "hrnet", "stipnet": "stip", "stip": "stip"}[data["arch"]]
        h, w = (int(v) for v in data["input_hw"])
        mods = data["num_modules"]
        hrnet = {
            "widths": tuple(int(c) for c in data["hrnet_channels"]),
            "num_modules": (int(mods["stage2"]), int(mods["stage3"]), int(mods["stage4"])),
            "num_blocks": int(data["num_blocks_per_branch"]),
        }
        fields = {
            "name": str(data.get("name", "fixture")),
            "arch": arch,
            "schema": schema_for_joints(int(data["num_joints"])).name,
            "num_joints": int(data["num_joints"]),
            "input_size": (h, w),
            "decode": arch,
            "net": {"hrnet": hrnet, "up_scale": int(data.get("up_scale", 2))} if arch == "stip" else hrnet,
        }
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{source}: not a valid parity fixture config ({type(e).__name__}: {e})") from None
    return spec_from_mapping(fields, source)


CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


def spec_from_checkpoint(path: str | Path) -> ModelSpec:
    """The model config a ``stip-rt train`` checkpoint records (``model``; its keypoint set under ``schema``).

    Raises:
        ConfigError: the checkpoint records no model config (e.g. an official ``final_state.pth``).
        WeightsError: unreadable or unsafe file.
    """
    from .checkpoint import _check_header, _torch_load
    from .schemas import BUILTIN_SCHEMAS, register_schema, schema_from_dict

    p = Path(path)
    _check_header(p)
    data = _torch_load(p)
    record = data.get("model") if isinstance(data, Mapping) else None
    if not isinstance(record, Mapping) or "arch" not in record:
        raise ConfigError(f"checkpoint {p}: records no model config (a bare or official checkpoint); "
                          "name the model too, e.g. --model stip-w32-coco-256x192")
    schema = data.get("schema")
    if isinstance(schema, Mapping) and schema.get("name") not in BUILTIN_SCHEMAS:
        register_schema(schema_from_dict(schema, f"checkpoint {p}: 'schema'"), str(p))
    return spec_from_mapping(record, f"checkpoint {p}: 'model'")


def load_spec(spec: str | Path | Mapping[str, Any] | ModelSpec) -> ModelSpec:
    """Resolve a zoo name, a YAML/JSON path, a checkpoint written by ``stip-rt train`` (its recorded model
    config), a dict or a :class:`ModelSpec` to a :class:`ModelSpec`.

    Raises:
        ConfigError: unknown zoo name (with a suggestion), unreadable file, unknown key or invalid value.
    """
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, Mapping):
        if "hrnet_channels" in spec:
            return spec_from_fixture(spec, "model dict")
        return spec_from_mapping(spec, "model dict")
    if not isinstance(spec, str | Path):
        raise ConfigError(f"model spec: expected a zoo name, a path or a mapping, got {type(spec).__name__}")
    text = str(spec)
    path = Path(text)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        return spec_from_checkpoint(path)
    looks_like_path = path.suffix.lower() in (".yaml", ".yml", ".json") or "/" in text or "\\" in text
    if not looks_like_path:
        names = zoo_names()
        if text not in names:
            raise ConfigError(f"model '{text}': not a zoo model{did_you_mean(text, names)}; known: {', '.join(names)}")
        path = models_dir() / f"{text}.yaml"
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"model config {path}: file not found") from None
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"model config {path}: cannot read JSON ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"model config {path}: expected a JSON object")
        return spec_from_fixture(data, str(path)) if "hrnet_channels" in data else spec_from_mapping(data, str(path))
    data = read_yaml(path)
    data.setdefault("name", path.stem)  # zoo configs are named by their file
    return spec_from_mapping(data, str(path))


