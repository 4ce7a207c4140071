"""Throughput of backends on one model: crops/s per backend and batch size, and ratios.

Used by ``stip-rt bench``. A backend is named as a *variant*: ``<backend>[+<option>...]`` with
options ``unfolded`` (serve the graph with its BatchNorm, for the folding ratio), ``compile``
(``cuda-fast`` with ``torch.compile``), ``unfused`` (``cuda-fast`` without cuDNN's fused
conv+ReLU), ``branches`` (``cuda-fast`` with HRNet's branches on parallel CUDA streams),
``cudnn-benchmark`` (``cuda-fast`` with its cuDNN engines chosen by timing them),
``fp32``/``fp16``/``bf16`` (precision; default fp32 for ``torch`` and ``onnxruntime``, the
backend's own default otherwise), e.g. ``torch+unfolded``, ``cuda-fast+compile``, ``torch+fp16``.
Timing uses ``time.perf_counter`` around each ``infer`` call with
a CUDA synchronize before reading the clock on GPU backends; warm-up calls (graph
capture, cuDNN/Triton autotuning, ONNX Runtime's first run) are not timed. Backends are
measured in interleaved rounds and reported as median call times.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BackendError
from .base import Backend
from .factory import create_backend, describe_backend
from .onnx_export import model_input_shape
from .profile import synchronize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchResult:
    """One measurement (or the reason there is none).

    Attributes:
        backend: backend name as asked (``torch``, ``cuda-fast``, ``onnxruntime``, ``tensorrt``).
        batch: crops per ``infer`` call.
        crops_per_s: throughput; None when skipped.
        ms_per_batch: mean latency of one ``infer`` call in milliseconds; None when skipped.
        description: the backend's ``describe()`` line, or the reason it was skipped.
    """

    backend: str
    batch: int
    crops_per_s: float | None
    ms_per_batch: float | None
    description: str


VARIANT_OPTIONS = ("unfolded", "unfused", "compile", "branches", "cudnn-benchmark", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Variant:
    """A parsed backend variant (see the module docstring).

    Attributes:
        label: as written (``cuda-fast+compile``).
        backend: the backend name (``cuda-fast``).
        fold: serve the folded graph.
        compile: ``cuda-fast`` with ``torch.compile``.
        fuse: ``cuda-fast`` with cuDNN's fused conv+ReLU (``CudaFastConfig.cudnn_fusion``; ``+unfused``: off).
        branches: ``cuda-fast`` with HRNet's branches on parallel CUDA streams
            (``CudaFastConfig.parallel_branches``; ``+branches``: on).
        cudnn_benchmark: ``cuda-fast`` with cuDNN's engines timed before capture
            (``CudaFastConfig.cudnn_benchmark``; ``+cudnn-benchmark``: on).
        precision: ``auto`` or a precision.
    """

    label: str
    backend: str
    fold: bool = True
    compile: bool = False
    fuse: bool = True
    branches: bool = False
    cudnn_benchmark: bool = False
    precision: str = "auto"


def parse_variant(label: str) -> Variant:
    """``torch+unfolded`` → Variant(backend='torch', fold=False, ...).

    Raises:
        BackendError: an unknown option (the backend name is checked when it is built).
    """
    name, *opts = [p.strip() for p in label.split("+")]
    bad = [o for o in opts if o not in VARIANT_OPTIONS]
    if bad:
        raise BackendError(f"backend variant '{label}': unknown option(s) {bad}; use {', '.join(VARIANT_OPTIONS)}")
    precision = next((o for o in opts if o in ("fp32", "fp16", "bf16")), None)
    if precision is None:
        precision = "fp32" if name in ("torch", "onnxruntime") else "auto"
    fold, fuse = "unfolded" not in opts, "unfused" not in opts
    return Variant(label, name, fold=fold, compile="compile" in opts, fuse=fuse, branches="branches" in opts,
                   cudnn_benchmark="cudnn-benchmark" in opts, precision=precision)  # fmt: skip


def _build(model: nn.Module, v: Variant, device: str, configs: Mapping[str, object] | None) -> Backend:
    opts: dict[str, object] = {"fold": v.fold}
    config = (configs or {}).get(v.label, (configs or {}).get(v.backend))
    cuda_only = v.compile or not v.fuse or v.branches or v.cudnn_benchmark
    if v.backend == "cuda-fast" and (cuda_only or v.precision != "auto"):
        import dataclasses

        from .config import CudaFastConfig

        base = config if isinstance(config, CudaFastConfig) else CudaFastConfig()
        prec = base.precision if v.precision == "auto" else v.precision
        config = dataclasses.replace(
            base,
            compile=v.compile or base.compile,
            cudnn_fusion=v.fuse and base.cudnn_fusion,
            parallel_branches=v.branches or base.parallel_branches,
            cudnn_benchmark=v.cudnn_benchmark or base.cudnn_benchmark,
            precision=prec,
        )
    elif cuda_only:
        raise BackendError(
            f"backend variant '{v.label}': +compile, +unfused, +branches and +cudnn-benchmark apply to cuda-fast only"
        )
    if config is not None:
        opts["config"] = config
    dev = "cpu" if v.backend == "onnxruntime" and device == "auto" else device
    return create_backend(model, backend=v.backend, device=dev, precision=v.precision, **opts)


def time_backend(backend: Backend, batch: torch.Tensor, iters: int, warmup: int) -> list[float]:
    """Seconds of each of ``iters`` calls of ``backend.infer(batch)`` after ``warmup`` untimed calls."""
    device = getattr(backend, "device", "cpu")
    for _ in range(warmup):
        backend.infer(batch)
    synchronize(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        backend.infer(batch)
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def bench_backends(
    model: nn.Module,
    backends: Sequence[str],
    batches: Sequence[int],
    device: str = "auto",
    min_seconds: float = 2.0,
    rounds: int = 5,
    warmup: int = 2,
    configs: Mapping[str, object] | None = None,
) -> list[BenchResult]:
    """Measure each backend at each batch size on random crops of the model's input size.

    The backends are measured in interleaved rounds (round 1: every backend, round 2: every
    backend, ...) and each figure is the median call time, so that load from other processes
    on the machine affects every backend alike and the ratios stay meaningful.

    Args:
        model: the network (``model.spec.input_size`` gives the crop size).
        backends: backend variants (:func:`parse_variant`); one that cannot run here yields a
            skipped result with the reason.
        batches: batch sizes.
        device: device for GPU-capable backends (``auto``: CUDA when available; the
            ``onnxruntime`` backend runs on the CPU unless onnxruntime-gpu is present).
        min_seconds: time budget per (backend, batch), split over the rounds.
        rounds: interleaved rounds.
        warmup: untimed calls first.
        configs: backend name (or variant label) → its config dataclass (e.g. ``{"onnxruntime": OrtConfig(...)}``).

    Returns:
        One :class:`BenchResult` per (backend, batch), in the order asked.
    """
    _, h, w = model_input_shape(model)
    built: dict[str, Backend] = {}
    skipped: dict[str, str] = {}
    for name in backends:
        try:
            built[name] = _build(model, parse_variant(name), device, configs)
        except BackendError as e:
            skipped[name] = f"skipped: {e}"
    times: dict[tuple[str, int], list[float]] = {}
    for b in batches:
        x = torch.randn(b, 3, h, w)
        per_call = {name: min(time_backend(bk, x, iters=1, warmup=warmup)) for name, bk in built.items()}
        for _ in range(rounds):
            for name, bk in built.items():
                iters = int(max(1, min(20, min_seconds / rounds / max(per_call[name], 1e-6))))
                times.setdefault((name, b), []).extend(time_backend(bk, x, iters=iters, warmup=0))
    results = []
    for name in backends:
        for b in batches:
            if name in skipped:
                results.append(BenchResult(name, b, None, None, skipped[name]))
                continue
            sec = statistics.median(times[(name, b)])
            results.append(BenchResult(name, b, b / sec, sec * 1e3, describe_backend(built[name])))
            log.info("%s batch %d: %.1f crops/s (median of %d calls)", name, b, b / sec, len(times[(name, b)]))
    return results


def ratio_lines(results: Sequence[BenchResult], baseline: str = "torch") -> list[str]:
    """``ratio <backend>/<baseline> batch <b>: <x>`` for every measured pair."""
    base = {r.batch: r.crops_per_s for r in results if r.backend == baseline and r.crops_per_s}
    lines = []
    for r in results:
        if r.backend != baseline and r.crops_per_s and base.get(r.batch):
            lines.append(f"ratio {r.backend}/{baseline} batch {r.batch}: {r.crops_per_s / base[r.batch]:.2f}x")
    return lines


def fold_ratio_lines(results: Sequence[BenchResult]) -> list[str]:
    """``ratio folded/unfolded <backend> batch <b>: <x>`` for every ``X`` measured beside ``X+unfolded``,
    ``ratio fused/unfused ...`` likewise beside ``X+unfused``, ``ratio parallel/serial branches
    X+branches ...`` for ``X+branches`` beside ``X``, and ``ratio timed/heuristic cuDNN engines
    X+cudnn-benchmark ...`` for ``X+cudnn-benchmark`` beside ``X``."""
    speed = {(r.backend, r.batch): r.crops_per_s for r in results if r.crops_per_s}
    lines = []
    for option, words in (("+unfolded", "folded/unfolded"), ("+unfused", "fused/unfused")):
        for (label, batch), without in speed.items():
            if option not in label:
                continue
            base = label.replace(option, "")
            with_it = speed.get((base, batch))
            if with_it:
                lines.append(f"ratio {words} {base} batch {batch}: {with_it / without:.2f}x")
    turned_on = (("+branches", "parallel/serial branches"), ("+cudnn-benchmark", "timed/heuristic cuDNN engines"))
    for option, words in turned_on:
        for (label, batch), on in speed.items():  # options that turn something on: the ratio is with / without
            off = speed.get((label.replace(option, ""), batch)) if option in label else None
            if off:
                lines.append(f"ratio {words} {label} batch {batch}: {on / off:.2f}x")
    return lines


def model_ratio_lines(by_model: Mapping[str, Sequence[BenchResult]]) -> list[str]:
    """``time <first>/<other> <backend> batch <b>: <x>``: per-crop time of the first model over each other's.

    E.g. ``time stip-w32-coco-256x192/hrnet-w32-coco-256x192 cuda-fast batch 64: 1.22x`` (STIP costs
    1.22× HRNet in the same backend and batch).
    """
    names = list(by_model)
    if len(names) < 2:
        return []
    first = {(r.backend, r.batch): r.crops_per_s for r in by_model[names[0]] if r.crops_per_s}
    lines = []
    for other in names[1:]:
        for r in by_model[other]:
            mine = first.get((r.backend, r.batch))
            if mine and r.crops_per_s:
                lines.append(f"time {names[0]}/{other} {r.backend} batch {r.batch}: {r.crops_per_s / mine:.2f}x")
    return lines
