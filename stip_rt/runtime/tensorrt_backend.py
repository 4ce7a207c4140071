"""TensorRT backend: a strongly typed engine from an FP16 ONNX (FP32 I/O), with the IaP plugin.

Follows NVIDIA's documented Python API for TensorRT 10.9+ and 11.x:

* network created with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (10.x needs it;
  11.x is strongly typed only and accepts the flag). Precision therefore comes from the
  ONNX graph: :func:`~stip_rt.runtime.onnx_export.export_onnx` with ``fp16=True`` writes
  float16 weights/activations with float32 inputs and outputs. No ``BuilderFlag.FP16``
  (removed in 11.0).
* ``trt.OnnxParser`` parses the *plugin* flavour after :func:`~.trt_plugin.register_plugin`
  has registered ``stip_rt::IaP`` (the node carries ``plugin_namespace`` and ``aot=1``).
* one optimisation profile on the batch axis (min 1 / opt 8 / max 64 by default).
* ``IProgressMonitor`` reports build phases (to a callback, e.g. a progress bar).
* execution through the named-tensor API: ``set_input_shape``, ``set_tensor_address``,
  ``execute_async_v3`` on PyTorch's current CUDA stream.

If the plugin engine cannot be built (plugin not registrable, parser or builder error),
the plugin-free engine is built from the standard flavour with ONE warning. Plans are
cached by :mod:`stip_rt.runtime.engine_cache`.

Not run in this project's CI: TensorRT cannot be installed there (docs/backends.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import BackendError
from .engine_cache import EngineCache, EngineKey, file_sha256, load_or_build

log = logging.getLogger(__name__)

MIN_VERSION = (10, 9)
ProgressCallback = Callable[[str, int, int], None]
"""(phase name, steps done, steps total) — called while an engine builds."""


@dataclass(frozen=True)
class TensorRTConfig:
    """Engine build settings.

    Attributes:
        profile: (min, opt, max) batch sizes of the optimisation profile.
        plugin: build from the plugin ONNX (IaP as the AOT Triton plugin); else the standard one.
        workspace_mib: workspace memory pool limit (None: TensorRT's default, the GPU's memory).
        optimization_level: builder optimisation level 0–5 (3 is TensorRT's default).
        cache: keep built plans in the engine cache.
    """

    profile: tuple[int, int, int] = (1, 8, 64)
    plugin: bool = True
    workspace_mib: int | None = None
    optimization_level: int = 3
    cache: bool = True

    def __post_init__(self) -> None:
        lo, opt, hi = self.profile
        if not 1 <= lo <= opt <= hi:
            raise BackendError(f"tensorrt: profile must satisfy 1 <= min <= opt <= max, got {self.profile}")


def import_tensorrt() -> Any:
    """``import tensorrt`` with a version check.

    Raises:
        BackendError: not installed, or older than 10.9.
    """
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendError(
            "tensorrt backend: TensorRT is not installed (pip install 'stip-rt[trt]' on a machine that reaches "
            "NVIDIA's package index)"
        ) from e
    version = tuple(int(p) for p in trt.__version__.split(".")[:2])
    if version < MIN_VERSION:
        raise BackendError(f"tensorrt backend: TensorRT {trt.__version__} is too old (10.9 or newer needed)")
    return trt


def gpu_id(device: str) -> str:
    """GPU name and compute capability, part of the engine cache key."""
    props = torch.cuda.get_device_properties(torch.device(device))
    return f"{props.name} sm_{props.major}{props.minor}"


def _progress_monitor(trt: Any, callback: ProgressCallback | None) -> Any:
    """An ``IProgressMonitor`` forwarding phases to ``callback`` (and the log)."""

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.totals: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.totals[phase_name] = num_steps
            log.info("TensorRT build: %s (%d steps)", phase_name, num_steps)
            if callback:
                callback(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            if callback:
                callback(phase_name, step + 1, self.totals.get(phase_name, 0))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            if callback:
                total = self.totals.get(phase_name, 0)
                callback(phase_name, total, total)

    return Monitor()


def build_engine(
    onnx_path: str | Path,
    config: TensorRTConfig = TensorRTConfig(),
    plugin: bool = False,
    progress: ProgressCallback | None = None,
) -> bytes:
    """Build a serialized plan from an ONNX file (strongly typed; the graph's dtypes are kept).

    Args:
        onnx_path: the ONNX model (FP16 graph with FP32 I/O for an FP16 engine).
        config: profile, workspace, optimisation level.
        plugin: register the IaP plugin before parsing (needed for the plugin flavour).
        progress: called as build phases advance.

    Returns:
        The plan bytes.

    Raises:
        BackendError: TensorRT missing, parse or build failure (with the parser's messages).
    """
    trt = import_tensorrt()
    if plugin:
        from .trt_plugin import register_plugin

        register_plugin()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"tensorrt: cannot parse {onnx_path}: {errors}")
    inp = network.get_input(0)
    chw = tuple(inp.shape)[1:]
    lo, opt, hi = config.profile
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, (lo, *chw), (opt, *chw), (hi, *chw))
    bconfig = builder.create_builder_config()
    bconfig.add_optimization_profile(profile)
    bconfig.builder_optimization_level = config.optimization_level
    if config.workspace_mib is not None:
        bconfig.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    bconfig.progress_monitor = _progress_monitor(trt, progress)
    log.info("building TensorRT %s engine from %s (profile %s)", trt.__version__, onnx_path, config.profile)
    plan = builder.build_serialized_network(network, bconfig)
    if plan is None:
        raise BackendError(f"tensorrt: building the engine from {onnx_path} failed (see the TensorRT log above)")
    return bytes(plan)


def _onnx_precision(onnx_path: Path) -> str:
    """``fp16`` when the graph holds float16 initializers, else ``fp32``."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    return "fp16" if any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer) else "fp32"


def _has_plugin_node(onnx_path: Path) -> bool:
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    return any(n.op_type == "IaP" for n in proto.graph.node)


class TensorRTBackend:
    """Runs a TensorRT engine built (or loaded from the cache) for an ONNX file.

    Args:
        onnx_path: the ONNX model (plugin or standard flavour; FP16 graph for an FP16 engine).
        device: ``cuda`` or ``cuda:N``.
        config: build settings.
        fallback_onnx: the standard flavour of the same model, built with one warning when the
            plugin engine fails; or a function giving it, called only then (no export otherwise).
        progress: build progress callback.

    Raises:
        BackendError: no GPU, TensorRT missing or too old, build failures.
    """

    name = "tensorrt"

    def __init__(
        self,
        onnx_path: str | Path,
        device: str = "cuda",
        config: TensorRTConfig = TensorRTConfig(),
        fallback_onnx: str | Path | Callable[[], str | Path] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        if not device.startswith("cuda") or not torch.cuda.is_available():
            raise BackendError(f"backend 'tensorrt' needs an NVIDIA GPU (device '{device}')")
        trt = import_tensorrt()
        path = Path(onnx_path)
        if not path.is_file():
            raise BackendError(f"tensorrt backend: ONNX file {path} not found")
        self.device = device
        self.config = config
        self._trt = trt
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        cache = EngineCache() if config.cache else None
        with torch.cuda.device(torch.device(device)):
            plugin = _has_plugin_node(path)
            try:
                self.engine = self._load(path, plugin, cache, progress)
                self.onnx_path = path
            except BackendError as e:
                if not plugin or fallback_onnx is None:
                    raise
                log.warning("tensorrt: the IaP plugin engine failed (%s); using the plugin-free engine", e)
                plugin = False
                self.onnx_path = Path(fallback_onnx() if callable(fallback_onnx) else fallback_onnx)
                self.engine = self._load(self.onnx_path, False, cache, progress)
            self.context = self.engine.create_execution_context()
        self.plugin = plugin
        self.precision = _onnx_precision(self.onnx_path)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._input = inputs[0]
        self._outputs = [n for n in names if n not in inputs]

    def _load(self, path: Path, plugin: bool, cache: EngineCache | None, progress: ProgressCallback | None) -> Any:
        if plugin:
            from .trt_plugin import register_plugin

            register_plugin()  # deserializing needs the registration too
        lo, opt, hi = self.config.profile
        key = EngineKey(
            onnx_sha256=file_sha256(path),
            trt_version=self._trt.__version__,
            gpu=gpu_id(self.device),
            precision=_onnx_precision(path),
            profile=(lo, opt, hi),
            plugin=plugin,
        )
        return load_or_build(
            cache,
            key,
            build=lambda: build_engine(path, self.config, plugin=plugin, progress=progress),
            deserialize=self._runtime.deserialize_cuda_engine,
        )

    def describe(self) -> str:
        """One line for run summaries."""
        lo, opt, hi = self.config.profile
        kind = "IaP AOT Triton plugin" if self.plugin else "plugin-free"
        version = self._trt.__version__
        return f"tensorrt {version} {self.precision} on {self.device} ({kind}, batch profile {lo}/{opt}/{hi})"

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float32 → (N, K, h, w) float32; batches above the profile max run in chunks."""
        hi = self.config.profile[2]
        x = batch.to(self.device, torch.float32).contiguous()
        if x.shape[0] == 0:
            self.context.set_input_shape(self._input, (1, *x.shape[1:]))
            shape = tuple(self.context.get_tensor_shape(self._outputs[0]))
            return torch.zeros((0, *shape[1:]), device=self.device)
        outs = [self._run(x[i : i + hi]) for i in range(0, x.shape[0], hi)]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        ctx = self.context
        ctx.set_input_shape(self._input, tuple(x.shape))
        ctx.set_tensor_address(self._input, x.data_ptr())
        outputs = []
        for name in self._outputs:
            out = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=torch.float32, device=self.device)
            ctx.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        stream = torch.cuda.current_stream(torch.device(self.device))
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"tensorrt: execution failed for a batch of {x.shape[0]}")
        return outputs[0]
