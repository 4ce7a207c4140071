"""Pick and build an inference backend: ``create_backend(model, backend, device, precision)``.

``auto`` resolves, in order:

* device: ``cuda`` when PyTorch sees a GPU, else ``cpu``;
* backend on CUDA: ``tensorrt`` when it is importable, else ``cuda-fast`` when Triton is,
  else ``torch``; on CPU: ``onnxruntime`` when it is importable, else ``torch``;
* precision: ``fp16`` on CUDA, ``fp32`` on CPU.

The choice is logged, and every backend has a ``describe()`` line for run summaries
(:func:`describe_backend`). Asking explicitly for something that cannot run here is a
:class:`~stip_rt.errors.BackendError` naming what is missing, never a silent fallback.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import BackendError, did_you_mean
from .base import Backend
from .config import BACKENDS, DEVICES, PRECISIONS

log = logging.getLogger(__name__)



def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` or ``cpu``; checks that a requested CUDA device exists.

    Raises:
        BackendError: unknown device, or CUDA requested without a GPU.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise BackendError(f"device '{device}': use auto, cpu, cuda or cuda:N{did_you_mean(device, DEVICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device '{device}' requested but PyTorch sees no CUDA GPU")
    return device


def resolve_backend(backend: str, device: str) -> str:
    """``auto`` → the fastest backend that can run on ``device`` (a resolved device).

    Raises:
        BackendError: unknown name; ``tensorrt``/``cuda-fast`` without a GPU; a missing package.
    """
    if backend not in BACKENDS:
        raise BackendError(
            f"backend '{backend}' is unknown{did_you_mean(backend, BACKENDS)}; use {', '.join(BACKENDS)}"
        )
    cuda = device.startswith("cuda")
    if backend == "auto":
        if cuda:
            return "tensorrt" if _has("tensorrt") else "cuda-fast" if _has("triton") else "torch"
        return "onnxruntime" if _has("onnxruntime") else "torch"
    if backend in ("tensorrt", "cuda-fast") and not cuda:
        why = "PyTorch sees no CUDA GPU" if not torch.cuda.is_available() else f"device is '{device}'"
        raise BackendError(f"backend '{backend}' needs an NVIDIA GPU, but {why}")
    if backend == "tensorrt" and not _has("tensorrt"):
        raise BackendError(
            "backend 'tensorrt': TensorRT is not installed (pip install 'stip-rt[trt]' on a machine that reaches "
            "NVIDIA's package index; see docs/backends.md)"
        )
    if backend == "cuda-fast" and not _has("triton"):
        raise BackendError("backend 'cuda-fast' needs triton (pip install 'stip-rt[triton]')")
    if backend == "onnxruntime" and not _has("onnxruntime"):
        raise BackendError("backend 'onnxruntime': onnxruntime is not installed (pip install 'stip-rt[onnx]')")
    return backend


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` → ``fp16`` on CUDA, ``fp32`` on CPU.

    Raises:
        BackendError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise BackendError(
            f"precision '{precision}' is unknown{did_you_mean(precision, PRECISIONS)}; use fp32, fp16, bf16"
        )
    if precision == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    return precision


def create_backend(
    model: nn.Module | str | Path,
    backend: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    **opts: Any,
) -> Backend:
    """Build the backend that runs ``model``.

    Args:
        model: an ``nn.Module`` (pose network with ``model.spec``, or any network with ``input_size``
            given), or a path to an ``.onnx`` file (``onnxruntime``/``tensorrt`` only).
        backend: ``auto``, ``torch``, ``cuda-fast``, ``onnxruntime`` or ``tensorrt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16`` (``onnxruntime`` on CPU: fp32 only;
            ``tensorrt``: fp16 or fp32).
        **opts: passed on: ``input_size`` (H, W) and ``output_names`` for models without a spec;
            ``onnx`` (a prebuilt ONNX file to use instead of exporting ``model``); ``fold``
            (default True: serve the prepared graph with BatchNorm folded, :mod:`stip_rt.nn.fold`;
            False only for comparisons); ``config``
            (the backend's own config dataclass: :class:`~.cuda_fast.CudaFastConfig`,
            :class:`~.onnxruntime_backend.OrtConfig`, :class:`~.tensorrt_backend.TensorRTConfig`).

    Returns:
        A :class:`~stip_rt.runtime.base.Backend` with ``describe()``.

    Raises:
        BackendError: the backend, device or precision cannot be used here, or the model/ONNX
            file does not fit the backend.
    """
    device = resolve_device(device)
    asked = backend
    backend = resolve_backend(backend, device)
    precision = resolve_precision(precision, device)
    if asked == "auto" and backend == "onnxruntime" and precision != "fp32":
        backend = "torch"  # ONNX Runtime on the CPU is fp32-only here
    config = opts.pop("config", None)
    fold = bool(opts.get("fold", True))
    if backend == "torch":
        module = _module(model, backend)
        from .torch_backend import TorchBackend

        result: Backend = TorchBackend(module, device=device, precision=precision, fold=fold)
    elif backend == "cuda-fast":
        module = _module(model, backend)
        import dataclasses

        from .config import CudaFastConfig
        from .cuda_fast import CudaFastBackend

        cfg = config or CudaFastConfig(precision=precision)
        if not fold:
            cfg = dataclasses.replace(cfg, fold_bn=False)
        size = opts.get("input_size")
        result = CudaFastBackend(module, device=device, config=cfg, input_size=tuple(size) if size else None)
    elif backend == "onnxruntime":
        result = _onnxruntime(model, device, precision, config, opts)
    else:
        result = _tensorrt(model, device, precision, config, opts)
    log.info("backend: %s%s", describe_backend(result), " (picked by auto)" if asked == "auto" else "")
    return result


def _module(model: nn.Module | str | Path, backend: str) -> nn.Module:
    """``model`` when it is a PyTorch module (which ``backend`` needs)."""
    if not isinstance(model, nn.Module):
        raise BackendError(f"backend '{backend}' needs a PyTorch model, got the file {model}")
    return model


def _export_settings(opts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"fold": bool(opts.get("fold", True))}
    if "output_names" in opts:
        out["output_names"] = tuple(opts["output_names"])
    return out


def _onnxruntime(model: nn.Module | str | Path, device: str, precision: str, config: Any, opts: dict) -> Backend:
    from .onnx_export import ExportConfig, onnx_for_session
    from .onnxruntime_backend import OnnxRuntimeBackend, OrtConfig

    if precision != "fp32" and not device.startswith("cuda"):
        raise BackendError(f"onnxruntime backend on the CPU runs fp32 only (asked for {precision})")
    given: str | Path | None = opts.get("onnx")
    source = model if given is None else given  # a given ONNX file, else the model
    ort_config = config or OrtConfig()
    onnx_path: str | Path
    if isinstance(source, nn.Module):
        export = ExportConfig(flavour="standard", fp16=precision == "fp16", **_export_settings(opts))
        # the cached export; a temporary one (deleted once the session holds the model) where the cache is read-only
        with onnx_for_session(source, export, input_size=opts.get("input_size")) as onnx_path:
            backend = OnnxRuntimeBackend(onnx_path, device=device, precision=precision, config=ort_config)
    else:
        onnx_path = source
        backend = OnnxRuntimeBackend(onnx_path, device=device, precision=precision, config=ort_config)
    if isinstance(model, nn.Module):
        check_onnx_matches(model, backend.session, onnx_path, opts.get("input_size"))
    return backend


def _tensorrt(model: nn.Module | str | Path, device: str, precision: str, config: Any, opts: dict) -> Backend:
    from .onnx_export import ExportConfig, SessionExports
    from .tensorrt_backend import TensorRTBackend, TensorRTConfig

    if precision not in ("fp16", "fp32"):
        raise BackendError(f"tensorrt backend: precision {precision} is not supported (use fp16 or fp32)")
    cfg = config or TensorRTConfig()
    fp16 = precision == "fp16"
    if isinstance(model, nn.Module):
        module, settings, size = model, _export_settings(opts), opts.get("input_size")
        # the cached exports; temporary ones (one warning for both flavours, deleted once the engine is
        # built or loaded) where the cache cannot be written. The standard flavour is exported only when
        # the plugin engine fails (a cached plugin engine needs no other export).
        with SessionExports() as exports:

            def onnx(flavour: str) -> Path:
                return exports.get(module, ExportConfig(flavour=flavour, fp16=fp16, **settings), size)

            if not cfg.plugin:
                return TensorRTBackend(onnx("standard"), device=device, config=cfg)
            return TensorRTBackend(onnx("plugin"), device=device, config=cfg, fallback_onnx=lambda: onnx("standard"))
    return TensorRTBackend(opts.get("onnx", model), device=device, config=cfg)


def check_onnx_matches(model: nn.Module, session: Any, onnx_path: str | Path, input_size: Any = None) -> None:
    """Check that an ONNX Runtime session's input matches ``model``'s input size and joint count.

    Raises:
        BackendError: naming the ONNX file and the mismatch.
    """
    spec = getattr(model, "spec", None)
    size = tuple(input_size) if input_size is not None else getattr(spec, "input_size", None)
    shape = session.get_inputs()[0].shape
    if size is not None and tuple(shape[2:]) != tuple(size):
        raise BackendError(f"ONNX file {onnx_path}: input is {shape[1:]}, the model expects (3, {size[0]}, {size[1]})")
    joints = getattr(spec, "num_joints", None)
    out_shape = session.get_outputs()[0].shape
    if joints is not None and len(out_shape) == 4 and out_shape[1] != joints:
        raise BackendError(f"ONNX file {onnx_path}: output has {out_shape[1]} heatmaps, the model has {joints} joints")


def describe_backend(backend: Backend) -> str:
    """``backend.describe()`` when it has one, else ``name precision on device``."""
    describe = getattr(backend, "describe", None)
    if callable(describe):
        return str(describe())
    return f"{backend.name} {backend.precision} on {backend.device}"
