"""The TensorRT backend (``create_backend(..., backend="tensorrt")``) with an ONNX + engine cache that
cannot be written, with fakes: no GPU, no TensorRT. The fakes stand in for ``import tensorrt``, the
engine builder and the exporter; the factory, :class:`TensorRTBackend`, the engine cache and
:class:`SessionExports` are the real ones."""

from __future__ import annotations

import contextlib
import errno
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from stip_rt.errors import BackendError
from stip_rt.runtime import factory, onnx_export, trt_plugin
from stip_rt.runtime import tensorrt_backend as tb
from stip_rt.runtime.onnx_export import ExportConfig, SessionExports

SIZE = (16, 12)


@dataclass
class Calls:
    """What the fakes saw: exports (path, flavour) and builds (ONNX file name, plugin, file there then)."""

    exports: list[tuple[Path, str]] = field(default_factory=list)
    builds: list[tuple[str, bool, bool]] = field(default_factory=list)
    fail_plugin: bool = False

    def flavours(self) -> list[str]:
        return [f for _, f in self.exports]


class _Engine:
    def __init__(self, plan: bytes) -> None:
        self.plan = plan
        self.num_io_tensors = 2

    def get_tensor_name(self, i: int) -> str:
        return ("input", "heatmaps")[i]

    def get_tensor_mode(self, name: str) -> str:
        return "in" if name == "input" else "out"

    def create_execution_context(self) -> object:
        return object()


def _fake_export(calls: Calls) -> Any:
    """A tiny valid ONNX file: one IaP node in the plugin flavour, float16 weights for fp16."""

    def export(model: nn.Module, path: str | Path, config: ExportConfig | None = None, input_size: Any = None):
        path, config = Path(path), config or ExportConfig()
        calls.exports.append((path, config.flavour))
        dtype = TensorProto.FLOAT16 if config.fp16 else TensorProto.FLOAT
        weight = numpy_helper.from_array(torch.ones(1).numpy().astype("float16" if config.fp16 else "float32"), "w")
        op = "IaP" if config.flavour == "plugin" else "Identity"
        node = helper.make_node(op, ["input"], ["heatmaps"], domain="stip_rt" if op == "IaP" else "")
        graph = helper.make_graph(
            [node],
            "g",
            [helper.make_tensor_value_info("input", dtype, [None, 3, *SIZE])],
            [helper.make_tensor_value_info("heatmaps", dtype, None)],
            [weight],
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(helper.make_model(graph), str(path))
        return path

    return export


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """A fake GPU, TensorRT, IaP plugin, engine builder and exporter; returns what they saw."""
    seen = Calls()

    def build_engine(onnx_path: str | Path, config: object = None, plugin: bool = False, progress: object = None):
        seen.builds.append((Path(onnx_path).name, plugin, Path(onnx_path).is_file()))
        if plugin and seen.fail_plugin:
            raise BackendError("tensorrt: building the engine failed (fake)")
        return b"plan of " + Path(onnx_path).name.encode()

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            pass

    trt = SimpleNamespace(
        __version__="10.13.0",
        Logger=Logger,
        TensorIOMode=SimpleNamespace(INPUT="in"),
        Runtime=lambda logger: SimpleNamespace(deserialize_cuda_engine=_Engine),
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    monkeypatch.setattr(factory, "_has", lambda m: True)
    monkeypatch.setattr(tb, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(tb, "gpu_id", lambda device: "FAKE GPU sm_90")
    monkeypatch.setattr(tb, "build_engine", build_engine)
    monkeypatch.setattr(trt_plugin, "register_plugin", lambda: None)
    monkeypatch.setattr(onnx_export, "export_onnx", _fake_export(seen))
    return seen


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache folder (``onnx/``, ``engines/``) of a fresh ``$STIP_RT_HOME``."""
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STIP_RT_CACHE_MAX_GB", raising=False)
    return tmp_path / "home" / "cache"


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(3, 4, 1).eval()


def _trt(model: nn.Module, **kw: Any) -> Any:
    return factory.create_backend(model, backend="tensorrt", device="cuda", precision="fp16", input_size=SIZE, **kw)


def _onnx_cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "ONNX cache" in r.getMessage()]


def test_read_only_cache_one_warning_and_temporary_exports_removed(
    calls, home, temp_root, read_only_under, caplog
) -> None:
    """Nothing cached, nothing can be: the plugin engine fails, the plugin-free one is built; both
    flavours exported into one temporary folder (one warning), gone once the engine exists."""
    read_only_under(home)
    calls.fail_plugin = True
    with caplog.at_level(logging.WARNING):
        backend = _trt(_model())
    assert backend.plugin is False and backend.precision == "fp16"
    assert calls.flavours() == ["plugin", "standard"]
    assert all(temp_root in p.parents for p, _ in calls.exports)
    assert [(plugin, there) for _, plugin, there in calls.builds] == [(True, True), (False, True)]
    (warning,) = _onnx_cache_warnings(caplog)  # one for the run, not one per flavour
    assert str(home / "onnx") in warning and "Read-only file system" in warning and "STIP_RT_HOME" in warning
    assert any("engine cache" in r.getMessage() for r in caplog.records)  # the built engine still runs
    assert list(temp_root.iterdir()) == [] and not home.exists()


def test_engine_cached_in_a_read_only_cache_needs_no_export(
    calls, home, temp_root, read_only_under, monkeypatch, caplog
) -> None:
    first = _trt(_model())  # writable: the plugin export and its engine are cached
    assert first.plugin is True and calls.flavours() == ["plugin"]  # no standard export: the plugin engine built
    assert len(calls.builds) == 1 and len(list((home / "engines").glob("*.engine"))) == 1
    calls.exports.clear(), calls.builds.clear()
    read_only_under(home)
    monkeypatch.setattr("os.utime", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only")))
    with caplog.at_level(logging.WARNING):
        again = _trt(_model())
    assert calls.exports == [] and calls.builds == []  # loaded, nothing exported or built
    assert again.plugin is True and again.engine.plan == first.engine.plan
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert list(temp_root.iterdir()) == []


def test_plugin_off_exports_the_standard_flavour_only(calls, home, temp_root, read_only_under, caplog) -> None:
    read_only_under(home)
    with caplog.at_level(logging.WARNING):
        backend = _trt(_model(), config=tb.TensorRTConfig(plugin=False))
    assert backend.plugin is False and calls.flavours() == ["standard"]
    assert len(_onnx_cache_warnings(caplog)) == 1 and list(temp_root.iterdir()) == []


def test_full_disk_is_tried_once_then_only_looked_up(calls, home, temp_root, monkeypatch, caplog) -> None:
    """A write that fails during the export (full disk) costs that export once: the next file goes
    straight to the temporary folder, and a file already cached is still used from the cache."""
    model, onnx_dir = _model(), home / "onnx"
    standard = onnx_export.cached_onnx(model, ExportConfig(), SIZE)  # cached before the disk filled up
    export = onnx_export.export_onnx

    def full(model: nn.Module, path: str | Path, *a: Any, **kw: Any) -> Path:
        if onnx_dir in Path(path).parents:
            calls.exports.append((Path(path), "cache"))
            raise BackendError("ONNX export: cannot write") from OSError(errno.ENOSPC, "No space left on device")
        return export(model, path, *a, **kw)

    monkeypatch.setattr(onnx_export, "export_onnx", full)
    calls.exports.clear()
    with caplog.at_level(logging.WARNING), SessionExports() as exports:
        plugin = exports.get(model, ExportConfig(flavour="plugin"), SIZE)
        fp16 = exports.get(model, ExportConfig(fp16=True), SIZE)
        assert exports.get(model, ExportConfig(fp16=True), SIZE) == fp16  # exported once
        assert exports.get(model, ExportConfig(), SIZE) == standard
        assert plugin.is_file() and fp16.is_file() and plugin.parent == fp16.parent
    assert calls.flavours() == ["cache", "plugin", "standard"]
    assert [temp_root in p.parents for p, _ in calls.exports] == [False, True, True]
    (warning,) = _onnx_cache_warnings(caplog)
    assert "No space left on device" in warning
    assert list(temp_root.iterdir()) == [] and sorted(p.name for p in onnx_dir.iterdir()) == [standard.name]
