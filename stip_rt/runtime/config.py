"""Settings of the inference backends (torch-free, so a run configuration validates without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
#: Names ``runtime.backend`` / ``runtime.device`` / ``runtime.precision`` accept (``device`` also ``cuda:N``).
BACKENDS = ("auto", "torch", "cuda-fast", "onnxruntime", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")

#: ``torch.compile`` modes that bring inductor's own CUDA graphs (they cannot nest in ours).
COMPILE_MODES_WITH_GRAPHS = ("reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class CudaFastConfig:
    """Settings of :class:`CudaFastBackend`.

    Attributes:
        precision: ``fp16`` or ``bf16`` weights and activations (``fp32`` allowed, for comparison).
        channels_last: NHWC memory format for the convolutions (faster cuDNN kernels with tensor cores).
        cuda_graphs: capture one CUDA graph per bucket and input size (else run eagerly, still padded to buckets).
        buckets: ascending batch sizes that get a graph; batches are padded up to the next one.
        fold_bn: serve the prepared graph with every BatchNorm folded into its convolution
            (:func:`stip_rt.nn.fold.prepare_inference`); exact up to float rounding.
        compile: wrap the (folded) network in ``torch.compile`` (inductor) before capturing, so the
            elementwise epilogues (bias, ReLU, residual add, upsample + add, SaT glue) run as fused
            Triton kernels inside our graphs. Off by default until a GPU run measures it
            (``scripts/gpu_check.sh`` benches ``cuda-fast`` against ``cuda-fast+compile``); it adds
            compile time per bucket at start-up.
        cudnn_fusion: run every conv→ReLU and conv→add→ReLU of the folded network as one cuDNN call
            (``torch.cudnn_convolution_relu`` / ``_add_relu``, :mod:`stip_rt.nn.fuse`): the bias,
            residual add and ReLU kernels after each convolution go. On by default since an H200
            run measured it (STIP-W32 FP16, one run: batch 1 3.54 → 2.39 ms, batch 64 3,119 →
            4,071 crops/s; a batch-1 replay 1,112 → 493 kernels; docs/backends.md). A site cuDNN
            refuses runs the plain ops. Not applied with ``compile`` (inductor fuses the epilogues
            into its own kernels; dynamo over the cuDNN fused ops is unmeasured).
        parallel_branches: run each HRNet module's branches, then its fuse layer's outputs, on CUDA
            streams of their own, so that a graph replay runs their small batch-1 kernels side by
            side (:mod:`stip_rt.nn.parallel`; the same result bit for bit). Off until a GPU run
            measures it (``stip-rt bench --backends cuda-fast,cuda-fast+branches``). Not applied
            with ``compile``.
        compile_mode: ``torch.compile`` mode; ``default`` fuses the pointwise ops and keeps cuDNN
            convolutions, ``max-autotune-no-cudagraphs`` also tries Triton convolution templates
            with fused epilogues (minutes of autotuning). Modes with inductor's own CUDA graphs
            (``reduce-overhead``, ``max-autotune``) are refused while ``cuda_graphs`` is on.
        cudnn_benchmark: choose each convolution's cuDNN engine by timing the candidates
            (``torch.backends.cudnn.benchmark``, cuDNN's *find*) during the warm-up before a bucket
            is captured, on a thread of its own (fresh plan caches), instead of taking cuDNN's
            heuristic first choice; the graph keeps the plans found. What an inference engine's
            tactic selection does; it costs start-up time per bucket. Off until a GPU run
            measures it (``stip-rt bench --backends cuda-fast,cuda-fast+cudnn-benchmark``).
        warmup: eager runs before capturing a bucket (cuDNN autotuning, Triton autotuning).
        reuse_output: ``infer`` returns a view of the graph's static output buffer (no copy), valid
            until the next ``infer`` call; off: a fresh tensor per call (one device copy).
    """

    precision: str = "fp16"
    channels_last: bool = True
    cuda_graphs: bool = True
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    fold_bn: bool = True
    compile: bool = False
    cudnn_fusion: bool = True
    parallel_branches: bool = False
    cudnn_benchmark: bool = False
    compile_mode: str = "default"
    warmup: int = 3
    reuse_output: bool = False
