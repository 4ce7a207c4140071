"""The fast CUDA path: the prepared graph (BatchNorm folded) in FP16/BF16, channels-last, the fused Triton
IaP op, CUDA graphs per batch bucket and input size.

A batch of N crops is padded with zeros to the smallest bucket ≥ N (1, 2, 4, 8, 16, 32, 64
by default; larger batches are split into chunks of the largest bucket) and runs as one
replay of the CUDA graph captured for that bucket, so a frame costs one launch instead of
hundreds. Padding is harmless: in eval mode every op of the network is per-sample
(BatchNorm uses running statistics). Graphs are captured lazily, the first time a bucket
is needed, and share one memory pool. The network served is
:func:`stip_rt.nn.fold.prepare_inference`'s copy, every BatchNorm folded into its convolution,
with every conv→ReLU and conv→add→ReLU as one cuDNN call (:mod:`stip_rt.nn.fuse`; a STIP-W32
batch-1 replay went from 1,112 kernels to 493 on an H200).

Per call, ``infer`` launches one copy into the static input (cast and layout change in one
kernel), one replay per chunk and, unless ``reuse_output``, one copy of the static output
(the float32 cast is captured inside the graph). It never synchronises with the host.

The IaP op dispatches to its Triton kernels for CUDA tensors (:mod:`stip_rt.nn.iap`);
STIPNet calls it with the low-resolution embeddings and ``upsample=True`` (the cheap
exact variant). Optionally the network is wrapped in ``torch.compile`` before capture.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import nn

from ..errors import BackendError
from .config import COMPILE_MODES_WITH_GRAPHS, CudaFastConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
_thread_streams = threading.local()  # each thread's capture stream per device (capture_graph)


class _BenchmarkFlag:
    lock = threading.Lock()
    users = 0  # threads inside cudnn_benchmarking()
    before = False  # the flag's value when the first one entered


def bucket_for(n: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket ≥ n (n ≤ the largest bucket)."""
    for b in buckets:
        if b >= n:
            return b
    raise ValueError(f"batch {n} exceeds the largest bucket {buckets[-1]}")


def split_batch(n: int, buckets: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Chunks of a batch of ``n``: (start, stop, bucket) with stop - start ≤ bucket.

    Full chunks of the largest bucket first, then the rest padded to its bucket.
    """
    top = buckets[-1]
    out = []
    start = 0
    while n - start > top:
        out.append((start, start + top, top))
        start += top
    if n > start:
        out.append((start, n, bucket_for(n - start, buckets)))
    return out


def warm_up_on_side_stream(fn: Callable[[], T], device: str | torch.device, times: int) -> T:
    """Run ``fn`` ``max(1, times)`` times on a fresh side stream (as CUDA graph capture wants its
    warm-up: cuDNN and Triton autotuning, lazy allocations), ordered after and before the current
    stream's work; returns the last result."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(max(1, times)):
            out = fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    return out


def capture_graph(graph: torch.cuda.CUDAGraph, pool: Any, device: str | torch.device) -> torch.cuda.graph:
    """``torch.cuda.graph(graph, pool)`` on a capture stream of the calling thread, in thread-local error mode.

    The pipeline's detect and pose threads capture their graphs lazily (the first batch of each
    size) while the other thread goes on queueing and synchronising its own work. torch's default
    capture stream is one per process, and its default ``global`` mode forbids every thread's
    unsafe CUDA calls (a synchronisation, a fresh allocation) during a capture; here each thread
    captures on its own stream and only its own calls are checked.
    """
    streams = _thread_streams.__dict__.setdefault("capture", {})
    key = torch.device(device)
    if key not in streams:
        streams[key] = torch.cuda.Stream(key)
    return torch.cuda.graph(graph, pool=pool, stream=streams[key], capture_error_mode="thread_local")


@contextlib.contextmanager
def stage_stream(device: str | torch.device | None) -> Iterator[torch.cuda.Stream | None]:
    """Run the body on a CUDA stream of its own (a pipeline stage's thread); a no-op off CUDA.

    Work queued by other threads on the default stream before (weights uploaded, BatchNorm
    folded) is waited for first. Inside, the stage's synchronisations (its boxes or keypoints to
    the host) wait for its own work only, not for what another stage queued on a shared stream,
    and the GPU may run the stages' kernels side by side. Nothing the body makes on the GPU may
    be used by another thread (the pipeline's stages hand each other host arrays only).

    Yields:
        the stream, or None when nothing was changed.
    """
    dev = torch.device(device) if device is not None else None
    if dev is None or dev.type != "cuda":
        yield None
        return
    stream = torch.cuda.Stream(dev)
    stream.wait_stream(torch.cuda.default_stream(dev))
    with torch.cuda.stream(stream):
        yield stream


@contextlib.contextmanager
def cudnn_benchmarking() -> Iterator[None]:
    """``torch.backends.cudnn.benchmark`` on inside the body: cuDNN times its engines for each new
    convolution (``cudnnFind``) and keeps the fastest, instead of taking its heuristics' first choice.

    The flag is process-wide: it stays on while any thread is inside, and the value it had before
    the first one entered comes back when the last one leaves. A plan found is cached per thread
    (PyTorch's cuDNN v8 plan caches are thread-local) and used by every later call of that thread
    with the same shapes, also with the flag off; a CUDA graph captured from it keeps it.
    """
    flag = _BenchmarkFlag
    with flag.lock:
        if flag.users == 0:
            flag.before = bool(torch.backends.cudnn.benchmark)
            torch.backends.cudnn.benchmark = True
        flag.users += 1
    try:
        yield
    finally:
        with flag.lock:
            flag.users -= 1
            if flag.users == 0:
                torch.backends.cudnn.benchmark = flag.before


def on_fresh_thread(fn: Callable[[], T], name: str = "stip-rt-cudnn-find") -> T:
    """``fn()`` on a new thread, waited for; its result, or its exception raised here.

    A fresh thread starts with empty cuDNN plan caches (thread-local in PyTorch), so the plans
    chosen while benchmarking there cannot be ones the calling thread cached earlier from the
    heuristics (another backend variant with the same shapes, an eager call).
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        return pool.submit(fn).result()


class _Graph:
    """One captured bucket: static input (network dtype/format), static float32 output, the graph."""

    def __init__(self, graph: torch.cuda.CUDAGraph | None, x: torch.Tensor, y: torch.Tensor) -> None:
        self.graph, self.x, self.y = graph, x, y


class CudaFastBackend:
    """The network in FP16/BF16 on one GPU, replayed from per-bucket CUDA graphs.

    Args:
        model: the network (not modified: its prepared copy is converted and served).
        device: ``cuda`` or ``cuda:N``.
        config: precision, memory format, buckets, graphs, folding, compile.
        input_size: (H, W) of one input for :meth:`warmup` when the model has no ``spec``.

    Raises:
        BackendError: no CUDA GPU, bad precision, buckets or compile mode.
    """

    name = "cuda-fast"

    def __init__(
        self,
        model: nn.Module,
        device: str = "cuda",
        config: CudaFastConfig | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        config = config if config is not None else CudaFastConfig()
        if config.precision not in _DTYPES:
            raise BackendError(f"cuda-fast: unknown precision '{config.precision}' (use fp16, bf16 or fp32)")
        if not config.buckets or list(config.buckets) != sorted(set(config.buckets)) or config.buckets[0] < 1:
            raise BackendError(f"cuda-fast: buckets must be ascending positive batch sizes, got {config.buckets}")
        if config.compile and config.cuda_graphs and config.compile_mode in COMPILE_MODES_WITH_GRAPHS:
            raise BackendError(
                f"cuda-fast: compile_mode '{config.compile_mode}' brings inductor's own CUDA graphs; with "
                "cuda_graphs on use 'default' or 'max-autotune-no-cudagraphs'"
            )
        if not device.startswith("cuda") or not torch.cuda.is_available():
            raise BackendError(
                f"backend 'cuda-fast' needs a CUDA GPU (device '{device}', cuda available: {torch.cuda.is_available()})"
            )
        from ..nn.fold import prepare_inference
        from ..nn.stip import STIPNet

        self.device = device
        self.precision = config.precision
        self.config = config
        self._dtype = _DTYPES[config.precision]
        self._format = torch.channels_last if config.channels_last else torch.contiguous_format
        self._iap = isinstance(model, STIPNet)
        net = prepare_inference(model, fold=config.fold_bn)
        self._cudnn_fusion = config.cudnn_fusion and not config.compile  # inductor fuses the epilogues itself
        if self._cudnn_fusion:
            from ..nn.fuse import fuse_conv_relu

            net, *_ = fuse_conv_relu(net)
        self._parallel = config.parallel_branches and not config.compile  # dynamo over stream switches: unmeasured
        if self._parallel:
            from ..nn.parallel import set_parallel_branches

            set_parallel_branches(net, True)
        net = net.to(device=device, dtype=self._dtype)
        if config.channels_last:
            # Module.to(memory_format=...) is documented and works; torch's overloads leave it out
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = net
        self._run = torch.compile(net, mode=config.compile_mode, dynamic=False) if config.compile else net
        self._graphs: dict[tuple[int, tuple[int, ...]], _Graph] = {}
        self._pool = torch.cuda.graph_pool_handle() if config.cuda_graphs else None
        spec = getattr(model, "spec", None)
        size = input_size if input_size is not None else getattr(spec, "input_size", None)
        self._input_chw = (3, *size) if size is not None else None

    def describe(self) -> str:
        """One line for run summaries."""
        parts = [self.precision, "channels-last" if self.config.channels_last else "NCHW"]
        parts.append("BatchNorm folded" if self.config.fold_bn else "BatchNorm unfolded")
        if self._cudnn_fusion:
            parts.append("cuDNN conv+ReLU fusion")
        if self._parallel:
            parts.append("HRNet branches on parallel CUDA streams")
        if self.config.cudnn_benchmark:
            parts.append("cuDNN engines timed (cudnn.benchmark)")
        if self._iap:
            parts.append("fused Triton IaP")
        if self.config.cuda_graphs:
            parts.append("CUDA graphs for batches " + ",".join(map(str, self.config.buckets)))
        if self.config.compile:
            parts.append(f"torch.compile({self.config.compile_mode})")
        return f"cuda-fast on {self.device} ({', '.join(parts)})"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network with the float32 cast of its output (captured together)."""
        return self._run(x).float()

    def _capture(self, bucket: int, chw: tuple[int, ...]) -> _Graph:
        """Warm up and capture the graph of one bucket (eager static buffers without graphs);
        with ``cudnn_benchmark`` on a fresh thread (:func:`on_fresh_thread`), timing cuDNN's engines
        during the warm-up (:func:`cudnn_benchmarking`)."""
        if not self.config.cudnn_benchmark:
            return self._warm_and_capture(bucket, chw, contextlib.nullcontext())
        if not self.config.cuda_graphs:  # eager calls run on the caller's thread: its cache must hold the plans
            return self._warm_and_capture(bucket, chw, cudnn_benchmarking())

        def warm_and_capture() -> _Graph:
            with torch.cuda.device(self.device):
                return self._warm_and_capture(bucket, chw, cudnn_benchmarking())

        return on_fresh_thread(warm_and_capture)

    def _warm_and_capture(
        self, bucket: int, chw: tuple[int, ...], warming: contextlib.AbstractContextManager[Any]
    ) -> _Graph:
        x = torch.zeros((bucket, *chw), device=self.device, dtype=self._dtype).contiguous(memory_format=self._format)
        with torch.inference_mode():
            with warming:  # the capture itself only reuses the plans the warm-up cached on this thread
                y = warm_up_on_side_stream(lambda: self._forward(x), self.device, self.config.warmup)
            if not self.config.cuda_graphs:
                return _Graph(None, x, y)
            graph = torch.cuda.CUDAGraph()
            with capture_graph(graph, self._pool, self.device):
                y = self._forward(x)
        log.info("cuda-fast: captured the CUDA graph for batch %d at %s", bucket, "x".join(map(str, chw)))
        return _Graph(graph, x, y)

    def _graph(self, bucket: int, chw: tuple[int, ...]) -> _Graph:
        key = (bucket, chw)
        g = self._graphs.get(key)
        if g is None:
            g = self._graphs[key] = self._capture(bucket, chw)
        return g

    def warmup(self, chw: tuple[int, int, int] | None = None) -> None:
        """Capture every bucket now (largest first, so smaller graphs reuse its pool memory).

        A bucket the GPU has no memory for is left out with a warning (it is tried again the first
        time a batch needs it, as without a warm-up): a small GPU still starts, with the buckets it holds.
        """
        chw = chw or self._input_chw
        if chw is None:
            raise BackendError("cuda-fast: input size unknown; pass chw=(3, H, W)")
        for b in reversed(self.config.buckets):
            try:
                self._graph(b, tuple(chw))
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                log.warning(
                    "cuda-fast: no GPU memory to capture the batch-%d graph at the warm-up; it is tried again "
                    "when a batch needs it", b,
                )  # fmt: skip

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float32 → (N, K, h, w) float32 on ``self.device``; one graph replay per chunk.

        Rows past N of a padded bucket keep the previous call's crops (finite values; every op is
        per-sample in eval mode), so padding costs no extra kernel.
        """
        n = batch.shape[0]
        chw = tuple(batch.shape[1:])
        chunks = split_batch(n, self.config.buckets)
        if not chunks:
            return torch.zeros((0, *self._graph(self.config.buckets[0], chw).y.shape[1:]), device=self.device)
        out = None
        for start, stop, bucket in chunks:
            g = self._graph(bucket, chw)
            m = stop - start
            g.x[:m].copy_(batch[start:stop], non_blocking=True)
            if g.graph is not None:
                g.graph.replay()
            else:
                g.y = self._forward(g.x)
            if len(chunks) == 1:
                return g.y[:m] if self.config.reuse_output else g.y[:m].clone()  # the next replay overwrites g.y
            if out is None:
                out = torch.empty((n, *g.y.shape[1:]), device=g.y.device, dtype=g.y.dtype)
            out[start:stop].copy_(g.y[:m])  # before a later chunk replays the same graph
        assert out is not None  # two or more chunks: the first one allocated it
        return out
