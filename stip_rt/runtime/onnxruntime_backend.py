"""ONNX Runtime backend: CPU, or CUDA where ``onnxruntime-gpu`` provides the CUDA provider."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import BackendError

log = logging.getLogger(__name__)

_OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class OrtConfig:
    """ONNX Runtime session settings.

    Attributes:
        intra_op_threads: threads inside one op; 0 lets ONNX Runtime choose (one per physical core).
        inter_op_threads: threads across independent ops (only with ``parallel=True``); 0 = default.
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all``.
        parallel: ORT_PARALLEL execution mode instead of sequential.
        allow_spinning: let idle intra-op threads busy-wait for the next run (ONNX Runtime's default).
            Off by default: on a few cores the spinning threads steal CPU from the rest of the
            pipeline (decoding, tracking, other backends) between runs.
        mem_pattern: let ONNX Runtime plan and keep a memory pattern for every input shape it
            sees (its default). Off by default: the pose batch size changes with the number of
            people, and each new size kept another pattern's worth of memory for the rest of the
            run (HRNet-W32 on the CPU: +105 MiB resident over batch sizes 1–8, flat without;
            ``scripts/soak_pipeline.py``, docs/pipeline.md).
    """

    intra_op_threads: int = 0
    inter_op_threads: int = 0
    graph_optimization: str = "all"
    parallel: bool = False
    allow_spinning: bool = False
    mem_pattern: bool = False


class OnnxRuntimeBackend:
    """Runs an ONNX file in ONNX Runtime.

    Args:
        onnx_path: the model (a ``standard`` flavour export: the plugin node has no ORT kernel).
        device: ``cpu`` or ``cuda[:i]`` (needs the CUDAExecutionProvider, i.e. onnxruntime-gpu).
        precision: precision of the graph, for reporting (``fp32`` or ``fp16``); inputs are float32 either way.
        config: session settings.

    Raises:
        BackendError: onnxruntime missing, file missing or invalid, CUDA provider unavailable,
            or the graph has a custom node ONNX Runtime cannot run.
    """

    name = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | Path,
        device: str = "cpu",
        precision: str = "fp32",
        config: OrtConfig = OrtConfig(),
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendError("onnxruntime backend: onnxruntime is not installed (pip install 'stip-rt[onnx]')") from e
        path = Path(onnx_path)
        if not path.is_file():
            raise BackendError(f"onnxruntime backend: ONNX file {path} not found")
        if config.graph_optimization not in _OPT_LEVELS:
            raise BackendError(
                f"onnxruntime backend: graph_optimization '{config.graph_optimization}' is not one of {_OPT_LEVELS}"
            )
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError(
                    f"onnxruntime backend: device '{device}' needs the CUDA provider (pip install onnxruntime-gpu); "
                    f"available: {', '.join(ort.get_available_providers())}"
                )
            index = int(device.split(":")[1]) if ":" in device else 0
            providers: list = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[config.graph_optimization]
        opts.intra_op_num_threads = config.intra_op_threads
        opts.inter_op_num_threads = config.inter_op_threads
        opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL if config.parallel else ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        opts.enable_mem_pattern = config.mem_pattern
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if config.allow_spinning else "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if config.allow_spinning else "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types (Fail, InvalidGraph, NotImplemented...)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            hint = (
                " (a 'plugin' flavour export only runs in TensorRT; export the 'standard' flavour)"
                if "IaP" in msg
                else ""
            )
            raise BackendError(f"onnxruntime backend: cannot load {path}: {msg}{hint}") from e
        self.path = path
        self.device = device
        self.precision = precision
        self.config = config
        self._input = self.session.get_inputs()[0].name
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._out_shapes = [o.shape for o in self.session.get_outputs()]

    def describe(self) -> str:
        """One line for run summaries."""
        provider = self.session.get_providers()[0]
        threads = self.config.intra_op_threads or os.cpu_count()
        return (
            f"onnxruntime {self.precision} on {self.device} ({provider}, {threads} intra-op threads, {self.path.name})"
        )

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        """Run the graph on a (N, 3, H, W) float32 batch; returns the first output (N, K, h, w) float32.

        N = 0 gives an empty output of the graph's static trailing shape.
        """
        return self.infer_all(batch)[0]

    def infer_all(self, batch: torch.Tensor) -> list[torch.Tensor]:
        """Every graph output for a (N, 3, H, W) float32 batch, as float32 tensors on ``self.device``."""
        if batch.shape[0] == 0:
            return [torch.zeros((0, *_static(s[1:])), device=self.device) for s in self._out_shapes]
        x = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        outs = self.session.run(self._outputs, {self._input: x})
        return [torch.from_numpy(np.asarray(o, dtype=np.float32)).to(self.device) for o in outs]


def _static(dims: list) -> tuple[int, ...]:
    """Trailing dims of an ORT output shape; symbolic ones become 0."""
    return tuple(d if isinstance(d, int) else 0 for d in dims)
