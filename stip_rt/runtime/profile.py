"""What one inference call launches: ATen ops of an eager forward (any device), CUDA kernels of one replay.

Batch-1 latency on a GPU is the sum of the kernels one graph replay runs (each at least a few
microseconds, whatever its size), so the kernel count is the figure to bring down. Two counters:

* :func:`count_aten_ops` — the ATen ops an eager forward dispatches (a ``TorchDispatchMode``
  below autograd: one entry per kernel-launching op), on the CPU as on CUDA. Folding BatchNorm
  removes its ``_native_batch_norm_legit_no_training`` ops.
* :func:`count_cuda_kernels` — the kernels the GPU runs during one ``backend.infer`` call
  (``torch.profiler`` with CUDA activity; CUDA-graph replays are traced kernel by kernel), and
  :func:`cuda_kernel_times` — their GPU time (where a replay's time goes; :func:`time_line`).

and :func:`peak_bytes` — the peak memory one call allocates (the benchmarks' memory figures) —
and :func:`synchronize`, which every benchmark calls before reading its clock.

Both counters group names with :func:`kind_of` (conv/matmul, batch_norm, relu, add, copy, upsample, iap, fused, ...).
``scripts/count_kernels.py`` prints them before and after folding; ``scripts/gpu_check.sh`` runs it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

T = TypeVar("T")

_KINDS = (  # (kind, substrings of an ATen op or kernel name, lower case), first match wins
    ("iap", ("iap",)),
    ("fused", ("triton_",)),  # inductor's generated kernels (triton_poi_fused_add_relu_3, ...)
    ("batch_norm", ("batch_norm", "batchnorm", "bn_fw")),
    ("upsample", ("upsample", "interpolate")),
    (
        "conv/matmul",
        ("conv", "cudnn", "implicit_gemm", "xmma", "cutlass", "winograd", "gemm", "mm", "linear", "einsum"),
    ),
    ("relu", ("relu", "clamp_min", "threshold")),
    ("add", ("add",)),
    ("copy", ("copy", "memcpy", "memset", "_to_copy", "clone", "contiguous")),
)
_FREE = (
    "aten.view",
    "aten._unsafe_view",
    "aten.reshape",
    "aten.expand",
    "aten.permute",
    "aten.t.",
    "aten.transpose",
    "aten.unsqueeze",
    "aten.squeeze",
    "aten.slice",
    "aten.select",
    "aten.detach",
    "aten.alias",
    "aten.as_strided",
    "aten.split",
    "aten.unbind",
    "aten.empty",
    "aten.lift_fresh",
    "aten.sym_size",
    "aten.sym_stride",
    "aten.is_same_size",
)  # metadata only: no kernel


def kind_of(name: str) -> str:
    """The group of an ATen op or CUDA kernel name (``other`` when none matches)."""
    low = name.lower()
    for kind, keys in _KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if not name.startswith(_FREE):
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


def count_aten_ops(fn: Callable[[torch.Tensor], object], x: torch.Tensor) -> Counter[str]:
    """Kernel-launching ATen ops of one eager call ``fn(x)`` (views and other metadata ops excluded).

    Args:
        fn: a module or function (run under ``torch.inference_mode``).
        x: its input.

    Returns:
        Counter of op name (e.g. ``aten.convolution.default``) → calls; ``sum(counter.values())``
        is the total.
    """
    rec = _Recorder()
    with torch.inference_mode(), rec:
        fn(x)
    return Counter(rec.ops)


def _cuda_kernels(infer: Callable[[torch.Tensor], object], x: torch.Tensor, warmup: int) -> list[tuple[str, float]]:
    """(name, GPU microseconds) of every kernel (and device memcpy/memset) one call ``infer(x)`` runs."""
    if not torch.cuda.is_available():
        raise RuntimeError("profiling CUDA kernels needs a CUDA GPU")
    for _ in range(warmup):
        infer(x)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        infer(x)
        torch.cuda.synchronize()
    return [
        (evt.name, evt.time_range.elapsed_us())
        for evt in prof.events()
        if evt.device_type == torch.autograd.DeviceType.CUDA
    ]


def count_cuda_kernels(infer: Callable[[torch.Tensor], object], x: torch.Tensor, warmup: int = 2) -> Counter[str]:
    """CUDA kernels (and device memcpy/memset) run by one call ``infer(x)``, e.g. ``backend.infer``.

    Args:
        infer: the call to profile (warm it up first: graph capture and autotuning are not counted).
        x: its input.
        warmup: untimed calls before the profiled one.

    Returns:
        Counter of kernel name → launches in the profiled call.

    Raises:
        RuntimeError: no CUDA GPU.
    """
    return Counter(name for name, _ in _cuda_kernels(infer, x, warmup))


def cuda_kernel_times(infer: Callable[[torch.Tensor], object], x: torch.Tensor, warmup: int = 2) -> dict[str, float]:
    """GPU time of the kernels one call ``infer(x)`` runs, per kernel name (where a replay's time goes).

    Args:
        infer: the call to profile.
        x: its input.
        warmup: untimed calls before the profiled one.

    Returns:
        kernel name → microseconds summed over its launches in the call.

    Raises:
        RuntimeError: no CUDA GPU.
    """
    times: dict[str, float] = {}
    for name, us in _cuda_kernels(infer, x, warmup):
        times[name] = times.get(name, 0.0) + us
    return times


def by_kind(counter: Counter[str]) -> Counter[str]:
    """Regroup a name → count Counter by :func:`kind_of`."""
    out: Counter[str] = Counter()
    for name, n in counter.items():
        out[kind_of(name)] += n
    return out


def summary_line(label: str, counter: Counter[str]) -> str:
    """``<label>: <total> (conv/matmul 120, relu 96, ...)``, kinds by decreasing count."""
    kinds = by_kind(counter)
    parts = ", ".join(f"{k} {n}" for k, n in kinds.most_common())
    return f"{label}: {sum(counter.values())} ({parts})"


def time_line(label: str, times: dict[str, float]) -> str:
    """``<label>: <total> ms GPU (conv/matmul 5.10 ms, add 1.02 ms, ...)``, kinds by decreasing time
    (``times``: kernel name → microseconds, :func:`cuda_kernel_times`)."""
    kinds: dict[str, float] = {}
    for name, us in times.items():
        kinds[kind_of(name)] = kinds.get(kind_of(name), 0.0) + us
    parts = ", ".join(f"{k} {us / 1e3:.2f} ms" for k, us in sorted(kinds.items(), key=lambda kv: -kv[1]))
    return f"{label}: {sum(times.values()) / 1e3:.2f} ms GPU ({parts})"


def synchronize(device: str | torch.device) -> None:
    """Wait until the work queued on ``device`` has run (CUDA); nothing on other devices.

    The benchmarks call it before reading the clock, so a GPU call's time is its own.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed_call(device: str | torch.device, fn: Callable[..., T], *args: object) -> tuple[float, T]:
    """Seconds of ``fn(*args)`` with ``device`` synchronised before and after (:func:`synchronize`), and its result."""
    synchronize(device)
    t0 = time.perf_counter()
    out = fn(*args)
    synchronize(device)
    return time.perf_counter() - t0, out


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated during ``fn()`` above what was allocated before it.

    CUDA: the caching allocator's peak statistics. CPU: the running sum of the allocations and
    frees ``torch.profiler`` records (``profile_memory``), in time order.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
    )
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak
