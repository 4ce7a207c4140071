"""Settings of the inference backends (torch-free, so a run configuration validates without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
#: Names ``runtime.backend`` / ``runtime.device`` / ``runtime.precision`` accept (``device`` also ``cuda:N``).
BACKENDS = ("auto", "torch", "cuda-fast", "onnxruntime", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class CudaFastConfig:
    """Settings of :class:`CudaFastBackend`.

    Attributes:
        precision: ``fp16`` or ``bf16`` weights and activations (``fp32`` allowed, for comparison).
        channels_last: NHWC memory format for the convolutions (faster cuDNN kernels with tensor cores).
        cuda_graphs: capture one CUDA graph per bucket (else run eagerly, still padded to buckets).
        buckets: ascending batch sizes that get a graph; batches are padded up to the next one.
        compile: wrap the network in ``torch.compile`` before capturing.
        compile_mode: ``torch.compile`` mode (CUDA graphs are ours, so a ``-no-cudagraphs`` mode).
        warmup: eager runs before capturing a bucket (cuDNN autotuning, Triton autotuning).
    """

    precision: str = "fp16"
    channels_last: bool = True
    cuda_graphs: bool = True
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    compile: bool = False
    compile_mode: str = "max-autotune-no-cudagraphs"
    warmup: int = 3
